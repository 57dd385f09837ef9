-- Taux moyen de renouvellement des réseaux d'eau potable (SISPEA P107.2) :
-- 100 × (km renouvelés pendant l'année de campagne et les 4 précédentes, parmi
-- celles qui ont été livrées) / (nombre de ces années × linéaire du réseau
-- d'eau potable de l'année de campagne).
-- Une ligne par année livrée de eau_reseau ; taux vide si le linéaire est nul.

with deliveries as (
    {{ delivered_years('eau_reseau') }}
),

drinking_water_network as (
    select
        campaign_year as year,
        {{ exact_sum('renewed_length_km') }} as renewed_length_km,
        {{ exact_sum('network_length_km') }} as network_length_km
    from {{ ref('stg_eau_reseau') }}
    where network_type = 'eau_potable'
    group by campaign_year
),

yearly as (
    select
        deliveries.year,
        cast(coalesce(n.renewed_length_km, 0) as {{ type_double() }}) as renewed_length_km,
        cast(coalesce(n.network_length_km, 0) as {{ type_double() }}) as network_length_km,
        deliveries.delivery_ids
    from deliveries
    left join drinking_water_network as n
        on n.year = deliveries.year
),

windowed as (
    select
        campaign.year,
        campaign.network_length_km,
        min(window_year.year) as first_year_used,
        cast(count(*) as integer) as years_used,
        {{ exact_sum('window_year.renewed_length_km') }} as renewed_length_km_window,
        string_agg(window_year.delivery_ids, ',' order by window_year.year) as delivery_ids
    from yearly as campaign
    inner join yearly as window_year
        on window_year.year between campaign.year - 4 and campaign.year
    group by campaign.year, campaign.network_length_km
)

select
    year,
    first_year_used,
    years_used,
    cast(renewed_length_km_window as {{ type_double() }}) as renewed_length_km_window,
    network_length_km,
    cast(
        100.0 * renewed_length_km_window / nullif(years_used * network_length_km, 0)
        as {{ type_double() }}
    ) as water_network_renewal_rate,
    delivery_ids
from windowed
