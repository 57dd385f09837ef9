{#
    Cohérence avec le découpage du catalogue : un indicateur de découpage
    « none » n'a que des lignes d'agglomération (code_insee NULL).
    Le test porte sur un modèle au grain indicateur × année × code_insee.
#}
{% test matches_catalogue_breakdown(model, indicator_column='indicator_id', commune_column='code_insee') %}
    select values_table.{{ indicator_column }}, values_table.{{ commune_column }}
    from {{ model }} as values_table
    inner join {{ ref('indicator_catalogue') }} as catalogue
        on catalogue.indicator_id = values_table.{{ indicator_column }}
    where catalogue.breakdown = 'none'
      and values_table.{{ commune_column }} is not null
{% endtest %}
