-- Arrêtés individuels par mois et type : lignes des livraisons en vigueur, colonnes
-- renommées en anglais et typées. Décomptes souvent inférieurs à 5 agents (données
-- personnelles indirectes) : source raw_restricted et schéma restricted, jamais publiés.
-- Aucun calcul ici.
{{ config(schema='restricted') }}

with source as (

    {{ select_in_force('raw_restricted', 'rh_arretes') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(mois as date) as order_month,
        cast(type_arrete as varchar) as order_type,
        cast(nombre as bigint) as order_count

    from source

)

select * from renamed
