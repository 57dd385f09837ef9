{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 7 tests de ref('int_waste__household_waste_metrics') déclarés dans models/intermediate/waste/int_waste__household_waste_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_waste__household_waste_metrics_collected_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__household_waste_metrics'), column_name="collected_tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__household_waste_metrics_household_waste_per_inhabitant__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__household_waste_metrics'), column_name="household_waste_per_inhabitant", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__household_waste_metrics_household_waste_tonnage__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__household_waste_metrics'), column_name="household_waste_tonnage", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__household_waste_metrics_population_municipale__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__household_waste_metrics'), column_name="population_municipale", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__household_waste_metrics_recycling_centre_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__household_waste_metrics'), column_name="recycling_centre_tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_waste__household_waste_metrics_year__population_municipale__collected_tonnage_t__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_waste__household_waste_metrics'), columns=["year", "population_municipale", "collected_tonnage_t", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_waste__household_waste_metrics_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_waste__household_waste_metrics'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
