-- Apports en déchèteries par site, mois et fraction : lignes des livraisons en vigueur,
-- colonnes renommées en anglais et typées. Aucun calcul ici.
with source as (

    {{ select_in_force('raw', 'dechetteries_apports') }}

),

renamed as (

    select
        {{ lineage_columns() }},
        cast(decheterie as varchar) as recycling_centre,
        cast(mois as date) as reception_month,
        cast(fraction as varchar) as waste_fraction,
        cast(filiere as varchar) as treatment_channel,
        cast(tonnage_t as {{ type_double() }}) as tonnage_t

    from source

)

select * from renamed
