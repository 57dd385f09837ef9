{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 7 tests de ref('communes') déclarés dans seeds/communes.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_communes_population_municipale__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('communes'), column_name="population_municipale", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_range_communes_population_totale__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('communes'), column_name="population_totale", min_value=0) }}
    ) as rule_rows
    union all
    select 'expression_is_true_communes_code_insee__length_code_insee_5' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('communes'), column_name="code_insee", expression="length(code_insee) = 5") }}
    ) as rule_rows
    union all
    select 'not_null_columns_communes_code_insee__nom__siren__codes_postaux__population_municipale__population_totale' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('communes'), columns=["code_insee", "nom", "siren", "codes_postaux", "population_municipale", "population_totale"]) }}
    ) as rule_rows
    union all
    select 'unique_communes_code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('communes'), column_name="code_insee") }}
    ) as rule_rows
    union all
    select 'unique_communes_nom' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('communes'), column_name="nom") }}
    ) as rule_rows
    union all
    select 'unique_communes_siren' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('communes'), column_name="siren") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
