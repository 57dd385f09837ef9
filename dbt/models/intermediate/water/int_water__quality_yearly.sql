-- Conformité de l'eau distribuée (source eau_qualite), par prélèvement :
-- un prélèvement est conforme pour un type d'analyse quand TOUS ses paramètres
-- de ce type sont conformes ; la conformité d'un paramètre est celle indiquée
-- (colonne conforme) ou, à défaut, resultat <= limite_qualite.
-- Taux = 100 × prélèvements conformes / prélèvements ayant une analyse de ce type
-- (SISPEA P101.1 microbiologique, P102.1 physico-chimique). Une ligne par année
-- livrée ; un taux est vide quand aucun prélèvement de ce type n'a été analysé.

with deliveries as (
    {{ delivered_years('eau_qualite') }}
),

results as (
    select
        campaign_year,
        sample_id,
        analysis_type,
        case
            when coalesce(is_compliant_declared, result_value <= quality_limit) then 1
            else 0
        end as is_result_compliant
    from {{ ref('stg_eau_qualite') }}
),

samples as (
    -- un prélèvement × type d'analyse : conforme si tous ses paramètres le sont
    select
        campaign_year as year,
        sample_id,
        analysis_type,
        min(is_result_compliant) as is_sample_compliant
    from results
    group by campaign_year, sample_id, analysis_type
),

yearly_samples as (
    select
        year,
        sum(case when analysis_type = 'microbiologique' then 1 else 0 end)
            as microbiological_sample_count,
        sum(case when analysis_type = 'microbiologique' then is_sample_compliant else 0 end)
            as microbiological_compliant_sample_count,
        sum(case when analysis_type = 'physico-chimique' then 1 else 0 end)
            as physicochemical_sample_count,
        sum(case when analysis_type = 'physico-chimique' then is_sample_compliant else 0 end)
            as physicochemical_compliant_sample_count
    from samples
    group by year
),

counts as (
    select
        deliveries.year,
        cast(coalesce(s.microbiological_sample_count, 0) as integer) as microbiological_sample_count,
        cast(coalesce(s.microbiological_compliant_sample_count, 0) as integer)
            as microbiological_compliant_sample_count,
        cast(coalesce(s.physicochemical_sample_count, 0) as integer) as physicochemical_sample_count,
        cast(coalesce(s.physicochemical_compliant_sample_count, 0) as integer)
            as physicochemical_compliant_sample_count,
        deliveries.delivery_ids
    from deliveries
    left join yearly_samples as s
        on s.year = deliveries.year
)

select
    year,
    microbiological_sample_count,
    microbiological_compliant_sample_count,
    physicochemical_sample_count,
    physicochemical_compliant_sample_count,
    cast(
        100.0 * cast(microbiological_compliant_sample_count as {{ type_double() }})
        / nullif(microbiological_sample_count, 0)
        as {{ type_double() }}
    ) as water_microbiological_conformity,
    cast(
        100.0 * cast(physicochemical_compliant_sample_count as {{ type_double() }})
        / nullif(physicochemical_sample_count, 0)
        as {{ type_double() }}
    ) as water_physicochemical_conformity,
    delivery_ids
from counts
