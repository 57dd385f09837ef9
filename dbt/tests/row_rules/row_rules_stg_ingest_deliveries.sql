{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 5 tests de ref('stg_ingest_deliveries') déclarés dans models/staging/ingest/stg_ingest_deliveries.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_values_stg_ingest_deliveries_outcome__accepted__rejected' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_ingest_deliveries'), column_name="outcome", values=["accepted", "rejected"]) }}
    ) as rule_rows
    union all
    select 'expression_is_true_stg_ingest_deliveries_not_is_in_force_or_outcome_accepted_' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_expression_is_true(model=ref('stg_ingest_deliveries'), expression="not is_in_force or outcome = 'accepted'") }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_ingest_deliveries_delivery_id__campaign_year__department__source_id__outcome__is_in_force' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_ingest_deliveries'), columns=["delivery_id", "campaign_year", "department", "source_id", "outcome", "is_in_force"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_ingest_deliveries_campaign_year__department__source_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model="(select * from " ~ ref('stg_ingest_deliveries') ~ " where " ~ "is_in_force" ~ ") dbt_subquery", combination_of_columns=["campaign_year", "department", "source_id"]) }}
    ) as rule_rows
    union all
    select 'unique_stg_ingest_deliveries_delivery_id' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique(model=ref('stg_ingest_deliveries'), column_name="delivery_id") }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
