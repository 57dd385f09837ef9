{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 7 tests de ref('int_hr__training_metrics') déclarés dans models/intermediate/hr/int_hr__training_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_hr__training_metrics_permanent_staff__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__training_metrics'), column_name="permanent_staff", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__training_metrics_trained_agents__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__training_metrics'), column_name="trained_agents", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__training_metrics_training_days__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__training_metrics'), column_name="training_days", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_hr__training_metrics_training_days_per_agent__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__training_metrics'), column_name="training_days_per_agent", min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_hr__training_metrics__training_days_per_agent_is_null_or_per_agent_delivery_ids_is_not_null_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_hr__training_metrics'), expression="(training_days_per_agent is null) or (per_agent_delivery_ids is not null)") }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_hr__training_metrics_year__training_days__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_hr__training_metrics'), columns=["year", "training_days", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_hr__training_metrics_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_hr__training_metrics'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
