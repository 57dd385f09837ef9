-- Arrêtés individuels (source rh_arretes) pour l'agglomération : une ligne par année livrée,
-- somme des arrêtés de tous types et de tous les mois. Données sans information nominative,
-- rangées avec les autres modèles RH dans le schéma restricted.
-- Une année sans livraison en vigueur ne donne aucune ligne.
{{ config(schema='restricted') }}

with deliveries as (
    {{ delivered_years('rh_arretes') }}
),

by_year as (
    select
        campaign_year as year,
        sum(order_count) as order_count
    from {{ ref('stg_rh_arretes') }}
    group by campaign_year
)

select
    deliveries.year,
    cast(coalesce(y.order_count, 0) as {{ type_double() }}) as individual_hr_orders,
    deliveries.delivery_ids
from deliveries
left join by_year as y
    on y.year = deliveries.year
