-- Catalogue des indicateurs complété par les extensions du projet : signe
-- autorisé, objectif visé (target_of) et, en sens inverse, l'objectif qui vise
-- chaque indicateur mesuré (target_indicator_id) ; libellé français de l'unité
-- (seed units).
with catalogue as (
    select * from {{ ref('indicator_catalogue') }}
),

extensions as (
    select * from {{ ref('indicator_catalogue_extensions') }}
),

units as (
    select * from {{ ref('units') }}
),

targets as (
    select
        target_of as indicator_id,
        indicator_id as target_indicator_id
    from extensions
    where target_of is not null
)

select
    cast(catalogue.indicator_id as varchar) as indicator_id,
    cast(catalogue.priority as varchar) as priority,
    cast(catalogue.objective as varchar) as objective,
    cast(catalogue.label_fr as varchar) as label_fr,
    cast(catalogue.unit as varchar) as unit,
    cast(units.unit_label as varchar) as unit_label,
    cast(catalogue.department as varchar) as department,
    cast(catalogue.kind as varchar) as kind,
    cast(catalogue.computation as varchar) as computation,
    cast(catalogue.source as varchar) as source,
    cast(catalogue.breakdown as varchar) as breakdown,
    cast(catalogue.definition as varchar) as definition,
    cast(catalogue.national_code as varchar) as national_code,
    cast(catalogue.published_2025 as {{ type_double() }}) as published_2025,
    cast(catalogue.published_period as varchar) as published_period,
    cast(catalogue.published_qualifier as varchar) as published_qualifier,
    cast(catalogue.verbatim as varchar) as verbatim,
    coalesce(cast(extensions.allow_negative as boolean), false) as allow_negative,
    cast(extensions.target_of as varchar) as target_of,
    cast(targets.target_indicator_id as varchar) as target_indicator_id,
    cast(extensions.comment_fr as varchar) as extension_comment_fr
from catalogue
left join extensions
    on extensions.indicator_id = catalogue.indicator_id
left join targets
    on targets.indicator_id = catalogue.indicator_id
left join units
    on units.unit = catalogue.unit
