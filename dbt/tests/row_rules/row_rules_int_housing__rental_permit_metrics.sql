{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 12 tests de ref('int_housing__rental_permit_metrics') déclarés dans models/intermediate/housing/int_housing__rental_permit_metrics.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_housing__rental_permit_metrics_rental_permit_communes__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_communes", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__rental_permit_metrics_rental_permit_dwellings_in_scope__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_dwellings_in_scope", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__rental_permit_metrics_rental_permit_new_communes__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_new_communes", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__rental_permit_metrics_rental_permit_requests__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_requests", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_housing__rental_permit_metrics_rental_permits_granted__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permits_granted", min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_housing__rental_permit_metrics__code_insee_is_null_rental_permit_communes_is_not_null_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_housing__rental_permit_metrics'), expression="(code_insee is null) = (rental_permit_communes is not null)") }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_housing__rental_permit_metrics_rental_permit_communes__rental_permit_communes_is_null_or_rental_permit_communes_select_count_from_ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_communes", expression="rental_permit_communes is null or rental_permit_communes <= (select count(*) from " ~ (ref('communes')) ~ ")") }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_housing__rental_permit_metrics_rental_permit_new_communes__rental_permit_new_communes_is_null_or_rental_permit_new_communes_select_count_from_ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_housing__rental_permit_metrics'), column_name="rental_permit_new_communes", expression="rental_permit_new_communes is null or rental_permit_new_communes <= (select count(*) from " ~ (ref('communes')) ~ ")") }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_housing__rental_permit_metrics_rental_permits_granted_rental_permit_requests' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_housing__rental_permit_metrics'), expression="rental_permits_granted <= rental_permit_requests") }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_housing__rental_permit_metrics_year__rental_permit_dwellings_in_scope__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_housing__rental_permit_metrics'), columns=["year", "rental_permit_dwellings_in_scope", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_housing__rental_permit_metrics_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_housing__rental_permit_metrics'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_housing__rental_permit_metrics_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_housing__rental_permit_metrics'), combination_of_columns=["year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
