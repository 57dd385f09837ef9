{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 2 tests de ref('int_hr__indicator_values') déclarés dans models/intermediate/hr/int_hr__indicator_values.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Ils lisent aussi indicator_catalogue : à part des autres tests du modèle, pour que dbt build saute
    en cas d'échec exactement ce que sautaient les tests d'origine (mêmes dépendances).
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'matches_catalogue_breakdown_int_hr__indicator_values_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_matches_catalogue_breakdown(model=ref('int_hr__indicator_values')) }}
    ) as rule_rows
    union all
    select 'relationships_int_hr__indicator_values_indicator_id__indicator_id__ref_indicator_catalogue_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('int_hr__indicator_values'), column_name="indicator_id", field="indicator_id", to=(ref('indicator_catalogue'))) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
