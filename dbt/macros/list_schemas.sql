{#
    The schemas of a DuckDB database, for dbt's « create the schemas the build needs ».

    dbt-core hands `list_schemas` the database's name quoted (`"warehouse"`, the string form
    of the relation); dbt-duckdb 1.11.1 compares it, quotes included, with the unquoted names
    of DuckDB's catalogue, finds no schema, and so dbt « creates » every schema of the build
    at each invocation (a `create schema if not exists` per schema, each on a connection of
    its own). The same query as dbt-duckdb's, the quotes removed: dbt then creates only the
    schemas missing. Only for DuckDB (`duckdb__`): on PostgreSQL dbt's own macro runs.
#}

{% macro duckdb__list_schemas(database) -%}
  {% set sql %}
    select schema_name
    from system.information_schema.schemata
    {% if database is not none %}
    where lower(catalog_name) = '{{ database | replace('"', '') | lower }}'
    {% endif %}
  {% endset %}
  {{ return(run_query(sql)) }}
{% endmacro %}
