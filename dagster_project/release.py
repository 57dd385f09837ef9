"""Frozen, versioned releases of a year's indicator values (``RA-<year>-v<n>``).

A release is written once and never changed: rows in ``release.releases`` and
``release.release_values`` of the warehouse, and a folder ``releases/RA-2025-v1/`` holding
``values.csv``, ``values.parquet`` and ``manifest.json`` (SHA-256 of every input delivery
and output file, tool versions, validation results, previous release's manifest hash).
Release files hold no wall-clock time, so freezing the same inputs twice gives the same
bytes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import duckdb

RELEASE_DDL = """
create schema if not exists release;
create table if not exists release.releases (
    release_id varchar primary key,
    year integer not null,
    version integer not null,
    created_at timestamp not null default current_timestamp,
    reason varchar,
    run_id varchar,
    value_count integer not null,
    manifest_sha256 varchar not null,
    previous_release_id varchar,
    previous_manifest_sha256 varchar,
    folder varchar not null
);
create table if not exists release.release_values (
    release_id varchar not null,
    indicator_id varchar not null,
    year integer not null,
    code_insee varchar,
    value double,
    unit varchar,
    as_of_date date,
    kind varchar,
    computation varchar,
    comment varchar,
    source_ids varchar,
    delivery_ids varchar
);
"""
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
TOOLS = [
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "dagster",
    "dagster-dbt",
    "great-expectations",
    "pandas",
    "python-calamine",
]


class FreezeRefused(RuntimeError):
    """The freeze cannot happen; the message (French) says why."""


@dataclass
class Release:
    release_id: str
    folder: Path
    value_count: int
    manifest_sha256: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def ensure_release_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(RELEASE_DDL)


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """Run id of the last pipeline run that recorded check or dbt results."""
    parts = []
    for table in ("audit.check_results", "audit.dbt_results"):
        if _table_exists(con, table):
            column = "checked_at" if table.endswith("check_results") else "recorded_at"
            parts.append(f"select run_id, max({column}) as last_at from {table} group by run_id")
    if not parts:
        return None
    row = con.execute(
        f"select run_id from ({' union all '.join(parts)}) order by last_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def _table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed in the run."""
    if run_id is None:
        return []
    failures = []
    if _table_exists(con, "audit.check_results"):
        for name, asset, description in con.execute(
            "select check_name, asset, description_fr from audit.check_results "
            "where run_id = ? and blocking and not passed order by check_name",
            [run_id],
        ).fetchall():
            failures.append({"check": name, "asset": asset, "description": description})
    if _table_exists(con, "audit.dbt_results"):
        for unique_id, status, message in con.execute(
            "select unique_id, status, message from audit.dbt_results "
            "where run_id = ? and status in ('fail', 'error') order by unique_id",
            [run_id],
        ).fetchall():
            failures.append(
                {"check": unique_id, "asset": "dbt", "description": f"{status}: {message}"}
            )
    return failures


