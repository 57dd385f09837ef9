-- Programmation du logement social : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'logements_sociaux') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(id_operation as varchar) as operation_id,
        cast(code_insee as varchar) as code_insee,
        cast(bailleur as varchar) as social_landlord,
        cast(type_operation as varchar) as operation_type,
        cast(nb_plai as bigint) as plai_dwellings,
        cast(nb_plus as bigint) as plus_dwellings,
        cast(nb_pls as bigint) as pls_dwellings,
        cast(credits_etat_eur as {{ type_double() }}) as state_credits_eur,
        cast(aide_agglo_eur as {{ type_double() }}) as agglo_aid_eur,
        cast(date_programmation as date) as programming_date

    from source

)

select * from renamed
