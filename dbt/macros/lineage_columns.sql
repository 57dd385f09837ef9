{#
    Colonnes de traçabilité communes à toutes les tables brutes, renommées et
    typées pour le staging : identifiant et empreinte de la livraison, feuille,
    numéro de ligne, année de campagne et direction.
    À placer en tête du select d'un modèle de staging : {{ lineage_columns() }},
#}
{% macro lineage_columns(relation_alias=none) -%}
    {%- set p = (relation_alias ~ '.') if relation_alias else '' -%}
    cast({{ p }}_delivery_id as varchar) as delivery_id,
    cast({{ p }}_file_sha256 as varchar) as file_sha256,
    cast({{ p }}_sheet as varchar) as sheet_name,
    cast({{ p }}_row_number as integer) as row_number,
    cast({{ p }}_campaign_year as integer) as campaign_year,
    cast({{ p }}_department as varchar) as department
{%- endmacro %}
