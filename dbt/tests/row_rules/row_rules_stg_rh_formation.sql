{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 4 tests de ref('stg_rh_formation') déclarés dans models/staging/hr/stg_rh_formation.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_rh_formation_training_days__False__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_rh_formation'), column_name="training_days", inclusive=false, min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_rh_formation_delivery_id__file_sha256__row_number__campaign_year__department__agent_pseudonym__start_date__training_days__training_title' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_rh_formation'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "agent_pseudonym", "start_date", "training_days", "training_title"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_rh_formation_campaign_year__agent_pseudonym__start_date__training_title' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_rh_formation'), combination_of_columns=["campaign_year", "agent_pseudonym", "start_date", "training_title"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_rh_formation_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_rh_formation'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
