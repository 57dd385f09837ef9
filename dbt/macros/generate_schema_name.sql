{#
    Noms de schémas lisibles : un modèle configuré avec +schema: staging est créé
    dans le schéma « staging » (et non « main_staging », comportement par défaut
    de dbt). Sans schéma personnalisé, le schéma de la cible est utilisé.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
