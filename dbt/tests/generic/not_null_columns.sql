{#
    Colonnes non vides d'un modèle, en un seul test (un seul passage sur les données) au lieu
    d'un test not_null par colonne : un nœud dbt coûte ≈ 45 ms quel que soit le volume
    (bench/README.md), et une vue est évaluée une fois au lieu d'une fois par colonne.
    Renvoie une ligne par colonne qui a des valeurs NULL (column_name, null_rows) ; le nombre
    d'échecs est le nombre de cellules vides. DuckDB et PostgreSQL.
#}
{% test not_null_columns(model, columns) %}
    {{ config(fail_calc = 'coalesce(sum(null_rows), 0)') }}
    with counts as (
        select
        {%- for column in columns %}
            sum(case when {{ column }} is null then 1 else 0 end) as null_{{ loop.index }}
            {{- "," if not loop.last }}
        {%- endfor %}
        from {{ model }}
    )
    {%- for column in columns %}
    select '{{ column }}' as column_name, null_{{ loop.index }} as null_rows
    from counts where null_{{ loop.index }} > 0
    {{ "union all" if not loop.last }}
    {%- endfor %}
{% endtest %}
