-- Indicateurs de réseau (source eau_reseau) par commune et pour l'agglomération,
-- en colonnes nommées comme les indicateurs du catalogue (voir la macro
-- commune_breakdown : 0 pour une commune sans ligne, aucune ligne pour une année
-- sans livraison en vigueur). Longueurs et montants (doubles) additionnés exactement
-- (macro exact_sum) : le même total quel que soit l'ordre des lignes.

{%- set metrics = {
    'sewer_network_length':
        exact_sum("case when network_type = 'assainissement' then network_length_km else 0 end"),
    'sewer_network_combined_length':
        exact_sum("case when network_type = 'assainissement' then combined_network_length_km else 0 end"),
    'water_network_length':
        exact_sum("case when network_type = 'eau_potable' then network_length_km else 0 end"),
    'water_network_in_house_length':
        exact_sum("case when network_type = 'eau_potable' and management_mode = 'regie' then network_length_km else 0 end"),
    'water_network_renewed_length':
        exact_sum("case when network_type = 'eau_potable' then renewed_length_km else 0 end"),
    'sanitation_network_capex':
        exact_sum("case when network_type = 'assainissement' then capex_eur else 0 end"),
    'water_network_capex':
        exact_sum("case when network_type = 'eau_potable' then capex_eur else 0 end"),
    'water_subscribers':
        "sum(case when network_type = 'eau_potable' then subscriber_count else 0 end)",
    'sanitation_subscribers':
        "sum(case when network_type = 'assainissement' then subscriber_count else 0 end)",
} %}

{{ commune_breakdown('eau_reseau', ref('stg_eau_reseau'), metrics) }}
