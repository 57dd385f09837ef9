{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 3 tests de ref('int_hr__order_metrics') déclarés dans models/intermediate/hr/int_hr__order_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_hr__order_metrics_individual_hr_orders__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__order_metrics'), column_name="individual_hr_orders", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_hr__order_metrics_year__individual_hr_orders__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_hr__order_metrics'), columns=["year", "individual_hr_orders", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_hr__order_metrics_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_hr__order_metrics'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
