{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 4 tests de ref('indicator_catalogue_extensions') déclarés dans seeds/indicator_catalogue_extensions.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_indicator_catalogue_extensions_plausibility_factor__False__1' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('indicator_catalogue_extensions'), column_name="plausibility_factor", inclusive=false, min_value=1) }}
    ) as rule_rows
    union all
    select 'not_null_columns_indicator_catalogue_extensions_indicator_id__allow_negative__comment_fr' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('indicator_catalogue_extensions'), columns=["indicator_id", "allow_negative", "comment_fr"]) }}
    ) as rule_rows
    union all
    select 'unique_indicator_catalogue_extensions_indicator_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('indicator_catalogue_extensions'), column_name="indicator_id") }}
    ) as rule_rows
    union all
    select 'unique_indicator_catalogue_extensions_target_of' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('indicator_catalogue_extensions'), column_name="target_of") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
