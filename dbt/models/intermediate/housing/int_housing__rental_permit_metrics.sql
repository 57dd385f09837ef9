-- Indicateurs du permis de louer (source permis_de_louer, une ligne par commune adhérente),
-- en colonnes nommées comme les indicateurs du catalogue. Une ligne par année livrée et par
-- commune membre (0 pour une commune non adhérente) plus la ligne d'agglomération
-- (code_insee NULL), somme des communes. Le nombre de communes adhérentes et de nouvelles
-- communes n'existe qu'à la maille agglomération (NULL sur les lignes communales).
-- Une année sans livraison en vigueur ne donne aucune ligne.

{%- set metrics = {
    'rental_permit_dwellings_in_scope': "sum(dwellings_in_scope)",
    'rental_permits_granted': "sum(permits_granted)",
    'rental_permit_requests': "sum(permit_requests)",
} %}

with deliveries as (
    {{ delivered_years('permis_de_louer') }}
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

permits as (
    select * from {{ ref('stg_permis_de_louer') }}
),

by_commune as (
    select
        campaign_year as year,
        code_insee,
        {%- for name, expression in metrics.items() %}
        {{ expression }} as {{ name }},
        {%- endfor %}
        case when extract(year from min(membership_date)) = campaign_year then 1 else 0 end
            as is_new_member
    from permits
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        {%- for name in metrics %}
        cast(coalesce(c.{{ name }}, 0) as {{ type_double() }}) as {{ name }},
        {%- endfor %}
        case when c.code_insee is not null then 1 else 0 end as is_member,
        coalesce(c.is_new_member, 0) as is_new_member,
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
        cast(sum(is_member) as {{ type_double() }}) as rental_permit_communes,
        cast(sum(is_new_member) as {{ type_double() }}) as rental_permit_new_communes,
        delivery_ids
    from commune_rows
    group by year, delivery_ids
)

select
    year,
    code_insee,
    {%- for name in metrics %}
    {{ name }},
    {%- endfor %}
    cast(null as {{ type_double() }}) as rental_permit_communes,
    cast(null as {{ type_double() }}) as rental_permit_new_communes,
    delivery_ids
from commune_rows
union all
select
    year,
    code_insee,
    {%- for name in metrics %}
    {{ name }},
    {%- endfor %}
    rental_permit_communes,
    rental_permit_new_communes,
    delivery_ids
from agglomeration_rows
