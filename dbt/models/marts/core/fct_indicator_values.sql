{#-
    Interface publique de l'entrepôt : toutes les valeurs d'indicateurs, une
    ligne par indicateur × année × commune (code_insee NULL = agglomération).
    Chaque direction produit un modèle int_<direction>__indicator_values au
    format commun ; pour en ajouter un, l'ajouter à cette liste.
-#}
{%- set indicator_value_models = [
    'int_water__indicator_values',
    'int_declared__indicator_values',
    'int_waste__indicator_values', 'int_housing__indicator_values', 'int_hr__indicator_values',
] -%}

with indicator_values as (
    {%- for model_name in indicator_value_models %}
    select
        indicator_id,
        year,
        code_insee,
        value,
        as_of_date,
        comment,
        source_ids,
        delivery_ids
    from {{ ref(model_name) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

indicators as (
    select * from {{ ref('dim_indicators') }}
),

-- commentaires du Pilotage sur des valeurs précises (contradictions du rapport...)
steering_comments as (
    select * from {{ ref('value_comments') }}
)

select
    cast(indicator_values.indicator_id as varchar) as indicator_id,
    cast(indicator_values.year as integer) as year,
    cast(indicator_values.code_insee as varchar) as code_insee,
    cast(indicator_values.value as {{ type_double() }}) as value,
    cast(indicators.unit as varchar) as unit,
    cast(indicators.unit_label as varchar) as unit_label,
    cast(indicator_values.as_of_date as date) as as_of_date,
    cast(indicators.kind as varchar) as kind,
    cast(indicators.computation as varchar) as computation,
    cast(indicators.department as varchar) as department,
    cast(indicators.priority as varchar) as priority,
    cast(
        case
            when steering_comments.comment_fr is null then indicator_values.comment
            when indicator_values.comment is null then steering_comments.comment_fr
            else indicator_values.comment || ' — ' || steering_comments.comment_fr
        end as varchar
    ) as comment,
    cast(indicator_values.source_ids as varchar) as source_ids,
    cast(indicator_values.delivery_ids as varchar) as delivery_ids
from indicator_values
left join indicators
    on indicators.indicator_id = indicator_values.indicator_id
left join steering_comments
    on steering_comments.indicator_id = indicator_values.indicator_id
    and steering_comments.year = indicator_values.year
    and coalesce(steering_comments.code_insee, '') = coalesce(indicator_values.code_insee, '')
