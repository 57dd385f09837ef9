{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 9 tests de ref('stg_logements_sociaux') déclarés dans models/staging/housing/stg_logements_sociaux.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_logements_sociaux_agglo_aid_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_logements_sociaux'), column_name="agglo_aid_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_logements_sociaux_plai_dwellings__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_logements_sociaux'), column_name="plai_dwellings", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_logements_sociaux_pls_dwellings__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_logements_sociaux'), column_name="pls_dwellings", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_logements_sociaux_plus_dwellings__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_logements_sociaux'), column_name="plus_dwellings", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_logements_sociaux_state_credits_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_logements_sociaux'), column_name="state_credits_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_logements_sociaux_operation_type__NEUF__ACQUIS_AMELIORE' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_logements_sociaux'), column_name="operation_type", values=["NEUF", "ACQUIS_AMELIORE"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_logements_sociaux_delivery_id__file_sha256__row_number__campaign_year__department__operation_id__code_insee__social_landlord__operation_type__plai_dwellings__plus_dwellings__pls_dwellings__state_credits_eur__agglo_aid_eur__programming_date' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_logements_sociaux'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "operation_id", "code_insee", "social_landlord", "operation_type", "plai_dwellings", "plus_dwellings", "pls_dwellings", "state_credits_eur", "agglo_aid_eur", "programming_date"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_logements_sociaux_campaign_year__operation_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_logements_sociaux'), combination_of_columns=["campaign_year", "operation_id"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_logements_sociaux_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_logements_sociaux'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
