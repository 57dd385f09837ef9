-- Chaque table de priorité (p1_indicators … territoire_indicators) a exactement les
-- valeurs de fct_indicator_values de sa priorité. Elle les calcule des seuls modèles
-- int_<direction>__indicator_values de sa priorité (macro priority_indicators, vars
-- priority_indicator_value_models) : un modèle oublié dans cette liste, ou une table de
-- priorité non reconstruite alors que ses valeurs ont changé, fait échouer ce test.
{%- set priorities = var('priority_indicator_value_models').keys() | list | sort %}
with expected as (
    select indicator_id, year, code_insee, value, unit, unit_label, as_of_date, comment, kind,
        priority
    from {{ ref('fct_indicator_values') }}
    where priority in ({% for priority in priorities %}'{{ priority }}'{{ ", " if not loop.last }}{% endfor %})
),

actual as (
    {%- for priority in priorities %}
    select indicator_id, year, code_insee, value, unit, unit_label, as_of_date, comment, kind,
        '{{ priority }}' as priority
    from {{ ref(priority | lower ~ '_indicators') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

missing as (
    select * from expected
    except all
    select * from actual
),

extra as (
    select * from actual
    except all
    select * from expected
)

select 'absente de la table de sa priorité' as probleme, * from missing
union all
select 'absente de fct_indicator_values' as probleme, * from extra
