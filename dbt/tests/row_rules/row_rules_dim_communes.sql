{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 3 tests de ref('dim_communes') déclarés dans models/marts/core/dim_communes.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'unique_dim_communes_code_insee' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('dim_communes'), column_name="code_insee") }}
    ) as rule_rows
    union all
    select 'unique_dim_communes_commune_name' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('dim_communes'), column_name="commune_name") }}
    ) as rule_rows
    union all
    select 'unique_dim_communes_siren' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('dim_communes'), column_name="siren") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
