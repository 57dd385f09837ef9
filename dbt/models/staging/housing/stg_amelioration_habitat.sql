-- Aides à l'amélioration de l'habitat privé : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'amelioration_habitat') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(id_dossier as varchar) as dossier_id,
        cast(code_insee as varchar) as code_insee,
        cast(dispositif as varchar) as aid_scheme,
        cast(nb_logements as bigint) as dwellings,
        cast(aide_agglo_eur as {{ type_double() }}) as agglo_aid_eur,
        cast(aide_anah_eur as {{ type_double() }}) as anah_aid_eur,
        cast(montant_travaux_eur as {{ type_double() }}) as works_amount_eur,
        cast(date_engagement as date) as commitment_date

    from source

)

select * from renamed
