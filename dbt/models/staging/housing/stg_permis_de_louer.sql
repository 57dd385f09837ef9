-- Permis de louer par commune adhérente : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'permis_de_louer') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(code_insee as varchar) as code_insee,
        cast(date_adhesion as date) as membership_date,
        cast(logements_concernes as bigint) as dwellings_in_scope,
        cast(demandes as bigint) as permit_requests,
        cast(autorisations as bigint) as permits_granted

    from source

)

select * from renamed
