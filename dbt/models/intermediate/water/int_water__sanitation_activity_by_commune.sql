-- Indicateurs d'activité assainissement et SPANC (source assainissement_activite)
-- par commune et pour l'agglomération, cumul des mois de l'année de campagne
-- (voir la macro commune_breakdown).

{%- set metrics = {
    'sanitation_property_sale_inspections': "sum(spanc_sale_inspections)",
    'stormwater_parcel_requests': "sum(stormwater_requests)",
    'wastewater_connection_boxes_created': "sum(wastewater_connections_created)",
} %}

{{ commune_breakdown('assainissement_activite', ref('stg_assainissement_activite'), metrics) }}
