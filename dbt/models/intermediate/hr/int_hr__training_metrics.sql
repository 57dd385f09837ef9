-- Agrégats des formations suivies (source rh_formation) pour l'agglomération : une ligne par
-- année livrée. Le nombre moyen de jours par agent rapporte les jours de formation aux
-- collaborateurs permanents de rh_effectifs (int_hr__staff_metrics) ; il est vide quand
-- rh_effectifs n'a pas de livraison en vigueur pour l'année (ou pas d'agent permanent).
-- Agrégats bruts, avant secret statistique : le modèle reste dans le schéma restricted.
-- Une année sans livraison en vigueur de rh_formation ne donne aucune ligne.
{{ config(schema='restricted') }}

with deliveries as (
    {{ delivered_years('rh_formation') }}
),

by_year as (
    select
        campaign_year as year,
        {{ exact_sum('training_days') }} as training_days,
        count(distinct agent_pseudonym) as trained_agents
    from {{ ref('stg_rh_formation') }}
    group by campaign_year
),

staff as (
    select
        year,
        permanent_staff,
        delivery_ids
    from {{ ref('int_hr__staff_metrics') }}
)

select
    deliveries.year,
    cast(coalesce(y.training_days, 0) as {{ type_double() }}) as training_days,
    cast(coalesce(y.trained_agents, 0) as {{ type_double() }}) as trained_agents,
    staff.permanent_staff,
    cast(coalesce(y.training_days, 0) / nullif(staff.permanent_staff, 0) as {{ type_double() }})
        as training_days_per_agent,
    deliveries.delivery_ids,
    case
        when staff.delivery_ids is not null
            then deliveries.delivery_ids || ',' || staff.delivery_ids
    end as per_agent_delivery_ids
from deliveries
left join by_year as y
    on y.year = deliveries.year
left join staff
    on staff.year = deliveries.year
