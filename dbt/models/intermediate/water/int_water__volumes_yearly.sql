-- Indicateurs de volumes (source eau_volumes) pour l'agglomération, cumul des
-- mois et des UDI de l'année de campagne : volume produit et rendement du
-- réseau de distribution (SISPEA P104.3). Une ligne par année livrée ; le
-- rendement est vide quand le volume mis en distribution est nul.

with deliveries as (
    {{ delivered_years('eau_volumes') }}
),

volumes as (
    select * from {{ ref('stg_eau_volumes') }}
),

yearly_volumes as (
    select
        campaign_year as year,
        {{ exact_sum('volume_produced_m3') }} as volume_produced_m3,
        {{ exact_sum('volume_imported_m3') }} as volume_imported_m3,
        {{ exact_sum('volume_exported_m3') }} as volume_exported_m3,
        {{ exact_sum('volume_authorised_consumption_m3') }} as volume_authorised_consumption_m3
    from volumes
    group by campaign_year
),

totals as (
    select
        deliveries.year,
        cast(coalesce(v.volume_produced_m3, 0) as {{ type_double() }}) as volume_produced_m3,
        cast(coalesce(v.volume_imported_m3, 0) as {{ type_double() }}) as volume_imported_m3,
        cast(coalesce(v.volume_exported_m3, 0) as {{ type_double() }}) as volume_exported_m3,
        cast(coalesce(v.volume_authorised_consumption_m3, 0) as {{ type_double() }})
            as volume_authorised_consumption_m3,
        deliveries.delivery_ids
    from deliveries
    left join yearly_volumes as v
        on v.year = deliveries.year
)

select
    year,
    volume_produced_m3,
    volume_imported_m3,
    volume_exported_m3,
    volume_authorised_consumption_m3,
    volume_produced_m3 as water_volume_produced,
    cast(
        100.0 * (volume_authorised_consumption_m3 + volume_exported_m3)
        / nullif(volume_produced_m3 + volume_imported_m3, 0)
        as {{ type_double() }}
    ) as water_network_yield,
    delivery_ids
from totals