def validation_summary(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict:
    summary: dict = {"run_id": run_id, "checks": [], "dbt": {}}
    if run_id is None:
        return summary
    if _table_exists(con, "audit.check_results"):
        summary["checks"] = [
            {"check": n, "asset": a, "passed": bool(p), "blocking": bool(b), "severity": s}
            for n, a, p, b, s in con.execute(
                "select check_name, asset, passed, blocking, severity from audit.check_results "
                "where run_id = ? order by check_name, asset",
                [run_id],
            ).fetchall()
        ]
    if _table_exists(con, "audit.dbt_results"):
        summary["dbt"] = dict(
            con.execute(
                "select status, count(*) from audit.dbt_results where run_id = ? group by status order by status",
                [run_id],
            ).fetchall()
        )
    return summary


def _input_deliveries(con: duckdb.DuckDBPyConnection, year: int) -> list[dict]:
    rows = con.execute(
        "select delivery_id, source_id, department, file_name, file_sha256, "
        "strftime(received_at, '%Y-%m-%dT%H:%M:%S') from ingest.deliveries "
        "where campaign_year = ? and in_force order by delivery_id",
        [year],
    ).fetchall()
    keys = ["delivery_id", "source_id", "department", "file_name", "file_sha256", "received_at"]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def _tool_versions() -> dict[str, str]:
    versions = {}
    for tool in TOOLS:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = "absent"
    return versions


def _write_values(con: duckdb.DuckDBPyConnection, year: int, folder: Path) -> int:
    query = (
        f"select {', '.join(VALUE_COLUMNS)} from marts.fct_indicator_values where year = ? "
        "order by indicator_id, code_insee nulls first"
    )
    rows = con.execute(query, [year]).fetchall()
    with (folder / "values.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(VALUE_COLUMNS)
        for row in rows:
            writer.writerow(
                ["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row]
            )
    parquet = (folder / "values.parquet").as_posix().replace("'", "''")
    con.execute(
        f"copy ({query.replace('?', str(int(year)))}) to '{parquet}' (format parquet, compression zstd)"
    )
    return len(rows)


def freeze(
    con: duckdb.DuckDBPyConnection,
    year: int,
    releases_dir: Path,
    *,
    reason: str | None = None,
) -> Release:
    """Freeze the year's values into the next release version; refuse when checks failed."""
    ensure_release_tables(con)
    if not _table_exists(con, "marts.fct_indicator_values"):
        raise FreezeRefused("aucune valeur à figer : lancez d'abord `kpi run`")
    run_id = latest_run_id(con)
    failures = blocking_failures(con, run_id)
    if failures:
        listed = "\n".join(
            f"  - {f['check']} ({f['asset']}) : {f['description']}" for f in failures[:20]
        )
        raise FreezeRefused(
            f"gel refusé : {len(failures)} contrôle(s) bloquant(s) en échec lors de la dernière "
            f"exécution ({run_id}) :\n{listed}"
        )
    previous = con.execute(
        "select release_id, version, manifest_sha256 from release.releases where year = ? "
        "order by version desc limit 1",
        [year],
    ).fetchone()
    version = 1 if previous is None else previous[1] + 1
    if previous is not None and not (reason and reason.strip()):
        raise FreezeRefused(
            f"{previous[0]} existe déjà et une publication ne se réécrit jamais : une nouvelle "
            f'version (RA-{year}-v{version}) exige un motif (--reason "...")'
        )
    release_id = f"RA-{year}-v{version}"
    folder = releases_dir / release_id
    if folder.exists():
        raise FreezeRefused(f"le dossier {folder} existe déjà : il n'est jamais écrasé")
    releases_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{release_id}-", dir=releases_dir))
    try:
        count = _write_values(con, year, staging)
        if count == 0:
            raise FreezeRefused(f"aucune valeur d'indicateur pour {year} : rien à figer")
        manifest = {
            "release_id": release_id,
            "year": year,
            "version": version,
            "reason": reason,
            "previous_release_id": previous[0] if previous else None,
            "previous_manifest_sha256": previous[2] if previous else None,
            "value_count": count,
            "inputs": _input_deliveries(con, year),
            "outputs": {
                name: sha256_file(staging / name) for name in ("values.csv", "values.parquet")
            },
            "tools": _tool_versions(),
            "validation": validation_summary(con, run_id),
        }
        manifest_path = staging / "manifest.json"
        manifest_path.write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        manifest_sha = sha256_file(manifest_path)
        con.execute("begin transaction")
        try:
            con.execute(
                "insert into release.releases (release_id, year, version, reason, run_id, value_count, "
                "manifest_sha256, previous_release_id, previous_manifest_sha256, folder) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    release_id,
                    year,
                    version,
                    reason,
                    run_id,
                    count,
                    manifest_sha,
                    manifest["previous_release_id"],
                    manifest["previous_manifest_sha256"],
                    str(folder),
                ],
            )
            con.execute(
                f"insert into release.release_values select ?, {', '.join(VALUE_COLUMNS)} "
                "from marts.fct_indicator_values where year = ?",
                [release_id, year],
            )
            for path in staging.iterdir():
                path.chmod(0o444)
            staging.chmod(0o755)
            os.replace(staging, folder)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return Release(release_id, folder, count, manifest_sha)
