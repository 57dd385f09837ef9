{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('stg_permis_de_louer') déclarés dans models/staging/housing/stg_permis_de_louer.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_permis_de_louer_dwellings_in_scope__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_permis_de_louer'), column_name="dwellings_in_scope", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_permis_de_louer_permit_requests__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_permis_de_louer'), column_name="permit_requests", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_permis_de_louer_permits_granted__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_permis_de_louer'), column_name="permits_granted", min_value=0) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_permis_de_louer_delivery_id__file_sha256__row_number__campaign_year__department__code_insee__membership_date__dwellings_in_scope__permit_requests__permits_granted' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_permis_de_louer'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "code_insee", "membership_date", "dwellings_in_scope", "permit_requests", "permits_granted"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_permis_de_louer_campaign_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_permis_de_louer'), combination_of_columns=["campaign_year", "code_insee"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_permis_de_louer_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_permis_de_louer'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
