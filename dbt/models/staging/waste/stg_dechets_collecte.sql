-- Tonnages collectés par commune, mois et flux : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'dechets_collecte') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(code_insee as varchar) as code_insee,
        cast(mois as date) as collection_month,
        cast(flux as varchar) as waste_stream,
        cast(tonnage_t as {{ type_double() }}) as tonnage_t

    from source

)

select * from renamed
