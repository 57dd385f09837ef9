{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 4 tests de ref('int_water__network_renewal_rate') déclarés dans models/intermediate/water/int_water__network_renewal_rate.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_water__network_renewal_rate_water_network_renewal_rate__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_water__network_renewal_rate'), column_name="water_network_renewal_rate", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_int_water__network_renewal_rate_years_used__5__1' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_water__network_renewal_rate'), column_name="years_used", max_value=5, min_value=1) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_water__network_renewal_rate_year__first_year_used__years_used__renewed_length_km_window__network_length_km__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_water__network_renewal_rate'), columns=["year", "first_year_used", "years_used", "renewed_length_km_window", "network_length_km", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_water__network_renewal_rate_year' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_water__network_renewal_rate'), combination_of_columns=["year"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
