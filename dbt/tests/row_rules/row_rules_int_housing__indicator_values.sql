{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('int_housing__indicator_values') déclarés dans models/intermediate/housing/int_housing__indicator_values.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_int_housing__indicator_values_value__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('int_housing__indicator_values'), column_name="value", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_int_housing__indicator_values_source_ids__logements_sociaux__amelioration_habitat__permis_de_louer' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('int_housing__indicator_values'), column_name="source_ids", values=["logements_sociaux", "amelioration_habitat", "permis_de_louer"]) }}
    ) as rule_rows
    union all
    select 'int_housing__indicator_values_indicator_id_is_housing_derived' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('int_housing__indicator_values'), column_name="indicator_id", values=["opah_ru_dwellings_subsidised", "opah_ru_agglo_aid", "opah_ru_anah_aid", "opah_ru_works_generated", "mpr_accompanied_owners", "mpr_anah_funding", "mpr_agglo_own_funds", "mpa_adapted_dwellings", "mpa_anah_credits", "mpa_agglo_subsidy", "mpa_works_amount", "social_housing_new_programmed", "social_housing_acquired_improved_programmed", "social_housing_state_delegated_credits", "rental_permit_communes", "rental_permit_new_communes", "rental_permit_dwellings_in_scope", "rental_permits_granted", "rental_permit_requests"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_int_housing__indicator_values_indicator_id__year__value__as_of_date__source_ids__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_housing__indicator_values'), columns=["indicator_id", "year", "value", "as_of_date", "source_ids", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_housing__indicator_values_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_housing__indicator_values'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_housing__indicator_values_indicator_id__year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_housing__indicator_values'), combination_of_columns=["indicator_id", "year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
