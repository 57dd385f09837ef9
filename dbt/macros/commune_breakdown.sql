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
                  (ex. "sum(subscriber_count) filter (where network_type = 'eau_potable')" ;
                  pour un double, exact_sum('network_length_km', "network_type = 'eau_potable'"),
                  somme exacte indépendante de l'ordre des lignes)
      agglomeration_metrics (facultatif) : dict nom -> expression d'agrégat évaluée sur
                  les lignes de chaque commune, dont seule la somme existe : à la ligne
                  d'agglomération ; NULL sur les lignes communales (ex. communes
                  concernées : "count(distinct code_insee) filter (where ...)", qui vaut
                  0 ou 1 par commune)
      rows_without_commune (facultatif, false) : true quand la source a des lignes sans
                  commune (code_insee NULL, à l'échelle de toute l'agglomération) ; elles
                  comptent alors dans la ligne d'agglomération seulement, qui n'est plus
                  la somme des communes. Toutes les expressions doivent être additives
                  d'un groupe de lignes à l'autre (sum, count).

    Les colonnes produites : year, code_insee, <un par indicateur de metrics>,
    <un par indicateur de agglomeration_metrics>, delivery_ids.
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


{% macro commune_breakdown(source_id, rows, metrics, agglomeration_metrics={}, rows_without_commune=false) -%}
{%- set aggregates = metrics.items() | list + agglomeration_metrics.items() | list %}
{#- Les valeurs d'un groupe de by_commune (0 s'il n'existe pas) : une commune, ou les lignes sans commune. #}
{%- set contributions -%}
    {%- for name in metrics %}
        cast(coalesce(by_commune.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
    {%- endfor %}
    {%- for name in agglomeration_metrics %}
        coalesce(by_commune.{{ name }}, 0) as {{ name }},
    {%- endfor %}
{%- endset %}
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
        {%- for name, expression in aggregates %}
        {{ expression }} as {{ name }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ rows }}
    {%- if not rows_without_commune %}
    where code_insee is not null
    {%- endif %}
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,{{ contributions }}
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join by_commune
        on by_commune.year = deliveries.year
        and by_commune.code_insee = communes.code_insee
),
{%- if rows_without_commune %}

without_commune_rows as (
    select
        deliveries.year,
        cast(null as varchar) as code_insee,{{ contributions }}
        deliveries.delivery_ids
    from deliveries
    inner join by_commune
        on by_commune.year = deliveries.year
        and by_commune.code_insee is null
),
{%- endif %}

agglomeration_rows as (
    select
        year,
        cast(null as varchar) as code_insee,
        {#- somme exacte des communes : la même quel que soit l'ordre des lignes #}
        {%- for name in metrics %}
        {{ exact_sum(name) }} as {{ name }},
        {%- endfor %}
        {%- for name in agglomeration_metrics %}
        {{ exact_sum(name) }} as {{ name }},
        {%- endfor %}
        delivery_ids
    {%- if rows_without_commune %}
    from (
        select * from commune_rows
        union all
        select * from without_commune_rows
    ) as commune_and_without_commune_rows
    {%- else %}
    from commune_rows
    {%- endif %}
    group by year, delivery_ids
)

select
    year,
    code_insee,
    {%- for name in metrics %}
    {{ name }},
    {%- endfor %}
    {%- for name in agglomeration_metrics %}
    cast(null as {{ type_double() }}) as {{ name }},
    {%- endfor %}
    delivery_ids
from commune_rows
union all
select * from agglomeration_rows
{%- endmacro %}
