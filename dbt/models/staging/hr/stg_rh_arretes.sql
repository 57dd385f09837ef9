-- Arrêtés individuels par mois et type : lignes des livraisons en vigueur, colonnes
-- renommées en anglais et typées. Données agrégées, mais rangées avec les autres
-- modèles de staging RH dans le schéma restricted. Aucun calcul ici.
{{ config(schema='restricted') }}

with source as (

    {{ select_in_force('raw', 'rh_arretes') }}

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
