-- Référentiel des UDI : une ligne par commune membre et l'UDI qui la dessert
-- (livraisons en vigueur seulement).
with source as (
    {{ select_in_force('raw', 'eau_udi') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(udi as varchar) as udi_code,
        cast(nom_udi as varchar) as udi_name,
        cast(code_insee as varchar) as code_insee
    from source
)

select * from renamed
