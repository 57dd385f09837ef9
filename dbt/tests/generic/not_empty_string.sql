{#
    Aucune chaîne vide ou faite seulement d'espaces (les NULL ne sont pas contrôlés).
#}
{% test not_empty_string(model, column_name) %}
    select {{ column_name }}
    from {{ model }}
    where {{ column_name }} is not null
      and trim({{ column_name }}) = ''
{% endtest %}
