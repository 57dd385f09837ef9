{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 5 tests de ref('units') déclarés dans seeds/units.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'not_empty_string_units_unit' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_not_empty_string(model=ref('units'), column_name="unit") }}
    ) as rule_rows
    union all
    select 'not_empty_string_units_unit_label' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_not_empty_string(model=ref('units'), column_name="unit_label") }}
    ) as rule_rows
    union all
    select 'not_null_units_unit' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_not_null(model=ref('units'), column_name="unit") }}
    ) as rule_rows
    union all
    select 'not_null_units_unit_label' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_not_null(model=ref('units'), column_name="unit_label") }}
    ) as rule_rows
    union all
    select 'unique_units_unit' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('units'), column_name="unit") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
