-- Actions de prévention et de sensibilisation : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'dechets_prevention') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(id_action as varchar) as action_id,
        cast("date" as date) as action_date,
        cast(code_insee as varchar) as code_insee,
        cast(type_action as varchar) as action_type,
        cast(quantite as bigint) as quantity,
        cast(foyers_sensibilises as bigint) as households_sensitised

    from source

)

select * from renamed
