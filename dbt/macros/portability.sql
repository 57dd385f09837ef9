{#
    Petites fonctions SQL portables entre DuckDB et PostgreSQL.
    Chaque macro passe par adapter.dispatch : une implémentation propre à un
    moteur peut être ajoutée (duckdb__..., postgres__...) sans toucher aux modèles.
#}

{# Type flottant double précision (DOUBLE en DuckDB, double precision en PostgreSQL). #}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'kpi_warehouse')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{# Date du 31 décembre d'une année donnée (expression entière). #}
{% macro year_end_date(year_expression) -%}
    {{ return(adapter.dispatch('year_end_date', 'kpi_warehouse')(year_expression)) }}
{%- endmacro %}

{% macro default__year_end_date(year_expression) -%}
    make_date(cast({{ year_expression }} as integer), 12, 31)
{%- endmacro %}

{# Liste triée et dédoublonnée de valeurs texte, séparées par des virgules. #}
{% macro comma_list_agg(expression) -%}
    {{ return(adapter.dispatch('comma_list_agg', 'kpi_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__comma_list_agg(expression) -%}
    string_agg(distinct cast({{ expression }} as varchar), ',' order by cast({{ expression }} as varchar))
{%- endmacro %}

{#
    Arrondi d'un nombre double précision à n décimales, qui efface le bruit des
    additions en virgule flottante (8.999999999999984 -> 9). PostgreSQL n'a pas
    round(double precision, integer) : passage par numeric. DuckDB l'a, et son
    numeric par défaut n'a que 3 décimales : on n'y convertit donc pas.
#}
{% macro round_value(expression, digits=9) -%}
    {{ return(adapter.dispatch('round_value', 'kpi_warehouse')(expression, digits)) }}
{%- endmacro %}

{% macro default__round_value(expression, digits) -%}
    cast(round(cast({{ expression }} as numeric), {{ digits }}) as {{ type_double() }})
{%- endmacro %}

{% macro duckdb__round_value(expression, digits) -%}
    round(cast({{ expression }} as {{ type_double() }}), {{ digits }})
{%- endmacro %}

{#
    Somme exacte, indépendante de l'ordre des lignes et des threads. Une somme de doubles
    dépend de l'ordre des additions, que l'exécution parallèle change d'une lecture à
    l'autre (mpa_works_amount 2024 : 1760451.0 ou 1760451.000000001) : mêmes livraisons,
    mais pas les mêmes octets publiés ni figés. Ici chaque terme passe en décimal
    (38 chiffres dont 9 décimales, arrondi au milliardième, bien en deçà de la précision
    des livraisons), l'addition est exacte, le total revient en double précision : le même
    résultat dans tous les cas, sur DuckDB comme sur PostgreSQL.
    where (facultatif) : condition du filtre de l'agrégat (filter (where ...)).

    Usage : {{ exact_sum('tonnage_t') }}
            {{ exact_sum('tonnage_t', "waste_stream = 'OMR'") }}
#}
{% macro exact_sum(expression, where=none) -%}
    cast(sum(cast({{ expression }} as decimal(38, 9)))
        {%- if where %} filter (where {{ where }}){% endif %} as {{ type_double() }})
{%- endmacro %}
