-- Indicateur tiré du référentiel des UDI (source eau_udi) : nombre de communes
-- desservies par l'UDI du Béthunois. Une ligne par année livrée.

with deliveries as (
    {{ delivered_years('eau_udi') }}
),

udi as (
    select * from {{ ref('stg_eau_udi') }}
),

served as (
    select
        campaign_year as year,
        count(distinct code_insee) as communes_served
    from udi
    where upper(udi_code) = upper('{{ var("udi_bethunois_code") }}')
    group by campaign_year
)

select
    deliveries.year,
    cast(coalesce(served.communes_served, 0) as {{ type_double() }}) as udi_bethunois_communes_served,
    deliveries.delivery_ids
from deliveries
left join served
    on served.year = deliveries.year
