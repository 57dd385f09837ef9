{#-
    Interface publique de l'entrepôt : toutes les valeurs d'indicateurs, une
    ligne par indicateur × année × commune (code_insee NULL = agglomération).
    Chaque direction produit un modèle int_<direction>__indicator_values au
    format commun ; pour en ajouter un, l'ajouter à la liste indicator_value_models
    de dbt_project.yml (et aux priorités dont il donne des valeurs :
    priority_indicator_value_models). Le calcul est la macro indicator_values.
-#}
{{ indicator_values(indicator_value_models()) }}
