-- Valeurs des 9 indicateurs dérivés de la direction hr, au format commun des valeurs
-- d'indicateurs (agglomération seulement : code_insee NULL). C'est le seul modèle RH hors du
-- schéma restricted : il ne contient que des agrégats, et toute valeur calculée sur moins de
-- 5 agents est supprimée (secret statistique, macro suppress_small_cells) : elle n'est pas
-- publiée. Matérialisé en table : il ne dépend pas, à la lecture, des vues du schéma
-- restricted. Date de valeur : date d'observation des effectifs pour rh_effectifs,
-- 31 décembre de l'année pour les flux annuels (formations, arrêtés). Une valeur non
-- calculable (ratio sans dénominateur) ne donne pas de ligne non plus.
{{ config(schema='intermediate', materialized='table') }}

{%- set threshold = 5 %}
{%- set staff = 'int_hr__staff_metrics' %}
{%- set training = 'int_hr__training_metrics' %}
{%- set year_end = year_end_date('wide.year') %}
{#- n_agents : nombre d'agents sur lesquels porte la valeur. Chaque arrêté individuel concerne
    un agent : un total de moins de 5 arrêtés porte sur moins de 5 agents. #}
{%- set indicators = [
    {'id': 'permanent_staff', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.permanent_staff', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'apprenticeship_contracts', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.apprenticeship_contracts', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'private_law_contracts', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.private_law_contracts', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'average_agent_age', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.permanent_staff', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'staff_women_share', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.permanent_staff', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'staff_fte', 'model': staff, 'source_ids': 'rh_effectifs',
     'n_agents': 'wide.permanent_staff', 'as_of': 'wide.observation_date', 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'training_days', 'model': training, 'source_ids': 'rh_formation',
     'n_agents': 'wide.trained_agents', 'as_of': year_end, 'delivery_ids': 'wide.delivery_ids'},
    {'id': 'training_days_per_agent', 'model': training, 'source_ids': 'rh_formation,rh_effectifs',
     'n_agents': 'least(wide.trained_agents, wide.permanent_staff)', 'as_of': year_end,
     'delivery_ids': 'wide.per_agent_delivery_ids'},
    {'id': 'individual_hr_orders', 'model': 'int_hr__order_metrics', 'source_ids': 'rh_arretes',
     'n_agents': 'wide.individual_hr_orders', 'as_of': year_end, 'delivery_ids': 'wide.delivery_ids'},
] %}

with indicator_values as (
{%- for indicator in indicators %}
    select
        cast('{{ indicator.id }}' as varchar) as indicator_id,
        cast(wide.year as integer) as year,
        cast(null as varchar) as code_insee,
        {%- if indicator.n_agents %}
        cast({{ suppress_small_cells('wide.' ~ indicator.id, indicator.n_agents, threshold) }} as {{ type_double() }})
            as value,
        {%- else %}
        cast(wide.{{ indicator.id }} as {{ type_double() }}) as value,
        {%- endif %}
        cast({{ indicator.as_of }} as date) as as_of_date,
        cast(null as varchar) as comment,
        cast('{{ indicator.source_ids }}' as varchar) as source_ids,
        cast({{ indicator.delivery_ids }} as varchar) as delivery_ids
    from {{ ref(indicator.model) }} as wide
    where wide.{{ indicator.id }} is not null
    {%- if not loop.last %}
    union all
    {%- endif %}
{%- endfor %}
)

-- Une valeur masquée (NULL) n'est pas publiée : la ligne disparaît, comme une valeur non
-- calculable (fct_indicator_values exige une valeur).
select * from indicator_values
where value is not null
