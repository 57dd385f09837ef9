{#
    Tables and views on DuckDB, replaced in place inside the model's transaction.

    dbt's own materializations (dbt-core's view, dbt-duckdb's table) build the new relation
    beside the old one (`__dbt_tmp`), rename the old one away (`__dbt_backup`), rename the new
    one in, commit, then drop the old one: the way to swap a relation on a database whose
    DDL is not transactional. DuckDB's is (dbt-duckdb already replaces in place the tables
    that have foreign keys): dropping and creating the relation in one transaction gives the
    same result — a reader sees the old relation or the new one, never none; a failure
    leaves the old one — in 5 statements instead of 12, and a fraction of the Jinja per model
    (bench/README.md, issue 19). The contract checks are unchanged (`create_table_as`
    asserts the columns and creates the declared columns and constraints), and so are the
    hooks, grants and documentation (`duckdb__persist_docs` below).

    Only for DuckDB (`adapter="duckdb"`): on PostgreSQL dbt's own materializations run.
#}

{% materialization table, adapter="duckdb", supported_languages=["sql"] %}
  {{ return(kpi_replace_in_place("table")) }}
{% endmaterialization %}

{% materialization view, adapter="duckdb" %}
  {{ return(kpi_replace_in_place("view")) }}
{% endmaterialization %}

{% macro kpi_replace_in_place(kind) %}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type=kind) -%}
  {%- set grant_config = config.get("grants") -%}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {#-- the drop and the create in one transaction, even before any statement began one --#}
  {% do adapter.ensure_transaction() %}
  {% set dropped_dependents = [] %}
  {% if existing_relation is not none %}
    {% if existing_relation.is_table and may_be_foreign_key_target(existing_relation) %}
      {% set dropped_dependents = drop_foreign_key_dependents(existing_relation) %}
    {% endif %}
    {% do adapter.drop_relation(existing_relation) %}
  {% endif %}
  {% call statement("main") -%}
    {%- if kind == "table" -%}
      {{ create_table_as(False, target_relation, sql) }}
    {%- else -%}
      {{ get_create_view_as_sql(target_relation, sql) }}
    {%- endif -%}
  {%- endcall %}
  {% do restore_foreign_key_dependents(dropped_dependents) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  -- `COMMIT` happens here
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({"relations": [target_relation]}) }}
{% endmacro %}

{#
    The relation's and its columns' descriptions as DuckDB comments: the same comments as
    dbt's `persist_docs` with dbt-duckdb's macros (the same warning for a documented column the
    relation does not have), in one statement after one look at the relation's columns
    instead of two statements after two.
#}
{% macro duckdb__persist_docs(relation, model, for_relation=true, for_columns=true) %}
  {%- set statements = [] -%}
  {%- if for_relation and config.persist_relation_docs() and model.description -%}
    {%- do statements.append(duckdb__alter_relation_comment(relation, model.description)) -%}
  {%- endif -%}
  {%- if for_columns and config.persist_column_docs() and model.columns -%}
    {%- set existing = adapter.get_columns_in_relation(relation) | map(attribute="name") | list -%}
    {%- set documented = validate_doc_columns(relation, model.columns, existing) -%}
    {%- for column_name, column in documented.items() -%}
      {%- do statements.append(
        "comment on column " ~ relation ~ "."
        ~ (adapter.quote(column_name) if column["quote"] else column_name)
        ~ " is " ~ duckdb_escape_comment(column["description"]) ~ ";"
      ) -%}
    {%- endfor -%}
  {%- endif -%}
  {%- if statements -%}
    {% do run_query(statements | join("\n")) %}
  {%- endif -%}
{% endmacro %}
