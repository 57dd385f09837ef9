{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 14 tests de ref('int_housing__habitat_improvement_metrics') déclarés dans models/intermediate/housing/int_housing__habitat_improvement_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpa_adapted_dwellings__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpa_adapted_dwellings", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpa_agglo_subsidy__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpa_agglo_subsidy", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpa_anah_credits__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpa_anah_credits", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpa_works_amount__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpa_works_amount", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpr_accompanied_owners__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpr_accompanied_owners", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpr_agglo_own_funds__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpr_agglo_own_funds", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_mpr_anah_funding__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="mpr_anah_funding", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_opah_ru_agglo_aid__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="opah_ru_agglo_aid", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_opah_ru_anah_aid__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="opah_ru_anah_aid", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_opah_ru_dwellings_subsidised__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="opah_ru_dwellings_subsidised", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__habitat_improvement_metrics_opah_ru_works_generated__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__habitat_improvement_metrics'), column_name="opah_ru_works_generated", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_housing__habitat_improvement_metrics_year__opah_ru_dwellings_subsidised__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_housing__habitat_improvement_metrics'), columns=["year", "opah_ru_dwellings_subsidised", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_housing__habitat_improvement_metrics_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_housing__habitat_improvement_metrics'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_housing__habitat_improvement_metrics_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_housing__habitat_improvement_metrics'), combination_of_columns=["year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
