{#
    Passage d'un modèle « large » (une colonne par indicateur, nommée comme
    l'indicator_id du catalogue) au format commun des valeurs d'indicateurs :
    indicator_id, year, code_insee, value, as_of_date, comment, source_ids,
    delivery_ids. Une ligne par indicateur et par ligne du modèle large ; les
    valeurs NULL (ratio sans dénominateur) ne donnent pas de ligne. Les valeurs
    sont arrondies à 9 décimales (bruit des additions en virgule flottante).

    groups : liste de dictionnaires
        model       : nom du modèle large (colonnes year, delivery_ids, [code_insee])
        source_ids  : identifiant(s) de contrat, séparés par des virgules
        by_commune  : vrai si le modèle a une colonne code_insee
        indicators  : liste des indicator_id (= noms de colonnes)
#}
{% macro unpivot_indicator_groups(groups) -%}
    {%- for group in groups -%}
        {%- set outer_loop = loop -%}
        {%- for indicator_id in group.indicators %}
    select
        cast('{{ indicator_id }}' as varchar) as indicator_id,
        cast(wide.year as integer) as year,
        {% if group.by_commune -%}
        cast(wide.code_insee as varchar) as code_insee,
        {%- else -%}
        cast(null as varchar) as code_insee,
        {%- endif %}
        {{ round_value('wide.' ~ indicator_id) }} as value,
        {{ year_end_date('wide.year') }} as as_of_date,
        cast(null as varchar) as comment,
        cast('{{ group.source_ids }}' as varchar) as source_ids,
        cast(wide.delivery_ids as varchar) as delivery_ids
    from {{ ref(group.model) }} as wide
    where wide.{{ indicator_id }} is not null
            {%- if not (outer_loop.last and loop.last) %}
    union all
            {%- endif %}
        {%- endfor %}
    {%- endfor %}
{%- endmacro %}


{#
    Les 18 indicateurs dérivés de la direction water (catalogue : department =
    water, computation = derived), rangés par modèle large qui les calcule.
    Utilisé par int_water__indicator_values et par le test singulier
    assert_water_derived_indicators_all_computed.
#}
{% macro water_indicator_groups() -%}
    {{ return([
        {
            'model': 'int_water__network_by_commune',
            'source_ids': 'eau_reseau',
            'by_commune': true,
            'indicators': [
                'sewer_network_length',
                'sewer_network_combined_length',
                'water_network_length',
                'water_network_in_house_length',
                'water_network_renewed_length',
                'sanitation_network_capex',
                'water_network_capex',
                'water_subscribers',
                'sanitation_subscribers',
            ],
        },
        {
            'model': 'int_water__sanitation_activity_by_commune',
            'source_ids': 'assainissement_activite',
            'by_commune': true,
            'indicators': [
                'sanitation_property_sale_inspections',
                'stormwater_parcel_requests',
                'wastewater_connection_boxes_created',
            ],
        },
        {
            'model': 'int_water__network_renewal_rate',
            'source_ids': 'eau_reseau',
            'by_commune': false,
            'indicators': ['water_network_renewal_rate'],
        },
        {
            'model': 'int_water__udi_yearly',
            'source_ids': 'eau_udi',
            'by_commune': false,
            'indicators': ['udi_bethunois_communes_served'],
        },
        {
            'model': 'int_water__volumes_yearly',
            'source_ids': 'eau_volumes',
            'by_commune': false,
            'indicators': ['water_volume_produced', 'water_network_yield'],
        },
        {
            'model': 'int_water__quality_yearly',
            'source_ids': 'eau_qualite',
            'by_commune': false,
            'indicators': ['water_microbiological_conformity', 'water_physicochemical_conformity'],
        },
    ]) }}
{%- endmacro %}
