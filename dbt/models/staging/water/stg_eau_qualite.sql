-- Résultats du contrôle sanitaire : un résultat par prélèvement et paramètre
-- (livraisons en vigueur seulement).
with source as (
    {{ select_in_force('raw', 'eau_qualite') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(id_prelevement as varchar) as sample_id,
        cast(date_prelevement as date) as sample_date,
        cast(udi as varchar) as udi_code,
        cast(type_analyse as varchar) as analysis_type,
        cast(parametre as varchar) as parameter,
        cast(resultat as {{ type_double() }}) as result_value,
        cast(unite as varchar) as result_unit,
        cast(limite_qualite as {{ type_double() }}) as quality_limit,
        cast(conforme as boolean) as is_compliant_declared
    from source
)

select * from renamed
