{#
    Les valeurs d'indicateurs au format de fct_indicator_values (mêmes colonnes, mêmes
    types, mêmes commentaires du Pilotage), calculées à partir des modèles
    int_<direction>__indicator_values de la liste ``models``.

    fct_indicator_values les lit tous ; la table d'une priorité (priority_indicators)
    ne lit que ceux qui peuvent donner une valeur de cette priorité ou de ses objectifs
    (indicator_value_models(priority)) : dbt sait ainsi qu'une nouvelle livraison d'eau
    ne change pas la table de la priorité P1, et une exécution limitée à cette livraison
    ne la reconstruit pas. Le test assert_priority_tables_match_fct_indicator_values
    vérifie à chaque build que chaque table de priorité a exactement les valeurs de
    fct_indicator_values pour sa priorité.
#}
{% macro indicator_values(models) -%}
with indicator_values as (
    {%- for model_name in models %}
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
{%- endmacro %}


{#
    Les modèles int_<direction>__indicator_values (vars indicator_value_models de
    dbt_project.yml) : tous, dans l'ordre de la liste, ou ceux d'une priorité
    (vars priority_indicator_value_models).
#}
{% macro indicator_value_models(priority=none) -%}
    {%- set models = var('indicator_value_models') -%}
    {%- if priority is none -%}
        {{ return(models) }}
    {%- endif -%}
    {%- set of_priority = var('priority_indicator_value_models')[priority] -%}
    {{ return(models | select('in', of_priority) | list) }}
{%- endmacro %}
