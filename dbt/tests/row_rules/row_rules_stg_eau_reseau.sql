{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 9 tests de ref('stg_eau_reseau') déclarés dans models/staging/water/stg_eau_reseau.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_eau_reseau_capex_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_reseau'), column_name="capex_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_reseau_combined_network_length_km__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_reseau'), column_name="combined_network_length_km", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_reseau_network_length_km__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_reseau'), column_name="network_length_km", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_reseau_renewed_length_km__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_reseau'), column_name="renewed_length_km", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_reseau_subscriber_count__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_reseau'), column_name="subscriber_count", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_eau_reseau_management_mode__regie__delegation' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_eau_reseau'), column_name="management_mode", values=["regie", "delegation"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_eau_reseau_network_type__eau_potable__assainissement' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_eau_reseau'), column_name="network_type", values=["eau_potable", "assainissement"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_eau_reseau_delivery_id__file_sha256__row_number__campaign_year__department__code_insee__network_type__management_mode__network_length_km__combined_network_length_km__renewed_length_km__subscriber_count__capex_eur' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_eau_reseau'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "code_insee", "network_type", "management_mode", "network_length_km", "combined_network_length_km", "renewed_length_km", "subscriber_count", "capex_eur"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_eau_reseau_campaign_year__code_insee__network_type' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_eau_reseau'), combination_of_columns=["campaign_year", "code_insee", "network_type"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
