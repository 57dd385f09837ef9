"""dbt's unit tests run here, not in `kpi run`.

They check the SQL logic of the models on fixed inputs, not the data, so the production
`dbt build` leaves them out (``DBT_BUILD_ARGS`` in dagster_project/defs/assets/dbt.py). dbt reads
the columns of a unit-tested model's parents, so those are built first, on the empty raw and
ingestion tables of a throwaway DuckDB (and of a throwaway PostgreSQL database when KPI_PG_HOST
is set, as `.ci/run` does). No ``--empty``: the sources are empty already, and dbt-postgres's
``--empty`` breaks an aliased ``source()`` (``select_in_force``).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import duckdb
import pytest

from dagster_project.contracts.model import default_contracts
from dagster_project.defs.resources import dbt_executable
from dagster_project.ingest.store import ensure_tables
from dagster_project.settings import DBT_PROJECT_DIR

# The unit tests and the models and seeds they need; not the data tests.
UNIT_TEST_ARGS = ["build", "--select", "+test_type:unit", "--exclude-resource-type", "test"]


def empty_source_tables(path: Path) -> Path:
    """A DuckDB with the tables dbt reads as sources, empty (what ingestion creates)."""
    con = duckdb.connect(str(path))
    try:
        ensure_tables(con, default_contracts().values())
    finally:
        con.close()
    return path


def run_unit_tests(tmp_path: Path, env: dict[str, str], target: str) -> None:
    """Run every dbt unit test on ``target``; fail with the failing ones' messages."""
    target_path = tmp_path / "target"
    completed = subprocess.run(
        [
            dbt_executable(),
            *UNIT_TEST_ARGS,
            "--target",
            target,
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target_path),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    output = completed.stdout[-5000:] + completed.stderr[-5000:]
    run_results = target_path / "run_results.json"
    assert run_results.exists(), output
    results = json.loads(run_results.read_text(encoding="utf-8"))["results"]
    manifest = json.loads((target_path / "manifest.json").read_text(encoding="utf-8"))
    failed = [
        f"{r['unique_id']}: {r['status']} {r.get('message') or ''}"
        for r in results
        if r["status"] not in ("pass", "success")
    ]
    assert failed == [], "\n".join(failed) + "\n" + output
    assert completed.returncode == 0, output
    ran = {r["unique_id"] for r in results if r["unique_id"].startswith("unit_test.")}
    assert ran and ran == set(manifest["unit_tests"]), output


def test_dbt_unit_tests_pass_on_duckdb(tmp_path):
    database = empty_source_tables(tmp_path / "warehouse.duckdb")
    env = {**os.environ, "KPI_BUILD_WAREHOUSE": str(database), "KPI_DBT_TARGET": "duckdb"}
    run_unit_tests(tmp_path, env, "duckdb")


@pytest.mark.skipif(
    not os.environ.get("KPI_PG_HOST"),
    reason="PostgreSQL non configuré (KPI_PG_HOST absent) : `.ci/run` démarre un serveur "
    "jetable et exporte KPI_PG_*",
)
@pytest.mark.usefixtures("postgres_alone")  # one test at a time on the server
def test_dbt_unit_tests_pass_on_postgres(tmp_path, monkeypatch):
    """The portability macros too: the same unit tests on PostgreSQL."""
    import psycopg2

    from dagster_project.warehouse.postgres import copy_to_postgres, pg_params

    params = pg_params()
    name = f"kpi_unit_{secrets.token_hex(4)}"
    admin = psycopg2.connect(**params)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
        created = True
    except psycopg2.Error:  # the role may not create databases: use KPI_PG_DBNAME
        name, created = params["dbname"], False
    monkeypatch.setenv("KPI_PG_DBNAME", name)
    try:
        copy_to_postgres(empty_source_tables(tmp_path / "warehouse.duckdb"))
        run_unit_tests(tmp_path, {**os.environ, "KPI_DBT_TARGET": "postgres"}, "postgres")
    finally:
        if created:
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()
