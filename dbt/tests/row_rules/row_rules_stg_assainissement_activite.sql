{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 5 tests de ref('stg_assainissement_activite') déclarés dans models/staging/water/stg_assainissement_activite.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_assainissement_activite_spanc_sale_inspections__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_assainissement_activite'), column_name="spanc_sale_inspections", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_assainissement_activite_stormwater_requests__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_assainissement_activite'), column_name="stormwater_requests", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_assainissement_activite_wastewater_connections_created__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_assainissement_activite'), column_name="wastewater_connections_created", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_assainissement_activite_delivery_id__file_sha256__row_number__campaign_year__department__code_insee__month__spanc_sale_inspections__wastewater_connections_created__stormwater_requests' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_assainissement_activite'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "code_insee", "month", "spanc_sale_inspections", "wastewater_connections_created", "stormwater_requests"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_assainissement_activite_campaign_year__code_insee__month' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_assainissement_activite'), combination_of_columns=["campaign_year", "code_insee", "month"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
