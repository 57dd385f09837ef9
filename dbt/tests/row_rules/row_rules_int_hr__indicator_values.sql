{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('int_hr__indicator_values') déclarés dans models/intermediate/hr/int_hr__indicator_values.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_hr__indicator_values_value__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_hr__indicator_values'), column_name="value", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_int_hr__indicator_values_source_ids__rh_effectifs__rh_formation__rh_arretes__rh_formation_rh_effectifs' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('int_hr__indicator_values'), column_name="source_ids", values=["rh_effectifs", "rh_formation", "rh_arretes", "rh_formation,rh_effectifs"]) }}
    ) as rule_rows
    union all
    select 'expression_is_true_int_hr__indicator_values_code_insee_is_null' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('int_hr__indicator_values'), expression="code_insee is null") }}
    ) as rule_rows
    union all
    select 'int_hr__indicator_values_indicator_id_is_hr_derived' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('int_hr__indicator_values'), column_name="indicator_id", values=["permanent_staff", "apprenticeship_contracts", "private_law_contracts", "average_agent_age", "staff_women_share", "staff_fte", "training_days", "training_days_per_agent", "individual_hr_orders"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_hr__indicator_values_indicator_id__year__value__as_of_date__source_ids__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_hr__indicator_values'), columns=["indicator_id", "year", "value", "as_of_date", "source_ids", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_hr__indicator_values_indicator_id__year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_hr__indicator_values'), combination_of_columns=["indicator_id", "year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
