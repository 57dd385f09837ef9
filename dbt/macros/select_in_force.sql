{#
    Lignes d'une table brute appartenant à une livraison en vigueur.

    Les tables brutes (raw.<source_id>, raw_restricted.<source_id>) gardent les
    lignes de TOUTES les livraisons acceptées (historique). Une seule livraison
    est en vigueur par (année de campagne, direction, source) : celle dont
    ingest.deliveries.in_force est vrai. Une livraison plus récente remplace
    donc entièrement la précédente.

    Usage, dans un modèle de staging :
        with source as (
            {{ select_in_force('raw', 'eau_volumes') }}
        )
#}
{% macro select_in_force(source_name, table_name) -%}
    select raw_rows.*
    from {{ source(source_name, table_name) }} as raw_rows
    where raw_rows._delivery_id in (
        select deliveries.delivery_id
        from {{ source('ingest', 'deliveries') }} as deliveries
        where deliveries.in_force = true
    )
{%- endmacro %}
