{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 2 tests de ref('stg_indicateurs_declares') déclarés dans models/staging/declared/stg_indicateurs_declares.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'not_null_columns_stg_indicateurs_declares_delivery_id__file_sha256__row_number__campaign_year__department__indicator_id__value__value_date__produced_by' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_indicateurs_declares'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "indicator_id", "value", "value_date", "produced_by"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_indicateurs_declares_campaign_year__department__indicator_id__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_indicateurs_declares'), combination_of_columns=["campaign_year", "department", "indicator_id", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
