"""The published copy is written in an explicit DuckDB storage format (``STORAGE_VERSION``),
recorded in ``publication.info``, whatever the writing library's default. That an older
DuckDB from PyPI opens it: tests/integration/test_storage_compat.py."""

from __future__ import annotations

import duckdb
from support.publishing import fetch_rows, settings_for
from support.storage import write_typed_build

from dagster_project.warehouse.publication import publication_info, publish
from dagster_project.warehouse.published_copy import STORAGE_VERSION
from dagster_project.warehouse.schema import PUBLICATION_SCHEMA


def _file_format(path) -> str:
    """The storage range DuckDB reads from the file's header (« v1.0.0+ »: 1.0 and later)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as probe (read_only)")
        return con.execute(
            "select tags['storage_version'] from duckdb_databases() where database_name = 'probe'"
        ).fetchone()[0]
    finally:
        con.close()


def test_the_copy_is_written_and_recorded_in_the_declared_storage_format(tmp_path):
    assert STORAGE_VERSION == "v1.0.0"  # docs/analysts.md names the clients it admits
    settings = settings_for(tmp_path / "warehouse.duckdb")
    write_typed_build(settings.build_warehouse)
    publish(settings)
    info = publication_info(settings.warehouse)
    assert info["storage_version"] == STORAGE_VERSION
    assert info["duckdb_version"] == duckdb.__version__
    assert _file_format(settings.warehouse) == "v1.0.0+"
    # an incremental publication (a byte copy of this one, then the changed tables) keeps it
    write_typed_build(settings.build_warehouse, values=5)
    second = publish(settings)
    assert second.reused and "marts.fct_indicator_values" not in second.reused
    assert publication_info(settings.warehouse)["storage_version"] == STORAGE_VERSION
    assert _file_format(settings.warehouse) == "v1.0.0+"


def test_a_copy_in_another_storage_format_is_rewritten_whole(tmp_path):
    """A previous copy without the recorded format (published before it) or in another one is
    never the start of a byte copy: a newer format cannot be lowered by attaching it."""
    settings = settings_for(tmp_path / "warehouse.duckdb")
    write_typed_build(settings.build_warehouse)
    publish(settings)
    assert publish(settings).reused  # same format: incremental
    path = settings.warehouse
    path.chmod(0o644)
    con = duckdb.connect(str(path))
    con.execute(f"update {PUBLICATION_SCHEMA}.info set storage_version = 'v1.5.0'")
    con.close()
    assert publish(settings).reused == []
    path.chmod(0o644)
    con = duckdb.connect(str(path))
    con.execute(f"alter table {PUBLICATION_SCHEMA}.info drop column storage_version")
    con.close()
    assert publication_info(path)["storage_version"] is None  # a publication made before
    assert publish(settings).reused == []
    assert fetch_rows(path, f"select storage_version from {PUBLICATION_SCHEMA}.info") == [
        (STORAGE_VERSION,)
    ]
