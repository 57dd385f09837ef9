{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 8 tests de ref('stg_amelioration_habitat') déclarés dans models/staging/housing/stg_amelioration_habitat.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_amelioration_habitat_agglo_aid_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_amelioration_habitat'), column_name="agglo_aid_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_amelioration_habitat_anah_aid_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_amelioration_habitat'), column_name="anah_aid_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_amelioration_habitat_dwellings__1' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_amelioration_habitat'), column_name="dwellings", min_value=1) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_amelioration_habitat_works_amount_eur__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_amelioration_habitat'), column_name="works_amount_eur", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_amelioration_habitat_aid_scheme__OPAH_RU__MA_PRIME_ADAPT__MA_PRIME_RENOV_ACCOMPAGNE__AUTRE' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_amelioration_habitat'), column_name="aid_scheme", values=["OPAH_RU", "MA_PRIME_ADAPT", "MA_PRIME_RENOV_ACCOMPAGNE", "AUTRE"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_amelioration_habitat_delivery_id__file_sha256__row_number__campaign_year__department__dossier_id__code_insee__aid_scheme__dwellings__agglo_aid_eur__anah_aid_eur__works_amount_eur__commitment_date' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_amelioration_habitat'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "dossier_id", "code_insee", "aid_scheme", "dwellings", "agglo_aid_eur", "anah_aid_eur", "works_amount_eur", "commitment_date"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_amelioration_habitat_campaign_year__dossier_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_amelioration_habitat'), combination_of_columns=["campaign_year", "dossier_id"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_amelioration_habitat_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_amelioration_habitat'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
