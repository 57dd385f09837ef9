-- Indicateurs de la collecte en porte-à-porte et en apport volontaire (source
-- dechets_collecte), en colonnes nommées comme les indicateurs du catalogue. Une ligne par
-- année livrée et par commune membre (0 pour une commune sans tonnage) plus la ligne
-- d'agglomération (code_insee NULL). Le ratio par habitant est recalculé à chaque maille
-- (tonnage de la maille / population municipale de la maille, référentiel communes), jamais
-- sommé. Une année sans livraison en vigueur ne donne aucune ligne. Tonnages additionnés
-- exactement (macro exact_sum) : le même total quel que soit l'ordre des lignes.

with deliveries as (
    {{ delivered_years('dechets_collecte') }}
),

communes as (
    select
        cast(code_insee as varchar) as code_insee,
        cast(population_municipale as {{ type_double() }}) as population_municipale
    from {{ ref('communes') }}
),

collection as (
    select * from {{ ref('stg_dechets_collecte') }}
),

by_commune as (
    select
        campaign_year as year,
        code_insee,
        {{ exact_sum('tonnage_t') }} as collected_tonnage_t,
        {{ exact_sum('tonnage_t', "waste_stream = 'OMR'") }} as residual_waste_tonnage_t,
        {{ exact_sum('tonnage_t', "waste_stream in ('EMB_PAP', 'VERRE', 'BIODECHETS')") }}
            as kerbside_sorted_waste_tonnage
    from collection
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        communes.population_municipale,
        cast(coalesce(c.collected_tonnage_t, 0) as {{ type_double() }}) as collected_tonnage_t,
        cast(coalesce(c.residual_waste_tonnage_t, 0) as {{ type_double() }}) as residual_waste_tonnage_t,
        cast(coalesce(c.kerbside_sorted_waste_tonnage, 0) as {{ type_double() }})
            as kerbside_sorted_waste_tonnage,
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join by_commune as c
        on c.year = deliveries.year
        and c.code_insee = communes.code_insee
),

agglomeration_rows as (
    -- Somme des 100 communes : toute ligne de la source a une commune membre
    -- (code_insee obligatoire, contrôlé par la relation vers communes).
    select
        year,
        cast(null as varchar) as code_insee,
        sum(population_municipale) as population_municipale,
        {{ exact_sum('collected_tonnage_t') }} as collected_tonnage_t,
        {{ exact_sum('residual_waste_tonnage_t') }} as residual_waste_tonnage_t,
        {{ exact_sum('kerbside_sorted_waste_tonnage') }} as kerbside_sorted_waste_tonnage,
        delivery_ids
    from commune_rows
    group by year, delivery_ids
),

all_rows as (
    select * from commune_rows
    union all
    select * from agglomeration_rows
)

select
    year,
    code_insee,
    population_municipale,
    collected_tonnage_t,
    residual_waste_tonnage_t,
    cast(
        1000 * residual_waste_tonnage_t / nullif(population_municipale, 0)
        as {{ type_double() }}
    ) as residual_waste_per_inhabitant,
    kerbside_sorted_waste_tonnage,
    delivery_ids
from all_rows
