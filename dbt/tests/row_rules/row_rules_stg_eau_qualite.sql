{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 5 tests de ref('stg_eau_qualite') déclarés dans models/staging/water/stg_eau_qualite.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_eau_qualite_quality_limit__False__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_qualite'), column_name="quality_limit", inclusive=false, min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_eau_qualite_result_value__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_eau_qualite'), column_name="result_value", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_eau_qualite_analysis_type__microbiologique__physico_chimique' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_eau_qualite'), column_name="analysis_type", values=["microbiologique", "physico-chimique"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_eau_qualite_delivery_id__file_sha256__row_number__campaign_year__department__sample_id__sample_date__udi_code__analysis_type__parameter__result_value__result_unit__quality_limit' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_eau_qualite'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "sample_id", "sample_date", "udi_code", "analysis_type", "parameter", "result_value", "result_unit", "quality_limit"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_eau_qualite_campaign_year__sample_id__parameter' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_eau_qualite'), combination_of_columns=["campaign_year", "sample_id", "parameter"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
