{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 2 tests de ref('stg_eau_udi') déclarés dans models/staging/water/stg_eau_udi.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'not_null_columns_stg_eau_udi_delivery_id__file_sha256__row_number__campaign_year__department__udi_code__udi_name__code_insee' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_eau_udi'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "udi_code", "udi_name", "code_insee"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_eau_udi_campaign_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_eau_udi'), combination_of_columns=["campaign_year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
