{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 8 tests de ref('stg_rh_effectifs') déclarés dans models/staging/hr/stg_rh_effectifs.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_rh_effectifs_age_months__911__180' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_rh_effectifs'), column_name="age_months", max_value=911, min_value=180) }}
    ) as rule_rows
    union all
    select 'accepted_range_stg_rh_effectifs_fte_share__1__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_rh_effectifs'), column_name="fte_share", max_value=1, min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_rh_effectifs_employment_status__TITULAIRE__STAGIAIRE__CONTRACTUEL_PERMANENT__APPRENTI__DROIT_PRIVE__NON_PERMANENT' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_rh_effectifs'), column_name="employment_status", values=["TITULAIRE", "STAGIAIRE", "CONTRACTUEL_PERMANENT", "APPRENTI", "DROIT_PRIVE", "NON_PERMANENT"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_rh_effectifs_grade_category__A__B__C' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_rh_effectifs'), column_name="grade_category", values=["A", "B", "C"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_rh_effectifs_sex__F__M' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_rh_effectifs'), column_name="sex", values=["F", "M"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_rh_effectifs_delivery_id__file_sha256__row_number__campaign_year__department__agent_pseudonym__observation_date__age_months__sex__employment_status__directorate__fte_share__entry_date' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_rh_effectifs'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "agent_pseudonym", "observation_date", "age_months", "sex", "employment_status", "directorate", "fte_share", "entry_date"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_rh_effectifs_campaign_year__agent_pseudonym' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_rh_effectifs'), combination_of_columns=["campaign_year", "agent_pseudonym"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_rh_effectifs_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_rh_effectifs'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
