{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 10 tests de ref('int_hr__staff_metrics') déclarés dans models/intermediate/hr/int_hr__staff_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_hr__staff_metrics_apprenticeship_contracts__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="apprenticeship_contracts", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_average_agent_age__76__15' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="average_agent_age", max_value=76, min_value=15) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_permanent_staff__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="permanent_staff", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_permanent_women__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="permanent_women", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_private_law_contracts__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="private_law_contracts", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_staff_fte__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="staff_fte", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__staff_metrics_staff_women_share__100__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__staff_metrics'), column_name="staff_women_share", max_value=100, min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_hr__staff_metrics_permanent_women_permanent_staff_and_apprenticeship_contracts_private_law_contracts_permanent_staff' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_hr__staff_metrics'), expression="permanent_women <= permanent_staff and apprenticeship_contracts + private_law_contracts <= permanent_staff") }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_hr__staff_metrics_year__observation_date__permanent_staff__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_hr__staff_metrics'), columns=["year", "observation_date", "permanent_staff", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_hr__staff_metrics_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_hr__staff_metrics'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
