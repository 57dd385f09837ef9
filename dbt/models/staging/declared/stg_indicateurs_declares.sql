-- Valeurs d'indicateurs livrées telles quelles par les directions (calcul « declared »).
-- Seule la livraison en vigueur de chaque (année, direction) compte : une
-- livraison plus récente remplace la précédente en entier.
with source as (
    {{ select_in_force('raw', 'indicateurs_declares') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(indicator_id as varchar) as indicator_id,
        cast(code_insee as varchar) as code_insee,
        cast(valeur as {{ type_double() }}) as value,
        cast(date_valeur as date) as value_date,
        cast(commentaire as varchar) as comment,
        cast(source as varchar) as produced_by
    from source
)

select * from renamed
