"""The release tables of the warehouse, and reading them back.

A release is written once and never changed: rows in ``release.releases``,
``release.release_values`` and ``release.waivers`` of the warehouse (declared, with the view
``release.latest_values``, in ``warehouse.schema``), and a folder
``releases/RA-2025-v1/`` (``manifest``). Here are the columns a release's values are stored
and rendered with, and the look-ups every release command shares: which release to read for
a year (``release_for``), a release's record (``release_info``, ``release_rows``) and its
folder (``release_folder``).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import duckdb

from dagster_project.warehouse.relations import column_exists, table_exists
from dagster_project.warehouse.schema import ensure

VALUE_COLUMNS = [
    "indicator_id",
    "year",
    "code_insee",
    "value",
    "unit",
    "as_of_date",
    "kind",
    "computation",
    "comment",
    "source_ids",
    "delivery_ids",
]
REVIEW_COLUMNS = ["review_status", "review_comment"]
RELEASED_COLUMNS = VALUE_COLUMNS + REVIEW_COLUMNS
# Total order of a release's rows: the CSV rendering (and so values_sha256) is deterministic.
VALUES_ORDER = ", ".join(f"{c} nulls first" for c in RELEASED_COLUMNS)


def ensure_release_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The release.* tables and the view release.latest_values (``warehouse.schema``)."""
    ensure(con, "release")


def release_for(con: duckdb.DuckDBPyConnection, year: int, release_id: str | None = None):
    """The release to read for a year: the given one, else the latest version (or None)."""
    if not table_exists(con, "release.releases"):
        return None
    if release_id:
        row = con.execute(
            "select release_id from release.releases where release_id = ?", [release_id]
        ).fetchone()
    else:
        row = con.execute(
            "select release_id from release.releases where year = ? order by version desc limit 1",
            [year],
        ).fetchone()
    return row[0] if row else None


def release_info(con: duckdb.DuckDBPyConnection, release_id: str) -> dict | None:
    if not table_exists(con, "release.releases"):
        return None
    row = con.execute(
        "select release_id, year, version, created_at, reason, value_count, manifest_sha256, "
        "previous_release_id, previous_manifest_sha256, folder from release.releases "
        "where release_id = ?",
        [release_id],
    ).fetchone()
    if row is None:
        return None
    keys = [
        "release_id",
        "year",
        "version",
        "created_at",
        "reason",
        "value_count",
        "manifest_sha256",
        "previous_release_id",
        "previous_manifest_sha256",
        "folder",
    ]
    info = dict(zip(keys, row, strict=True))
    info["values_sha256"] = (
        con.execute(
            "select values_sha256 from release.releases where release_id = ?", [release_id]
        ).fetchone()[0]
        if column_exists(con, "release.releases", "values_sha256")
        else None
    )
    return info


class ReleaseRow(NamedTuple):
    """One row of ``release.releases``, as ``release_rows`` reads it."""

    release_id: str
    year: int
    version: int
    manifest_sha256: str
    previous_release_id: str | None
    previous_manifest_sha256: str | None
    value_count: int
    folder: str
    values_sha256: str | None  # None in a release table older than the column


def release_rows(con: duckdb.DuckDBPyConnection, release_id: str | None = None) -> list[ReleaseRow]:
    """The rows of ``release.releases`` (the one named, else all of them) by year and
    version: what ``verify`` checks in the build database and ``verify_copy`` in the
    published copy. The table must exist."""
    has_values_sha = column_exists(con, "release.releases", "values_sha256")
    rows = con.execute(
        "select release_id, year, version, manifest_sha256, previous_release_id, "
        "previous_manifest_sha256, value_count, folder, "
        f"{'values_sha256' if has_values_sha else 'null'} from release.releases "
        + ("where release_id = ? " if release_id else "")
        + "order by year, version",
        [release_id] if release_id else [],
    ).fetchall()
    return [ReleaseRow(*row) for row in rows]


def release_folder(releases_dir: Path, release_id: str, stored: str | None) -> Path:
    folder = releases_dir / release_id
    if not folder.exists() and stored and Path(stored).exists():
        return Path(stored)
    return folder
