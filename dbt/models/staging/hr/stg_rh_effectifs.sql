-- Effectifs à la date d'observation : une ligne par agent (pseudonymisé), d'où la
-- matérialisation dans le schéma restricted, fermé aux analystes. Lignes des
-- livraisons en vigueur, colonnes renommées en anglais et typées. Aucun calcul ici.
{{ config(schema='restricted') }}

with source as (

    {{ select_in_force('raw_restricted', 'rh_effectifs') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(matricule as varchar) as agent_pseudonym,
        cast(date_observation as date) as observation_date,
        cast(age_months as bigint) as age_months,
        cast(sexe as varchar) as sex,
        cast(statut as varchar) as employment_status,
        cast(categorie as varchar) as grade_category,
        cast(direction as varchar) as directorate,
        cast(quotite as {{ type_double() }}) as fte_share,
        cast(date_entree as date) as entry_date

    from source

)

select * from renamed
