-- Indicateurs des déchèteries (source dechetteries_apports) pour l'agglomération, tous sites
-- et toutes fractions de l'année de campagne : tonnage reçu et taux de valorisation (part
-- du tonnage qui ne part pas en enfouissement). Une ligne par année livrée ; le taux est
-- vide quand le tonnage total est nul.

with deliveries as (
    {{ delivered_years('dechetteries_apports') }}
),

deposits as (
    select * from {{ ref('stg_dechetteries_apports') }}
),

by_year as (
    select
        campaign_year as year,
        {{ exact_sum('tonnage_t') }} as received_tonnage_t,
        {{ exact_sum('tonnage_t', "treatment_channel <> 'ENFOUISSEMENT'") }} as recovered_tonnage_t
    from deposits
    group by campaign_year
),

totals as (
    select
        deliveries.year,
        cast(coalesce(y.received_tonnage_t, 0) as {{ type_double() }}) as received_tonnage_t,
        cast(coalesce(y.recovered_tonnage_t, 0) as {{ type_double() }}) as recovered_tonnage_t,
        deliveries.delivery_ids
    from deliveries
    left join by_year as y
        on y.year = deliveries.year
)

select
    year,
    received_tonnage_t,
    recovered_tonnage_t,
    received_tonnage_t as recycling_centre_tonnage,
    cast(
        100.0 * recovered_tonnage_t / nullif(received_tonnage_t, 0)
        as {{ type_double() }}
    ) as recycling_centre_recovery_rate,
    delivery_ids
from totals
