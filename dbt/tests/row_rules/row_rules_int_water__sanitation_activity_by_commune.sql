{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 3 tests de ref('int_water__sanitation_activity_by_commune') déclarés dans models/intermediate/water/int_water__sanitation_activity_by_commune.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'not_null_columns_int_water__sanitation_activity_by_commune_year__sanitation_property_sale_inspections__stormwater_parcel_requests__wastewater_connection_boxes_created__delivery_ids' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('int_water__sanitation_activity_by_commune'), columns=["year", "sanitation_property_sale_inspections", "stormwater_parcel_requests", "wastewater_connection_boxes_created", "delivery_ids"]) }}
    ) as rule_rows
    union all
    select 'relationships_int_water__sanitation_activity_by_commune_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_water__sanitation_activity_by_commune'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_int_water__sanitation_activity_by_commune_year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('int_water__sanitation_activity_by_commune'), combination_of_columns=["year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
