"""An analyst's older DuckDB opens the published copy (docs/analysts.md, « Se connecter »).

The copy is written in the storage format ``published_copy.STORAGE_VERSION`` (v1.0.0). Here
DuckDB 1.0.0, the oldest 1.x client, installed from PyPI into a throwaway virtualenv, opens a
copy published by the project's code (a full publication, then an incremental one) read-only
and reads every table. A file written in a newer format is refused by that client: the check
can fail. Skipped, with the reason, when the package cannot be installed (no registry).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from support.publishing import settings_for
from support.storage import write_typed_build

from dagster_project.warehouse.publication import publication_info, publish
from dagster_project.warehouse.published_copy import STORAGE_VERSION

OLD_CLIENT = os.environ.get("KPI_OLD_DUCKDB", "1.0.0")

READ_EVERY_TABLE = """
import json, sys
import duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
tables = con.execute(
    "select schema_name, table_name from duckdb_tables() order by 1, 2"
).fetchall()
rows = {}
for schema, name in tables:
    rows[f"{schema}.{name}"] = [
        [repr(v) for v in row]
        for row in con.execute(f'select * from "{schema}"."{name}" order by all').fetchall()
    ]
comment = con.execute(
    "select comment from duckdb_tables() where table_name = 'fct_indicator_values'"
).fetchone()[0]
con.close()
print(json.dumps({"version": duckdb.__version__, "rows": rows, "comment": comment}))
"""


@pytest.fixture(scope="module")
def old_python(tmp_path_factory) -> Path:
    """A throwaway virtualenv with duckdb==OLD_CLIENT, from the registry."""
    env = tmp_path_factory.mktemp("old-duckdb") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True)
    python = env / "bin" / "python"
    try:
        result = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"duckdb=={OLD_CLIENT}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"duckdb=={OLD_CLIENT} could not be installed from the registry in 10 min")
    if result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()[-1:]
        pytest.skip(
            f"duckdb=={OLD_CLIENT} could not be installed from the registry (no registry?): "
            + " ".join(reason)
        )
    return python


def _read(python: Path, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-c", READ_EVERY_TABLE, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _rows_here(path: Path) -> dict:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() order by 1, 2"
        ).fetchall()
        return {
            f"{schema}.{name}": [
                [repr(v) for v in row]
                for row in con.execute(f'select * from "{schema}"."{name}" order by all').fetchall()
            ]
            for schema, name in tables
        }
    finally:
        con.close()


def test_an_older_duckdb_opens_the_published_copy(tmp_path, old_python):
    settings = settings_for(tmp_path / "warehouse.duckdb")
    write_typed_build(settings.build_warehouse)
    publish(settings)
    write_typed_build(settings.build_warehouse, values=5)
    incremental = publish(settings)  # a byte copy of the first, the changed tables rewritten
    assert incremental.reused
    assert publication_info(settings.warehouse)["storage_version"] == STORAGE_VERSION

    result = _read(old_python, settings.warehouse)
    assert result.returncode == 0, result.stderr
    read = json.loads(result.stdout)
    assert read["version"] == OLD_CLIENT
    # every table, every row, as the pipeline's DuckDB reads them; comments too
    assert read["rows"] == _rows_here(settings.warehouse)
    assert len(read["rows"]["marts.fct_indicator_values"]) == 5
    assert "publication.info" in read["rows"]
    assert not any(name.startswith("raw_restricted.") for name in read["rows"])
    assert read["comment"] == "Valeurs des indicateurs (é, €, m³)."


def test_the_check_fails_on_a_file_the_older_duckdb_cannot_read(tmp_path, old_python):
    """The same client refuses a file in a newer storage format: what the copy would be
    without its explicit STORAGE_VERSION once the library's default moves on."""
    newer = tmp_path / "newer.duckdb"
    con = duckdb.connect()
    con.execute(f"attach '{newer}' as newer (storage_version 'v1.2.0')")
    con.execute("create table newer.t as select 1 as x")
    con.execute("detach newer")
    con.close()
    result = _read(old_python, newer)
    assert result.returncode != 0
    assert "version" in result.stderr.lower()
