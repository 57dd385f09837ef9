-- Indicateurs des actions de prévention et de sensibilisation (source dechets_prevention),
-- en colonnes nommées comme les indicateurs du catalogue. Une ligne par année livrée et par
-- commune membre (0 pour une commune sans action) plus la ligne d'agglomération
-- (code_insee NULL). Les actions sans commune (menées à l'échelle de l'agglomération) ne
-- comptent que dans la ligne d'agglomération ; bin_checks_communes n'existe qu'à cette
-- maille. Une année sans livraison en vigueur ne donne aucune ligne.

{%- set metrics = {
    'composters_distributed': "sum(quantity) filter (where action_type = 'COMPOSTEUR')",
    'bins_checked': "sum(quantity) filter (where action_type = 'CONTROLE_BACS')",
    'households_sensitised_sorting_errors': "sum(households_sensitised) filter (where action_type = 'CONTROLE_BACS')",
    'waste_prevention_stands': "count(*) filter (where action_type = 'STAND')",
    'waste_prevention_citizens_sensitised': "sum(quantity) filter (where action_type = 'STAND')",
    'waste_pupils_sensitised': "sum(quantity) filter (where action_type = 'ANIMATION_SCOLAIRE')",
    'waste_workshops': "count(*) filter (where action_type = 'ATELIER')",
    'waste_workshop_participants': "sum(quantity) filter (where action_type = 'ATELIER')",
} %}

with deliveries as (
    {{ delivered_years('dechets_prevention') }}
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

actions as (
    select * from {{ ref('stg_dechets_prevention') }}
),

by_commune as (
    select
        campaign_year as year,
        code_insee,
        {%- for name, expression in metrics.items() %}
        {{ expression }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from actions
    where code_insee is not null
    group by campaign_year, code_insee
),

by_year as (
    select
        campaign_year as year,
        {%- for name, expression in metrics.items() %}
        {{ expression }} as {{ name }},
        {%- endfor %}
        count(distinct code_insee) filter (where action_type = 'CONTROLE_BACS') as bin_checks_communes
    from actions
    group by campaign_year
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        {%- for name in metrics %}
        cast(coalesce(c.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
        {%- endfor %}
        cast(null as {{ type_double() }}) as bin_checks_communes,
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join by_commune as c
        on c.year = deliveries.year
        and c.code_insee = communes.code_insee
),

agglomeration_rows as (
    select
        deliveries.year,
        cast(null as varchar) as code_insee,
        {%- for name in metrics %}
        cast(coalesce(y.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
        {%- endfor %}
        cast(coalesce(y.bin_checks_communes, 0) as {{ type_double() }}) as bin_checks_communes,
        deliveries.delivery_ids
    from deliveries
    left join by_year as y
        on y.year = deliveries.year
)

select * from commune_rows
union all
select * from agglomeration_rows
