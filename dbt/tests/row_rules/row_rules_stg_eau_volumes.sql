{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('stg_eau_volumes') déclarés dans models/staging/water/stg_eau_volumes.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_eau_volumes_volume_authorised_consumption_m3__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_volumes'), column_name="volume_authorised_consumption_m3", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_volumes_volume_exported_m3__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_volumes'), column_name="volume_exported_m3", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_volumes_volume_imported_m3__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_volumes'), column_name="volume_imported_m3", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_volumes_volume_produced_m3__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_volumes'), column_name="volume_produced_m3", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_eau_volumes_delivery_id__file_sha256__row_number__campaign_year__department__udi_code__month__volume_produced_m3__volume_imported_m3__volume_exported_m3__volume_authorised_consumption_m3' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_eau_volumes'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "udi_code", "month", "volume_produced_m3", "volume_imported_m3", "volume_exported_m3", "volume_authorised_consumption_m3"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_eau_volumes_campaign_year__udi_code__month' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_eau_volumes'), combination_of_columns=["campaign_year", "udi_code", "month"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
