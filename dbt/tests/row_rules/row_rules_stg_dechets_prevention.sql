{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('stg_dechets_prevention') déclarés dans models/staging/waste/stg_dechets_prevention.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_dechets_prevention_households_sensitised__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_dechets_prevention'), column_name="households_sensitised", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_dechets_prevention_quantity__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_dechets_prevention'), column_name="quantity", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_dechets_prevention_action_type__CONTROLE_BACS__COMPOSTEUR__ATELIER__ANIMATION_SCOLAIRE__STAND' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_dechets_prevention'), column_name="action_type", values=["CONTROLE_BACS", "COMPOSTEUR", "ATELIER", "ANIMATION_SCOLAIRE", "STAND"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_dechets_prevention_delivery_id__file_sha256__row_number__campaign_year__department__action_id__action_date__action_type__quantity__households_sensitised' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_dechets_prevention'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "action_id", "action_date", "action_type", "quantity", "households_sensitised"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechets_prevention_campaign_year__action_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechets_prevention'), combination_of_columns=["campaign_year", "action_id"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechets_prevention_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechets_prevention'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
