-- Déchets ménagers et assimilés (DMA, référentiel ADEME) pour l'agglomération : tonnages
-- collectés (dechets_collecte, tous flux) plus tonnages reçus en déchèteries
-- (dechetteries_apports), et ratio par habitant (population municipale des 100 communes).
-- Une ligne par année où les DEUX sources ont une livraison en vigueur : s'il en manque une,
-- l'année ne donne aucune ligne.

with collection_deliveries as (
    {{ delivered_years('dechets_collecte') }}
),

deposit_deliveries as (
    {{ delivered_years('dechetteries_apports') }}
),

collection as (
    select
        campaign_year as year,
        {{ exact_sum('tonnage_t') }} as tonnage_t
    from {{ ref('stg_dechets_collecte') }}
    group by campaign_year
),

deposits as (
    select
        campaign_year as year,
        {{ exact_sum('tonnage_t') }} as tonnage_t
    from {{ ref('stg_dechetteries_apports') }}
    group by campaign_year
),

population as (
    select sum(cast(population_municipale as {{ type_double() }})) as population_municipale
    from {{ ref('communes') }}
),

totals as (
    select
        collection_deliveries.year,
        population.population_municipale,
        cast(coalesce(collection.tonnage_t, 0) as {{ type_double() }}) as collected_tonnage_t,
        cast(coalesce(deposits.tonnage_t, 0) as {{ type_double() }}) as recycling_centre_tonnage_t,
        collection_deliveries.delivery_ids || ',' || deposit_deliveries.delivery_ids as delivery_ids
    from collection_deliveries
    inner join deposit_deliveries
        on deposit_deliveries.year = collection_deliveries.year
    left join collection
        on collection.year = collection_deliveries.year
    left join deposits
        on deposits.year = collection_deliveries.year
    cross join population
)

select
    year,
    population_municipale,
    collected_tonnage_t,
    recycling_centre_tonnage_t,
    collected_tonnage_t + recycling_centre_tonnage_t as household_waste_tonnage,
    cast(
        1000 * (collected_tonnage_t + recycling_centre_tonnage_t) / nullif(population_municipale, 0)
        as {{ type_double() }}
    ) as household_waste_per_inhabitant,
    delivery_ids
from totals
