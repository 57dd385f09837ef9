"""Same inputs, same bytes: the indicator values do not depend on the order of the rows nor
on how DuckDB's threads split a sum.

Slow: the built demo campaign (conftest ``demo_warehouse``). Every view of its build database
(staging, intermediate, restricted) is read several times with 8 threads, then again on a
copy whose raw tables hold the same rows in the reverse order; each view gives the same rows
every time, and the indicator values recomputed from the reversed rows are the values stored
in ``marts.fct_indicator_values`` (those a release freezes). A float ``sum()`` fails this:
``int_housing__habitat_improvement_metrics`` gave two row hashes in three reads, and
``mpa_works_amount`` 2024 was 1760451.0 in one build and 1760451.000000001 in another; the
models add doubles with the ``exact_sum`` macro (dbt/macros/portability.sql).
"""

from __future__ import annotations

import shutil

import duckdb

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


def test_values_do_not_depend_on_the_order_of_rows_or_threads(demo_warehouse, tmp_path):
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    build = demo_warehouse.root / ".build" / "warehouse.duckdb"
    first = view_rows(build)
    assert len(first) > 30
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

    # the stored (and frozen) values are the order-independent ones
    con = duckdb.connect(str(copy), read_only=True)
    try:
        con.execute("set threads = 8")
        for (view,) in con.execute(
            "select view_name from duckdb_views() where schema_name = 'intermediate' "
            "and view_name like 'int_%__indicator_values'"
        ).fetchall():
            differing = con.execute(
                "select indicator_id, year, code_insee, value "
                f"from intermediate.{view} "
                "except select indicator_id, year, code_insee, value "
                "from marts.fct_indicator_values"
            ).fetchall()
            assert differing == [], view
    finally:
        con.close()
