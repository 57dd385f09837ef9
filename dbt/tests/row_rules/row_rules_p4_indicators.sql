{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 3 tests de ref('p4_indicators') déclarés dans models/marts/p4/p4_indicators.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'relationships_p4_indicators_code_insee__code_insee__ref_dim_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('p4_indicators'), column_name="code_insee", field="code_insee", to=(ref('dim_communes'))) }}
    ) as rule_rows
    union all
    select 'relationships_p4_indicators_indicator_id__indicator_id__ref_dim_indicators_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('p4_indicators'), column_name="indicator_id", field="indicator_id", to=(ref('dim_indicators'))) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_p4_indicators_indicator_id__year__code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('p4_indicators'), combination_of_columns=["indicator_id", "year", "code_insee"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
