{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Le test de ref('stg_indicateurs_declares') déclaré dans models/staging/declared/stg_indicateurs_declares.yml,
    en test singulier : même macro, mêmes arguments, mêmes données.
    Il lit aussi indicator_catalogue : à part des autres tests du modèle, pour que dbt build saute
    en cas d'échec exactement ce que sautait le test d'origine (mêmes dépendances).
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'relationships_stg_indicateurs_declares_indicator_id__indicator_id__ref_indicator_catalogue_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_relationships(model=ref('stg_indicateurs_declares'), column_name="indicator_id", field="indicator_id", to=(ref('indicator_catalogue'))) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
