{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 13 tests de ref('int_waste__prevention_metrics') déclarés dans models/intermediate/waste/int_waste__prevention_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_waste__prevention_metrics_bin_checks_communes__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="bin_checks_communes", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_bins_checked__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="bins_checked", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_composters_distributed__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="composters_distributed", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_households_sensitised_sorting_errors__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="households_sensitised_sorting_errors", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_waste_prevention_citizens_sensitised__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="waste_prevention_citizens_sensitised", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_waste_prevention_stands__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="waste_prevention_stands", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_waste_pupils_sensitised__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="waste_pupils_sensitised", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_waste_workshop_participants__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="waste_workshop_participants", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_waste__prevention_metrics_waste_workshops__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_waste__prevention_metrics'), column_name="waste_workshops", min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_waste__prevention_metrics__code_insee_is_null_bin_checks_communes_is_not_null_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_waste__prevention_metrics'), expression="(code_insee is null) = (bin_checks_communes is not null)") }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_waste__prevention_metrics_year__delivery_ids__composters_distributed' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_waste__prevention_metrics'), columns=["year", "delivery_ids", "composters_distributed"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_waste__prevention_metrics_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_waste__prevention_metrics'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_waste__prevention_metrics_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_waste__prevention_metrics'), combination_of_columns=["year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
