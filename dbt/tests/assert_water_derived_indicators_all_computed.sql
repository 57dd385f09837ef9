-- Chaque indicateur dérivé de la direction water du catalogue est calculé par
-- int_water__indicator_values, et chaque indicateur calculé y figure comme
-- indicateur dérivé water. Échoue sur chaque identifiant en trop ou manquant.

with catalogue as (
    select indicator_id, source
    from {{ ref('indicator_catalogue') }}
    where department = 'water'
      and computation = 'derived'
),

computed as (
    {%- for group in water_indicator_groups() %}
        {%- set outer_loop = loop %}
        {%- for indicator_id in group.indicators %}
    select '{{ indicator_id }}' as indicator_id, '{{ group.source_ids }}' as source_ids
            {%- if not (outer_loop.last and loop.last) %} union all{% endif %}
        {%- endfor %}
    {%- endfor %}
)

select
    coalesce(catalogue.indicator_id, computed.indicator_id) as indicator_id,
    case
        when computed.indicator_id is null then 'indicateur dérivé water du catalogue non calculé'
        when catalogue.indicator_id is null then 'indicateur calculé absent du catalogue (dérivé water)'
        else 'source différente du catalogue : ' || computed.source_ids || ' au lieu de ' || catalogue.source
    end as probleme
from catalogue
full outer join computed
    on computed.indicator_id = catalogue.indicator_id
where catalogue.indicator_id is null
   or computed.indicator_id is null
   or catalogue.source <> computed.source_ids
