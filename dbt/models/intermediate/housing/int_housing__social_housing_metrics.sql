-- Indicateurs de la programmation du logement social (source logements_sociaux), en colonnes
-- nommées comme les indicateurs du catalogue. Une ligne par année livrée et par commune
-- membre (0 pour une commune sans opération) plus la ligne d'agglomération (code_insee NULL),
-- somme des communes. Toutes les opérations de la livraison en vigueur de l'année comptent
-- (leur date de programmation est dans l'année de campagne, règle du contrat).
-- Une année sans livraison en vigueur ne donne aucune ligne.

{%- set metrics = {
    'social_housing_new_programmed':
        "sum(plai_dwellings + plus_dwellings + pls_dwellings) filter (where operation_type = 'NEUF')",
    'social_housing_acquired_improved_programmed':
        "sum(plai_dwellings + plus_dwellings + pls_dwellings) filter (where operation_type = 'ACQUIS_AMELIORE')",
    'social_housing_state_delegated_credits': "sum(state_credits_eur)",
} %}

with deliveries as (
    select
        campaign_year as year,
        {{ comma_list_agg('delivery_id') }} as delivery_ids
    from {{ ref('stg_ingest_deliveries') }}
    where is_in_force
      and source_id = 'logements_sociaux'
    group by campaign_year
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

operations as (
    select * from {{ ref('stg_logements_sociaux') }}
),

by_commune as (
    select
        campaign_year as year,
        code_insee,
        {%- for name, expression in metrics.items() %}
        {{ expression }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from operations
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        {%- for name in metrics %}
        cast(coalesce(c.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
        {%- endfor %}
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join by_commune as c
        on c.year = deliveries.year
        and c.code_insee = communes.code_insee
),

agglomeration_rows as (
    select
        year,
        cast(null as varchar) as code_insee,
        {%- for name in metrics %}
        sum({{ name }}) as {{ name }},
        {%- endfor %}
        delivery_ids
    from commune_rows
    group by year, delivery_ids
)

select * from commune_rows
union all
select * from agglomeration_rows
