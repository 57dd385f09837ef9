-- Valeurs des 18 indicateurs dérivés de la direction water, au format commun
-- (voir la macro unpivot_indicator_groups ; la liste est dans water_indicator_groups).
{{ unpivot_indicator_groups(water_indicator_groups()) }}
