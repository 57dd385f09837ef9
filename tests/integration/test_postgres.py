"""The PostgreSQL target: `kpi run --target postgres` builds the same marts in PostgreSQL.

Needs a server: skipped unless KPI_PG_HOST (and KPI_PG_PORT, KPI_PG_USER, KPI_PG_PASSWORD,
KPI_PG_DBNAME) are set; `.ci/run` starts a throwaway one. Each test works in a database of
its own when the role may create one (CREATEDB), else in KPI_PG_DBNAME.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import secrets
from pathlib import Path

import duckdb
import pytest

needs_postgres = pytest.mark.skipif(
    not os.environ.get("KPI_PG_HOST"),
    reason="PostgreSQL non configuré (KPI_PG_HOST absent) : `.ci/run` démarre un serveur "
    "jetable et exporte KPI_PG_*",
)
# one test at a time on the server (`make test` runs 2 processes: tests/integration/conftest.py)
pytestmark = pytest.mark.usefixtures("postgres_alone")


@pytest.fixture
def pg_database(monkeypatch):
    """A throwaway database (dropped afterwards) when the role may create one."""
    import psycopg2

    from dagster_project.warehouse.postgres import pg_params

    params = pg_params()
    name = f"kpi_test_{secrets.token_hex(4)}"
    admin = psycopg2.connect(**{**params, "dbname": params["dbname"]})
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
    except psycopg2.Error:
        admin.close()
        yield params["dbname"]
        return
    monkeypatch.setenv("KPI_PG_DBNAME", name)
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@needs_postgres
def test_copy_keeps_types_nulls_and_empty_strings(tmp_path, pg_database):
    from dagster_project.warehouse.postgres import connect_pg, copy_to_postgres

    build = tmp_path / "w.duckdb"
    con = duckdb.connect(str(build))
    con.execute(
        "create schema kpi_copy; create table kpi_copy.t (s varchar, e varchar, n bigint, "
        "d double, day date, stamp timestamp, ok boolean, q varchar)"
    )
    row = ("a,b", "", 12, 0.1 + 0.2, dt.date(2025, 3, 1), dt.datetime(2025, 3, 1, 8, 5), True)
    con.execute("insert into kpi_copy.t values (?, ?, ?, ?, ?, ?, ?, 'dit \"x\"')", list(row))
    con.execute("insert into kpi_copy.t values (null, null, null, null, null, null, null, null)")
    con.close()
    assert copy_to_postgres(build, schemas=("kpi_copy",)) == {"kpi_copy.t": 2}
    # twice: the table is refilled, not duplicated
    assert copy_to_postgres(build, schemas=("kpi_copy",)) == {"kpi_copy.t": 2}
    pg = connect_pg()
    try:
        with pg.cursor() as cur:
            cur.execute("select * from kpi_copy.t order by s nulls last")
            rows = cur.fetchall()
            cur.execute(
                "select data_type from information_schema.columns where table_schema = "
                "'kpi_copy' and table_name = 't' order by ordinal_position"
            )
            types = [r[0] for r in cur.fetchall()]
    finally:
        pg.close()
    assert rows == [(*row, 'dit "x"'), (None,) * 8]
    assert types == [
        "text",
        "text",
        "bigint",
        "double precision",
        "date",
        "timestamp without time zone",
        "boolean",
        "text",
    ]


@needs_postgres
def test_kpi_run_on_postgres_builds_the_same_marts(tmp_path_factory, pg_database):
    from support.publishing import TODAY, copy_campaign, kpi, published_campaign

    from dagster_project.warehouse.postgres import connect_pg

    base = published_campaign(tmp_path_factory)
    root = tmp_path_factory.mktemp("postgres")
    settings = copy_campaign(base, root / "campaign")
    result = kpi(
        "run",
        "--target",
        "postgres",
        "--sources",
        str(settings.sources_dir),
        "--warehouse",
        str(settings.warehouse),
        "--today",
        TODAY,
        env={"DAGSTER_HOME": str(root / "dagster_home"), "KPI_PG_DBNAME": pg_database},
    )
    assert result.returncode == 0, result.stdout + result.stderr[-5000:]
    assert "0 bloquant(s)" in result.stdout

    # dbt build on PostgreSQL: every model, seed and data test passed (the unit tests run in
    # tests/integration/test_dbt_unit.py)
    con = duckdb.connect(str(settings.build_warehouse), read_only=True)
    try:
        statuses = dict(
            con.execute(
                "select status, count(*) from audit.dbt_results where run_id = ("
                "select run_id from audit.dbt_results order by recorded_at desc limit 1) "
                "group by status"
            ).fetchall()
        )
    finally:
        con.close()
    # « no-op »: a node dbt has nothing to build for on this target (not a failure); every data
    # test of the production build passed (the generated grouped tests and the singular ones)
    import json

    from dagster_project.defs.assets.dbt import DBT_PROJECT, project_nodes

    manifest = json.loads(Path(DBT_PROJECT.manifest_path).read_text(encoding="utf-8"))
    tests = sum(1 for unique_id in project_nodes(manifest) if unique_id.startswith("test."))
    assert set(statuses) <= {"success", "pass", "no-op"}, statuses
    assert statuses.get("pass", 0) == tests > 50, (statuses, tests)

    # the marts equal DuckDB's (the session's campaign, same deliveries)
    columns = [
        "indicator_id",
        "year",
        "code_insee",
        "value",
        "unit",
        "as_of_date",
        "kind",
        "computation",
        "department",
        "priority",
        "comment",
        "source_ids",
        "delivery_ids",
    ]
    query = (
        f"select {', '.join(columns)} from marts.fct_indicator_values "
        "order by indicator_id, year, code_insee nulls first"
    )
    duck = duckdb.connect(str(Path(base) / "warehouse.duckdb"), read_only=True)
    try:
        expected = duck.execute(query).fetchall()
    finally:
        duck.close()
    pg = connect_pg()
    try:
        with pg.cursor() as cur:
            cur.execute(query)
            got = cur.fetchall()
    finally:
        pg.close()
    assert len(got) == len(expected) > 1000
    value = columns.index("value")
    different = [
        (g, e)
        for g, e in zip(got, expected, strict=True)
        if g[:value] + g[value + 1 :] != e[:value] + e[value + 1 :]
        or not math.isclose(g[value], e[value], rel_tol=1e-9, abs_tol=1e-9)
    ]
    assert different == []
    assert re.search(r"Valeurs d'indicateurs dans PostgreSQL : \d+", result.stdout)
