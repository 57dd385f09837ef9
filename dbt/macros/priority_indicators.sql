{#
    Table lisible des indicateurs d'une priorité du Projet de territoire
    (P1..P4, APPUI, TERRITOIRE) : libellé, objectif, commune en clair, valeur de
    l'année précédente et évolution, valeur de l'objectif lié.
    Utilisée par p1_indicators, p2_indicators, ..., territoire_indicators. Mêmes
    valeurs que fct_indicator_values pour la priorité (test
    assert_priority_tables_match_fct_indicator_values).
#}
{% macro priority_indicators(priority) -%}
-- les valeurs de fct_indicator_values, calculées des seuls modèles qui peuvent en donner
-- pour cette priorité (macro indicator_values) : une livraison qui n'y contribue pas ne
-- reconstruit pas cette table
with indicator_values as (
    {{ indicator_values(indicator_value_models(priority)) | indent(4) }}
),

indicators as (
    select * from {{ ref('dim_indicators') }}
    where priority = '{{ priority }}'
),

communes as (
    select * from {{ ref('dim_communes') }}
),

selected_values as (
    select
        indicator_values.*,
        indicators.label_fr,
        indicators.objective,
        indicators.target_indicator_id
    from indicator_values
    inner join indicators
        on indicators.indicator_id = indicator_values.indicator_id
)

select
    cast(selected_values.indicator_id as varchar) as indicator_id,
    cast(selected_values.label_fr as varchar) as label_fr,
    cast(selected_values.objective as varchar) as objective,
    cast(selected_values.year as integer) as year,
    cast(selected_values.code_insee as varchar) as code_insee,
    cast(
        case
            when selected_values.code_insee is null then 'Agglomération'
            else communes.commune_name
        end as varchar
    ) as commune_name,
    cast(selected_values.value as {{ type_double() }}) as value,
    cast(selected_values.unit as varchar) as unit,
    cast(selected_values.unit_label as varchar) as unit_label,
    cast(selected_values.as_of_date as date) as as_of_date,
    cast(previous_year.value as {{ type_double() }}) as previous_year_value,
    {{ round_value('selected_values.value - previous_year.value') }} as change,
    {{ round_value(
        'case when previous_year.value <> 0 then 100.0 * (selected_values.value - previous_year.value) / abs(previous_year.value) end'
    ) }} as change_pct,
    cast(selected_values.comment as varchar) as comment,
    cast(target.value as {{ type_double() }}) as target_value,
    cast(selected_values.kind as varchar) as kind
from selected_values
left join communes
    on communes.code_insee = selected_values.code_insee
left join indicator_values as previous_year
    on previous_year.indicator_id = selected_values.indicator_id
    and previous_year.year = selected_values.year - 1
    and coalesce(previous_year.code_insee, '') = coalesce(selected_values.code_insee, '')
left join indicator_values as target
    on target.indicator_id = selected_values.target_indicator_id
    and target.year = selected_values.year
    and coalesce(target.code_insee, '') = coalesce(selected_values.code_insee, '')
{%- endmacro %}
