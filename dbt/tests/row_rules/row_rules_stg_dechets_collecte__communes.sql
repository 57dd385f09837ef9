{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Le test de ref('stg_dechets_collecte') déclaré dans models/staging/waste/stg_dechets_collecte.yml,
    en test singulier : même macro, mêmes arguments, mêmes données.
    Il lit aussi communes : à part des autres tests du modèle, pour que dbt build saute
    en cas d'échec exactement ce que sautait le test d'origine (mêmes dépendances).
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'relationships_stg_dechets_collecte_code_insee__code_insee__ref_communes_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('stg_dechets_collecte'), column_name="code_insee", field="code_insee", to=(ref('communes'))) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
