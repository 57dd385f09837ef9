{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 8 tests de ref('indicator_catalogue') déclarés dans seeds/indicator_catalogue.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_values_indicator_catalogue_breakdown__commune__none' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('indicator_catalogue'), column_name="breakdown", values=["commune", "none"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_indicator_catalogue_computation__derived__declared' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('indicator_catalogue'), column_name="computation", values=["derived", "declared"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_indicator_catalogue_kind__value__target__forecast' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('indicator_catalogue'), column_name="kind", values=["value", "target", "forecast"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_indicator_catalogue_priority__P1__P2__P3__P4__APPUI__TERRITOIRE' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('indicator_catalogue'), column_name="priority", values=["P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_indicator_catalogue_published_qualifier__eq__gte__approx__target' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('indicator_catalogue'), column_name="published_qualifier", values=["eq", "gte", "approx", "target"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_indicator_catalogue_indicator_id__priority__objective__label_fr__unit__department__kind__computation__source__breakdown' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('indicator_catalogue'), columns=["indicator_id", "priority", "objective", "label_fr", "unit", "department", "kind", "computation", "source", "breakdown"]) }}
    ) as rule_rows
    union all
    select 'not_null_indicator_catalogue_definition' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_not_null(model="(select * from " ~ ref('indicator_catalogue') ~ " where " ~ "computation = 'derived'" ~ ") dbt_subquery", column_name="definition") }}
    ) as rule_rows
    union all
    select 'unique_indicator_catalogue_indicator_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('indicator_catalogue'), column_name="indicator_id") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
