"""dbt creates only the schemas a DuckDB build lacks (dbt/macros/list_schemas.sql): dbt-duckdb
compared dbt-core's quoted database name with the catalogue's and found no schema, so every
invocation « created » them all again.

Run on a throwaway dbt project that holds the project's macro and two models in two schemas,
with the real dbt CLI and its debug log."""

from __future__ import annotations

from pathlib import Path

import duckdb
from support.dbt_projects import run_dbt

from dagster_project.settings import DBT_PROJECT_DIR

MACRO = DBT_PROJECT_DIR / "macros" / "list_schemas.sql"

PROJECT = """
name: schemas
version: "1.0.0"
config-version: 2
profile: schemas
"""

PROFILE = """
schemas:
  target: duckdb
  outputs:
    duckdb:
      type: duckdb
      path: "{path}"
      schema: base
      threads: 2
"""


def _build(root: Path) -> str:
    """One ``dbt run``; its debug log."""
    log = root / "logs" / "dbt.log"
    log.unlink(missing_ok=True)
    done = run_dbt(root, "run", "--log-level-file", "debug")
    assert done.returncode == 0, done.stdout[-3000:]
    return log.read_text(encoding="utf-8")


def test_only_the_missing_schemas_are_created(tmp_path):
    root = tmp_path / "project"
    (root / "macros").mkdir(parents=True)
    (root / "models").mkdir()
    (root / "macros" / MACRO.name).write_text(MACRO.read_text(encoding="utf-8"))
    (root / "dbt_project.yml").write_text(PROJECT)
    (root / "profiles.yml").write_text(PROFILE.format(path=tmp_path / "w.duckdb"))
    (root / "models" / "one.sql").write_text("select 1 as n")
    (root / "models" / "two.sql").write_text("{{ config(schema='other') }}\nselect 2 as n")

    first = _build(root)  # a new database: both schemas created
    assert first.count("Creating schema") == 2
    second = _build(root)  # both there: none created again
    assert "Creating schema" not in second
    (root / "models" / "three.sql").write_text("{{ config(schema='third') }}\nselect 3 as n")
    third = _build(root)  # one new schema: that one only
    assert third.count("Creating schema") == 1 and "third" in third.split("Creating schema")[1]
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() union all "
            "select schema_name, view_name from duckdb_views() where not internal order by 1"
        ).fetchall()
    finally:
        con.close()
    assert tables == [("base", "one"), ("base_other", "two"), ("base_third", "three")]
