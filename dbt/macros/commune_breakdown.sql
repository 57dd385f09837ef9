{#
    Indicateurs additifs ventilés par commune, à partir d'une source en vigueur.

    Produit une ligne par année livrée de la source et par commune membre (0 pour
    une commune sans ligne), plus la ligne d'agglomération (code_insee NULL) qui est
    la somme des communes, avec la liste des livraisons qui y ont contribué. Une
    année sans livraison en vigueur de la source ne donne aucune ligne (indicateur
    absent, jamais zéro).

    Arguments :
      source_id : identifiant du contrat (ingest.deliveries.source_id)
      rows      : le modèle de staging (ref) des lignes de la source
      metrics   : dict nom d'indicateur -> expression d'agrégat sur les lignes
                  (ex. "sum(network_length_km) filter (where network_type = 'eau_potable')")

    Les colonnes produites : year, code_insee, <un par indicateur>, delivery_ids.
#}
{% macro delivered_years(source_id) -%}
    select
        campaign_year as year,
        {{ comma_list_agg('delivery_id') }} as delivery_ids
    from {{ ref('stg_ingest_deliveries') }}
    where is_in_force
      and source_id = '{{ source_id }}'
    group by campaign_year
{%- endmacro %}


{% macro commune_breakdown(source_id, rows, metrics) -%}
with deliveries as (
    {{ delivered_years(source_id) }}
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

by_commune as (
    select
        campaign_year as year,
        code_insee,
        {%- for name, expression in metrics.items() %}
        {{ expression }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ rows }}
    where code_insee is not null
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        {%- for name in metrics %}
        cast(coalesce(by_commune.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
        {%- endfor %}
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join by_commune
        on by_commune.year = deliveries.year
        and by_commune.code_insee = communes.code_insee
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
{%- endmacro %}
