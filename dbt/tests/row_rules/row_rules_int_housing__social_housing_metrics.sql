{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('int_housing__social_housing_metrics') déclarés dans models/intermediate/housing/int_housing__social_housing_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_housing__social_housing_metrics_social_housing_acquired_improved_programmed__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__social_housing_metrics'), column_name="social_housing_acquired_improved_programmed", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__social_housing_metrics_social_housing_new_programmed__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__social_housing_metrics'), column_name="social_housing_new_programmed", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__social_housing_metrics_social_housing_state_delegated_credits__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__social_housing_metrics'), column_name="social_housing_state_delegated_credits", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_housing__social_housing_metrics_year__social_housing_new_programmed__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_housing__social_housing_metrics'), columns=["year", "social_housing_new_programmed", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_housing__social_housing_metrics_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_housing__social_housing_metrics'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_housing__social_housing_metrics_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_housing__social_housing_metrics'), combination_of_columns=["year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
