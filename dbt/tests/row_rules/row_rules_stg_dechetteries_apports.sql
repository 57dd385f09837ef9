{#
    GÉNÉRÉ par `kpi generate` (dagster_project/defs/assets/dbt_row_rules.py) : ne pas modifier à la main.
    Les 6 tests de ref('stg_dechetteries_apports') déclarés dans models/staging/waste/stg_dechetteries_apports.yml,
    en un seul test dbt (un nœud au lieu d'un par test) : mêmes macros, mêmes arguments, mêmes données.
    Une ligne par test d'origine en échec : rule (son nom dbt), failures (ce qu'il aurait compté).
    Le build de production (DBT_BUILD_ARGS) lance ce test à la place des tests d'origine.
#}
select rule, failures
from (
    select 'accepted_range_stg_dechetteries_apports_tonnage_t__0' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_range(model=ref('stg_dechetteries_apports'), column_name="tonnage_t", min_value=0) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_dechetteries_apports_treatment_channel__REEMPLOI__VALORISATION_MATIERE__VALORISATION_ORGANIQUE__VALORISATION_ENERGETIQUE__ENFOUISSEMENT' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_dechetteries_apports'), column_name="treatment_channel", values=["REEMPLOI", "VALORISATION_MATIERE", "VALORISATION_ORGANIQUE", "VALORISATION_ENERGETIQUE", "ENFOUISSEMENT"]) }}
    ) as rule_rows
    union all
    select 'accepted_values_stg_dechetteries_apports_waste_fraction__BOIS__PLATRE__GRAVATS__DECHETS_VERTS__DEEE__CARTON__FERRAILLE__MOBILIER__TOUT_VENANT__DDS__AUTRE' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_accepted_values(model=ref('stg_dechetteries_apports'), column_name="waste_fraction", values=["BOIS", "PLATRE", "GRAVATS", "DECHETS_VERTS", "DEEE", "CARTON", "FERRAILLE", "MOBILIER", "TOUT_VENANT", "DDS", "AUTRE"]) }}
    ) as rule_rows
    union all
    select 'not_null_columns_stg_dechetteries_apports_delivery_id__file_sha256__row_number__campaign_year__department__recycling_centre__reception_month__waste_fraction__treatment_channel__tonnage_t' as rule, cast(coalesce(sum(null_rows), 0) as bigint) as failures
    from (
        {{ test_not_null_columns(model=ref('stg_dechetteries_apports'), columns=["delivery_id", "file_sha256", "row_number", "campaign_year", "department", "recycling_centre", "reception_month", "waste_fraction", "treatment_channel", "tonnage_t"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechetteries_apports_campaign_year__recycling_centre__reception_month__waste_fraction' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechetteries_apports'), combination_of_columns=["campaign_year", "recycling_centre", "reception_month", "waste_fraction"]) }}
    ) as rule_rows
    union all
    select 'unique_combination_of_columns_stg_dechetteries_apports_delivery_id__row_number' as rule, cast(count(*) as bigint) as failures
    from (
        {{ test_unique_combination_of_columns(model=ref('stg_dechetteries_apports'), combination_of_columns=["delivery_id", "row_number"]) }}
    ) as rule_rows
) as row_rules
where failures <> 0
{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}
