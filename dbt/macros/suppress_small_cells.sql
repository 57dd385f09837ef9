{#
    Secret statistique des données RH : une valeur publiée qui porte sur moins de
    `threshold` agents (5 par défaut) est masquée (NULL). S'applique à tout chiffre
    publié calculé sur des agents (effectif, part, moyenne, somme), avec
    `n_agents` = nombre d'agents sur lesquels la valeur est calculée.
    Un nombre d'agents NULL est traité comme inférieur au seuil (masqué par prudence),
    0 aussi (« aucun chiffre publié ne compte moins de 5 agents »). Le modèle qui publie
    retire ensuite les valeurs NULL (voir int_hr__indicator_values).

    Usage : {{ suppress_small_cells('permanent_staff', 'permanent_staff') }}
            {{ suppress_small_cells('average_agent_age', 'permanent_staff', 5) }}
#}
{% macro suppress_small_cells(value, n_agents, threshold=5) -%}
    case when ({{ n_agents }}) >= {{ threshold }} then ({{ value }}) end
{%- endmacro %}
