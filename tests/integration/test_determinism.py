"""Same inputs, same bytes: the indicator values do not depend on the order of the rows nor
on how DuckDB's threads split a sum.

Slow: the built demo campaign (conftest ``demo_warehouse``). Every view of its build database
(staging, restricted) is read several times with 8 threads, then again on a copy whose raw
tables hold the same rows in the reverse order; each view gives the same rows every time.
The intermediate models (tables) are built again by dbt in that copy and give the same rows,
and the indicator values recomputed from the reversed rows are the values stored in
``marts.fct_indicator_values`` (those a release freezes). A float ``sum()`` fails this:
``int_housing__habitat_improvement_metrics`` gave two row hashes in three reads, and
``mpa_works_amount`` 2024 was 1760451.0 in one build and 1760451.000000001 in another; the
models add doubles with the ``exact_sum`` macro (dbt/macros/portability.sql).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import duckdb

from dagster_project.defs.resources import dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR

READS = 4


def view_rows(build, reads: int = READS) -> dict[str, set]:
    """Each view of the build: the set of (row count, sum of row hashes) over ``reads``."""
    con = duckdb.connect()
    try:
        con.execute("set threads = 8")
        con.execute(f"attach '{build}' as {build.stem} (read_only)")
        con.execute(f"use {build.stem}")
        views = con.execute(
            "select schema_name, view_name from duckdb_views() where database_name = ? "
            "and not internal order by 1, 2",
            [build.stem],
        ).fetchall()
        return {
            f"{schema}.{name}": {
                con.execute(
                    f'select count(*), sum(hash(r)::hugeint) from "{schema}"."{name}" r'
                ).fetchone()
                for _ in range(reads)
            }
            for schema, name in views
        }
    finally:
        con.close()


def relation_rows(build, schema: str) -> dict[str, tuple]:
    """Each table and view of ``schema``: (row count, sum of row hashes)."""
    con = duckdb.connect(str(build), read_only=True)
    try:
        names = con.execute(
            "select table_name from duckdb_tables() where schema_name = ? union "
            "select view_name from duckdb_views() where schema_name = ? order by 1",
            [schema, schema],
        ).fetchall()
        return {
            name: con.execute(
                f'select count(*), sum(hash(r)::hugeint) from "{schema}"."{name}" r'
            ).fetchone()
            for (name,) in names
        }
    finally:
        con.close()


def test_values_do_not_depend_on_the_order_of_rows_or_threads(demo_warehouse, tmp_path):
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    build = demo_warehouse.root / ".build" / "warehouse.duckdb"
    first = view_rows(build)
    assert len(first) > 15  # staging and restricted views
    varying = {view: rows for view, rows in first.items() if len(rows) > 1}
    assert varying == {}, "vues dont les lignes changent d'une lecture à l'autre"

    # the same deliveries, their rows stored in the reverse order
    copy = tmp_path / ".build" / build.name
    copy.parent.mkdir()
    shutil.copy2(build, copy)
    con = duckdb.connect(str(copy))
    try:
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.columns "
            "where table_schema in ('raw', 'raw_restricted') and column_name = '_row_number'"
        ).fetchall():
            con.execute(
                f"create or replace table {schema}.{name} as select * from {schema}.{name} "
                "order by _delivery_id desc, _row_number desc"
            )
    finally:
        con.close()
    assert view_rows(copy) == first

    # the intermediate models are tables (computed once per build, dbt/dbt_project.yml): dbt
    # builds them again, from the reversed rows, in the copy; each gives the same rows
    before = relation_rows(build, "intermediate")
    assert len(before) > 15
    env = {**os.environ, "KPI_BUILD_WAREHOUSE": str(copy), "DBT_LOG_PATH": str(tmp_path)}
    dbt = subprocess.run(
        [
            dbt_executable(),
            "run",
            "--quiet",
            "--select",
            "path:models/intermediate",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--threads",
            "8",
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dbt.returncode == 0, dbt.stdout + dbt.stderr
    assert relation_rows(copy, "intermediate") == before

    # the stored (and frozen) values are the order-independent ones
    con = duckdb.connect(str(copy), read_only=True)
    try:
        con.execute("set threads = 8")
        relations = con.execute(
            "select table_name from duckdb_tables() where schema_name = 'intermediate' "
            "and table_name like 'int_%__indicator_values' union "
            "select view_name from duckdb_views() where schema_name = 'intermediate' "
            "and view_name like 'int_%__indicator_values'"
        ).fetchall()
        assert len(relations) >= 4
        for (relation,) in relations:
            differing = con.execute(
                "select indicator_id, year, code_insee, value "
                f"from intermediate.{relation} "
                "except select indicator_id, year, code_insee, value "
                "from marts.fct_indicator_values"
            ).fetchall()
            assert differing == [], relation
    finally:
        con.close()
