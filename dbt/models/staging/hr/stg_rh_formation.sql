-- Formations suivies : une ligne par agent (pseudonymisé), formation et date de début,
-- d'où la matérialisation dans le schéma restricted, fermé aux analystes. Lignes des
-- livraisons en vigueur, colonnes renommées en anglais et typées. Aucun calcul ici.
{{ config(schema='restricted') }}

with source as (

    {{ select_in_force('raw_restricted', 'rh_formation') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(matricule as varchar) as agent_pseudonym,
        cast(date_debut as date) as start_date,
        cast(nb_jours as {{ type_double() }}) as training_days,
        cast(intitule as varchar) as training_title,
        cast(organisme as varchar) as training_provider

    from source

)

select * from renamed
