-- Valeurs des indicateurs déclarés (source indicateurs_declares), au format
-- commun : la valeur telle que livrée, à sa date d'arrêté, avec le commentaire
-- de la direction. Le staging ne garde que la livraison en vigueur de chaque
-- (année de campagne, direction).
with declared as (
    select * from {{ ref('stg_indicateurs_declares') }}
)

select
    cast(indicator_id as varchar) as indicator_id,
    cast(campaign_year as integer) as year,
    cast(code_insee as varchar) as code_insee,
    cast(value as {{ type_double() }}) as value,
    cast(value_date as date) as as_of_date,
    cast(comment as varchar) as comment,
    cast('indicateurs_declares' as varchar) as source_ids,
    cast(delivery_id as varchar) as delivery_ids
from declared
