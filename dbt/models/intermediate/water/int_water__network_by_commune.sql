-- Indicateurs de réseau (source eau_reseau) par commune et pour l'agglomération,
-- en colonnes nommées comme les indicateurs du catalogue.
-- Une ligne par année livrée et par commune membre (0 pour une commune sans
-- ligne dans la source), plus la ligne d'agglomération (code_insee NULL), somme
-- des communes. Une année sans livraison en vigueur ne donne aucune ligne.

with deliveries as (
    select
        campaign_year as year,
        {{ comma_list_agg('delivery_id') }} as delivery_ids
    from {{ ref('stg_ingest_deliveries') }}
    where is_in_force
      and source_id = 'eau_reseau'
    group by campaign_year
),

communes as (
    select cast(code_insee as varchar) as code_insee
    from {{ ref('communes') }}
),

network as (
    select * from {{ ref('stg_eau_reseau') }}
),

network_by_commune as (
    select
        campaign_year as year,
        code_insee,
        sum(case when network_type = 'assainissement' then network_length_km else 0 end)
            as sewer_network_length,
        sum(case when network_type = 'assainissement' then combined_network_length_km else 0 end)
            as sewer_network_combined_length,
        sum(case when network_type = 'eau_potable' then network_length_km else 0 end)
            as water_network_length,
        sum(case when network_type = 'eau_potable' and management_mode = 'regie' then network_length_km else 0 end)
            as water_network_in_house_length,
        sum(case when network_type = 'eau_potable' then renewed_length_km else 0 end)
            as water_network_renewed_length,
        sum(case when network_type = 'assainissement' then capex_eur else 0 end)
            as sanitation_network_capex,
        sum(case when network_type = 'eau_potable' then capex_eur else 0 end)
            as water_network_capex,
        sum(case when network_type = 'eau_potable' then subscriber_count else 0 end)
            as water_subscribers,
        sum(case when network_type = 'assainissement' then subscriber_count else 0 end)
            as sanitation_subscribers
    from network
    group by campaign_year, code_insee
),

commune_rows as (
    select
        deliveries.year,
        communes.code_insee,
        cast(coalesce(n.sewer_network_length, 0) as {{ type_double() }}) as sewer_network_length,
        cast(coalesce(n.sewer_network_combined_length, 0) as {{ type_double() }}) as sewer_network_combined_length,
        cast(coalesce(n.water_network_length, 0) as {{ type_double() }}) as water_network_length,
        cast(coalesce(n.water_network_in_house_length, 0) as {{ type_double() }}) as water_network_in_house_length,
        cast(coalesce(n.water_network_renewed_length, 0) as {{ type_double() }}) as water_network_renewed_length,
        cast(coalesce(n.sanitation_network_capex, 0) as {{ type_double() }}) as sanitation_network_capex,
        cast(coalesce(n.water_network_capex, 0) as {{ type_double() }}) as water_network_capex,
        cast(coalesce(n.water_subscribers, 0) as {{ type_double() }}) as water_subscribers,
        cast(coalesce(n.sanitation_subscribers, 0) as {{ type_double() }}) as sanitation_subscribers,
        deliveries.delivery_ids
    from deliveries
    cross join communes
    left join network_by_commune as n
        on n.year = deliveries.year
        and n.code_insee = communes.code_insee
),

agglomeration_rows as (
    select
        year,
        cast(null as varchar) as code_insee,
        sum(sewer_network_length) as sewer_network_length,
        sum(sewer_network_combined_length) as sewer_network_combined_length,
        sum(water_network_length) as water_network_length,
        sum(water_network_in_house_length) as water_network_in_house_length,
        sum(water_network_renewed_length) as water_network_renewed_length,
        sum(sanitation_network_capex) as sanitation_network_capex,
        sum(water_network_capex) as water_network_capex,
        sum(water_subscribers) as water_subscribers,
        sum(sanitation_subscribers) as sanitation_subscribers,
        delivery_ids
    from commune_rows
    group by year, delivery_ids
)

select * from commune_rows
union all
select * from agglomeration_rows
