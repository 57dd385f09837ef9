-- Réseaux d'eau potable et d'assainissement par commune : linéaires, abonnés,
-- investissements (livraisons en vigueur seulement).
with source as (
    {{ select_in_force('raw', 'eau_reseau') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(code_insee as varchar) as code_insee,
        cast(reseau as varchar) as network_type,
        cast(mode_gestion as varchar) as management_mode,
        cast(lineaire_km as {{ type_double() }}) as network_length_km,
        cast(lineaire_unitaire_km as {{ type_double() }}) as combined_network_length_km,
        cast(lineaire_renouvele_km as {{ type_double() }}) as renewed_length_km,
        cast(nb_abonnes as bigint) as subscriber_count,
        cast(investissement_eur as {{ type_double() }}) as capex_eur
    from source
)

select * from renamed
