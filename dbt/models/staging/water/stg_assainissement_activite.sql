-- Activité mensuelle assainissement et SPANC par commune (livraisons en vigueur seulement).
with source as (
    {{ select_in_force('raw', 'assainissement_activite') }}
),

renamed as (
    select
        {{ lineage_columns() }},
        cast(code_insee as varchar) as code_insee,
        cast(mois as date) as month,
        cast(controles_spanc_vente as bigint) as spanc_sale_inspections,
        cast(branchements_eu_crees as bigint) as wastewater_connections_created,
        cast(demandes_eaux_pluviales as bigint) as stormwater_requests
    from source
)

select * from renamed
