{#
    Complétude du découpage communal : pour chaque indicateur de découpage
    « commune » du catalogue présent dans le modèle, chaque année a exactement
    une ligne par commune membre (référentiel communes) et une ligne
    d'agglomération (code_insee NULL). Le modèle est au grain
    indicator_id × year × code_insee.
#}
{% test complete_commune_breakdown(model) %}
    with commune_indicators as (
        select indicator_id
        from {{ ref('indicator_catalogue') }}
        where breakdown = 'commune'
    ),

    member_communes as (
        select count(*) as commune_count
        from {{ ref('communes') }}
    ),

    counts as (
        select
            values_table.indicator_id,
            values_table.year,
            count(distinct values_table.code_insee) as commune_rows,
            sum(case when values_table.code_insee is null then 1 else 0 end) as agglomeration_rows
        from {{ model }} as values_table
        inner join commune_indicators
            on commune_indicators.indicator_id = values_table.indicator_id
        group by values_table.indicator_id, values_table.year
    )

    select counts.*
    from counts
    cross join member_communes
    where counts.commune_rows <> member_communes.commune_count
       or counts.agglomeration_rows <> 1
{% endtest %}
