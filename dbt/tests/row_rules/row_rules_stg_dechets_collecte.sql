{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 5 tests de ref('stg_dechets_collecte') déclarés dans models/staging/waste/stg_dechets_collecte.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_dechets_collecte_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_dechets_collecte'), column_name="tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_dechets_collecte_waste_stream__OMR__EMB_PAP__VERRE__BIODECHETS__ENCOMBRANTS' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_dechets_collecte'), column_name="waste_stream", values=["OMR", "EMB_PAP", "VERRE", "BIODECHETS", "ENCOMBRANTS"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_dechets_collecte_delivery_id__file_sha256__row_number__campaign_year__department__code_insee__collection_month__waste_stream__tonnage_t' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_dechets_collecte'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "code_insee", "collection_month", "waste_stream", "tonnage_t"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechets_collecte_campaign_year__code_insee__collection_month__waste_stream' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechets_collecte'), combination_of_columns=["campaign_year", "code_insee", "collection_month", "waste_stream"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechets_collecte_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechets_collecte'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
