-- Une valeur négative n'est admise que pour un indicateur dont le catalogue
-- l'autorise (dim_indicators.allow_negative, extensions du catalogue).
select
    values_table.indicator_id,
    values_table.year,
    values_table.code_insee,
    values_table.value
from {{ ref('fct_indicator_values') }} as values_table
left join {{ ref('dim_indicators') }} as indicators
    on indicators.indicator_id = values_table.indicator_id
where values_table.value < 0
  and not coalesce(indicators.allow_negative, false)
