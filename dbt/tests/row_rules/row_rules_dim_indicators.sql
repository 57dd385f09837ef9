{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 8 tests de ref('dim_indicators') déclarés dans models/marts/core/dim_indicators.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_values_dim_indicators_breakdown__commune__none' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('dim_indicators'), column_name="breakdown", values=["commune", "none"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_dim_indicators_computation__derived__declared' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('dim_indicators'), column_name="computation", values=["derived", "declared"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_dim_indicators_kind__value__target__forecast' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('dim_indicators'), column_name="kind", values=["value", "target", "forecast"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_dim_indicators_priority__P1__P2__P3__P4__APPUI__TERRITOIRE' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('dim_indicators'), column_name="priority", values=["P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"]) }}
    ) as rule_rows
    union all
    select 'relationships_dim_indicators_target_indicator_id__indicator_id__ref_dim_indicators_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('dim_indicators'), column_name="target_indicator_id", field="indicator_id", to=(ref('dim_indicators'))) }}
    ) as rule_rows
    union all
    select 'relationships_dim_indicators_target_of__indicator_id__ref_dim_indicators_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('dim_indicators'), column_name="target_of", field="indicator_id", to=(ref('dim_indicators'))) }}
    ) as rule_rows
    union all
    select 'unique_dim_indicators_indicator_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('dim_indicators'), column_name="indicator_id") }}
    ) as rule_rows
    union all
    select 'unique_dim_indicators_target_indicator_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('dim_indicators'), column_name="target_indicator_id") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
