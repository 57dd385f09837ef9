{#
    Une expression SQL booléenne doit être vraie sur chaque ligne du modèle
    (les lignes où elle est fausse ou NULL font échouer le test).
#}
{% test expression_is_true(model, expression, column_name=none) %}
    select *
    from {{ model }}
    where not coalesce(({{ expression }}), false)
{% endtest %}
