-- Agrégats des effectifs (source rh_effectifs) à la date d'observation, pour l'agglomération :
-- une ligne par année livrée. Collaborateurs permanents : tous les statuts sauf
-- NON_PERMANENT. Agrégats bruts, avant secret statistique : le modèle reste dans le schéma
-- restricted ; seul int_hr__indicator_values (valeurs sur moins de 5 agents masquées) en
-- sort. Une année sans livraison en vigueur ne donne aucune ligne.
{{ config(schema='restricted') }}

with deliveries as (
    {{ delivered_years('rh_effectifs') }}
),

staff as (
    select
        *,
        employment_status <> 'NON_PERMANENT' as is_permanent
    from {{ ref('stg_rh_effectifs') }}
),

by_year as (
    select
        campaign_year as year,
        max(observation_date) as observation_date,
        count(*) filter (where is_permanent) as permanent_staff,
        count(*) filter (where employment_status = 'APPRENTI') as apprenticeship_contracts,
        count(*) filter (where employment_status = 'DROIT_PRIVE') as private_law_contracts,
        count(*) filter (where is_permanent and sex = 'F') as permanent_women,
        -- âge moyen : somme entière / effectif ; quotités : somme exacte (macro exact_sum) ;
        -- le même résultat quel que soit l'ordre des lignes
        cast(sum(age_months) filter (where is_permanent) as {{ type_double() }})
            / nullif(count(*) filter (where is_permanent), 0) as mean_age_months,
        {{ exact_sum('fte_share', 'is_permanent') }} as permanent_fte
    from staff
    group by campaign_year
),

totals as (
    select
        deliveries.year,
        coalesce(y.observation_date, {{ year_end_date('deliveries.year') }}) as observation_date,
        cast(coalesce(y.permanent_staff, 0) as {{ type_double() }}) as permanent_staff,
        cast(coalesce(y.apprenticeship_contracts, 0) as {{ type_double() }}) as apprenticeship_contracts,
        cast(coalesce(y.private_law_contracts, 0) as {{ type_double() }}) as private_law_contracts,
        cast(coalesce(y.permanent_women, 0) as {{ type_double() }}) as permanent_women,
        y.mean_age_months,
        cast(coalesce(y.permanent_fte, 0) as {{ type_double() }}) as staff_fte,
        deliveries.delivery_ids
    from deliveries
    left join by_year as y
        on y.year = deliveries.year
)

select
    year,
    observation_date,
    permanent_staff,
    apprenticeship_contracts,
    private_law_contracts,
    permanent_women,
    cast(mean_age_months / 12.0 as {{ type_double() }}) as average_agent_age,
    cast(100.0 * permanent_women / nullif(permanent_staff, 0) as {{ type_double() }}) as staff_women_share,
    staff_fte,
    delivery_ids
from totals
