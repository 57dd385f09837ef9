{#
    Unicité d'une combinaison de colonnes (grain d'un modèle). Deux valeurs NULL
    sont considérées égales (GROUP BY) : un grain (indicateur, année, commune NULL)
    ne peut donc apparaître qu'une fois pour l'agglomération.
    Échoue sur chaque combinaison présente plus d'une fois.
#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns_csv = combination_of_columns | join(', ') -%}
    select {{ columns_csv }}, count(*) as row_count
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1
{% endtest %}
