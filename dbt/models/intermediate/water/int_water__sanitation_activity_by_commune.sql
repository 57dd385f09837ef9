-- Indicateurs d'activité assainissement et SPANC (source assainissement_activite)
-- par commune et pour l'agglomération, cumul des mois de l'année de campagne.
-- Une ligne par année livrée et par commune membre (0 pour une commune sans
-- ligne), plus la ligne d'agglomération (code_insee NULL), somme des communes.
-- Une année sans livraison en vigueur ne donne aucune ligne.

with deliveries as (
    select
        campaign_year as year,
        {{ comma_list_agg('delivery_id') }} as delivery_ids
    from {{ ref('stg_ingest_deliveries') }}
    where is_in_force
      and source_id = 'assainissement_activite'
    group by campaign_year
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

activity as (
    select * from {{ ref('stg_assainissement_activite') }}
),

activity_by_commune as (
    select
        campaign_year as year,
        code_insee,
        sum(spanc_sale_inspections) as sanitation_property_sale_inspections,
        sum(stormwater_requests) as stormwater_parcel_requests,
        sum(wastewater_connections_created) as wastewater_connection_boxes_created
    from activity
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        cast(coalesce(a.sanitation_property_sale_inspections, 0) as {{ type_double() }})
            as sanitation_property_sale_inspections,
        cast(coalesce(a.stormwater_parcel_requests, 0) as {{ type_double() }})
            as stormwater_parcel_requests,
        cast(coalesce(a.wastewater_connection_boxes_created, 0) as {{ type_double() }})
            as wastewater_connection_boxes_created,
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join activity_by_commune as a
        on a.year = deliveries.year
        and a.code_insee = communes.code_insee
),

agglomeration_rows as (
    select
        year,
        cast(null as varchar) as code_insee,
        sum(sanitation_property_sale_inspections) as sanitation_property_sale_inspections,
        sum(stormwater_parcel_requests) as stormwater_parcel_requests,
        sum(wastewater_connection_boxes_created) as wastewater_connection_boxes_created,
        delivery_ids
    from commune_rows
    group by year, delivery_ids
)

select * from commune_rows
union all
select * from agglomeration_rows
