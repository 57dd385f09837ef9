{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 7 tests de ref('int_waste__recycling_centre_metrics') déclarés dans models/intermediate/waste/int_waste__recycling_centre_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_waste__recycling_centre_metrics_received_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__recycling_centre_metrics'), column_name="received_tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__recycling_centre_metrics_recovered_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__recycling_centre_metrics'), column_name="recovered_tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__recycling_centre_metrics_recycling_centre_recovery_rate__100__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__recycling_centre_metrics'), column_name="recycling_centre_recovery_rate", max_value=100, min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__recycling_centre_metrics_recycling_centre_tonnage__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__recycling_centre_metrics'), column_name="recycling_centre_tonnage", min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_waste__recycling_centre_metrics_recovered_tonnage_t_received_tonnage_t_0_001' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_waste__recycling_centre_metrics'), expression="recovered_tonnage_t <= received_tonnage_t + 0.001") }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_waste__recycling_centre_metrics_year__received_tonnage_t__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_waste__recycling_centre_metrics'), columns=["year", "received_tonnage_t", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_waste__recycling_centre_metrics_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_waste__recycling_centre_metrics'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
