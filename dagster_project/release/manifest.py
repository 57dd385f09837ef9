"""What a release folder holds, and the fingerprints its manifest records.

The folder ``releases/RA-2025-v1/`` holds ``values.csv``, ``values.parquet``, the exports
(Excel, HTML report, data docs, when ``dagster_project.release.exports`` is installed),
``manifest.json`` and ``SHA256SUMS``. The manifest records the SHA-256 of every input delivery
(``input_deliveries``), of every output file of the folder, recursively (``output_files``),
of the release's values as stored in the warehouse (``values_sha256``: values.csv as
``render_values_csv`` renders the warehouse rows) and of the previous version's manifest (a
chain per year), plus the code and tool versions that wrote it, validation results, waived
checks and review-status counts.

Written in this order, so that no file hashes a file that hashes it: the outputs, then the
manifest (their SHA-256), then ``SHA256SUMS`` (``render_checksums``: the SHA-256 of the
outputs and of the manifest, for ``sha256sum -c`` run inside the folder). The manifest names
``SHA256SUMS`` (``checksums``) but cannot hash it; its content follows from the manifest and
its hash, which is how ``verify`` checks it.

Release files hold no wall-clock time and no run identifier, so freezing the same inputs
twice, even in another warehouse, gives the same bytes. A folder, once written, is made
read-only (``make_read_only``; ``make_writable`` before one left by a failed freeze is
removed).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb

from dagster_project.lib.csv_safety import neutralise
from dagster_project.lib.hashing import sha256_bytes
from dagster_project.release.records import RELEASED_COLUMNS, VALUES_ORDER
from dagster_project.warehouse.relations import column_exists

NOT_REVIEWED = "non revu"
MANIFEST = "manifest.json"
# In each release folder since 2026-12-05 (manifest key ``checksums``): `sha256sum -c SHA256SUMS`
# run inside the folder checks every other file of it, manifest included.
CHECKSUMS = "SHA256SUMS"
# How values.csv renders its rows (recorded as ``values_csv_format`` in the manifest of every
# release frozen since version 2; absent: 1). 1: text as it is; 2: a text cell that a
# spreadsheet would take for a formula (« =… », « +… », « -… », « @… ») has a « ' » before it
# (``csv_safety``; numbers are never touched, and values.parquet keeps the text as it is). A
# release is always re-rendered the way it was frozen, so a release frozen before 2 verifies.
VALUES_CSV_FORMAT = 2


def input_deliveries(con: duckdb.DuckDBPyConnection, year: int, release_id: str) -> list[dict]:
    """The deliveries in force for the year, plus any earlier one a released value cites
    (multi-year indicators): each with its file's SHA-256."""
    rows = con.execute(
        "select delivery_id, source_id, department, file_name, file_sha256, "
        "strftime(received_at, '%Y-%m-%dT%H:%M:%S') from ingest.deliveries "
        "where (campaign_year = ? and in_force) or delivery_id in ("
        "  select distinct trim(unnest(string_split(delivery_ids, ','))) "
        "  from release.release_values where release_id = ?) "
        "order by delivery_id",
        [year, release_id],
    ).fetchall()
    keys = ["delivery_id", "source_id", "department", "file_name", "file_sha256", "received_at"]
    return [dict(zip(keys, row, strict=True)) for row in rows]


def review_counts(con: duckdb.DuckDBPyConnection, release_id: str) -> dict[str, int]:
    from dagster_project.quality.review import STATUSES

    counts = dict.fromkeys([*STATUSES, NOT_REVIEWED], 0)
    for status, n in con.execute(
        "select coalesce(review_status, ?), count(*) from release.release_values "
        "where release_id = ? group by 1",
        [NOT_REVIEWED, release_id],
    ).fetchall():
        counts[status] = n
    return counts


def csv_cell(value) -> object:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else value


def values_csv_format(manifest: dict | None) -> int:
    """The rendering of values.csv a release was frozen with (``VALUES_CSV_FORMAT``): its
    manifest's ``values_csv_format``, 1 for a manifest without it; without a manifest, the
    current one."""
    if not manifest:
        return VALUES_CSV_FORMAT
    return manifest.get("values_csv_format", 1)


def render_values_csv(
    con: duckdb.DuckDBPyConnection, release_id: str, values_format: int = VALUES_CSV_FORMAT
) -> bytes:
    """The release's rows of ``release.release_values`` as CSV bytes: values.csv exactly.

    Its SHA-256 is the release's ``values_sha256``: re-rendering the warehouse rows later
    and comparing the hash shows whether any row was changed, added or removed. A release is
    re-rendered with the ``values_format`` it was frozen with (``values_csv_format``).
    """
    columns = [
        c if column_exists(con, "release.release_values", c) else f"null as {c}"
        for c in RELEASED_COLUMNS
    ]
    rows = con.execute(
        f"select {', '.join(columns)} from release.release_values where release_id = ? "
        f"order by {VALUES_ORDER}",
        [release_id],
    ).fetchall()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(RELEASED_COLUMNS)
    safe = neutralise if values_format >= 2 else _as_is  # (text only: numbers are not str)
    for row in rows:
        writer.writerow([csv_cell(safe(v)) for v in row])
    return buffer.getvalue().encode("utf-8")


def _as_is(value: object) -> object:
    return value


def values_sha256(
    con: duckdb.DuckDBPyConnection, release_id: str, values_format: int = VALUES_CSV_FORMAT
) -> str:
    return sha256_bytes(render_values_csv(con, release_id, values_format))


def output_files(folder: Path) -> list[Path]:
    """Every file of a release folder (recursively), manifest and ``SHA256SUMS`` excluded, in
    a stable order."""
    return sorted(
        (
            p
            for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).as_posix() not in (MANIFEST, CHECKSUMS)
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def render_checksums(outputs: dict[str, str], manifest_sha: str) -> bytes:
    """The folder's ``SHA256SUMS``: ``<sha256>  <path>`` for every file of the folder but
    itself (the outputs and the manifest), paths relative to the folder, sorted: what
    ``sha256sum -c SHA256SUMS`` checks when run inside the folder."""
    entries = {**outputs, MANIFEST: manifest_sha}
    for name in entries:
        if "\n" in name or "\\" in name:  # sha256sum would escape it: never in a release
            raise ValueError(f"nom de fichier impossible à inscrire dans {CHECKSUMS} : {name!r}")
    return "".join(f"{entries[name]}  {name}\n" for name in sorted(entries)).encode("utf-8")


def checksums_sha256(manifest: dict, manifest_sha: str) -> str | None:
    """SHA-256 of the ``SHA256SUMS`` a release folder holds (its anchor line), None for a
    release frozen before it existed (no ``checksums`` in its manifest)."""
    if manifest.get("checksums") != CHECKSUMS:
        return None
    return sha256_bytes(render_checksums(manifest.get("outputs") or {}, manifest_sha))


def checksums_problems(folder: Path, manifest: dict, manifest_sha: str) -> list[str]:
    """What is wrong with a release folder's ``SHA256SUMS`` (French; empty when right): it is
    there, byte for byte as the manifest (with ``manifest_sha``) renders it, when the manifest
    names it; absent from a release frozen before it existed."""
    path = folder / CHECKSUMS
    if manifest.get("checksums") != CHECKSUMS:
        return [f"fichier {CHECKSUMS} ajouté (absent du manifeste)"] if path.exists() else []
    if not path.is_file():
        return [f"fichier {CHECKSUMS} absent"]
    expected = render_checksums(manifest.get("outputs") or {}, manifest_sha)
    if path.read_bytes() != expected:
        return [f"fichier {CHECKSUMS} modifié (différent des empreintes du manifeste)"]
    return []


def make_read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o444 if path.is_file() else 0o755)
    folder.chmod(0o755)


def make_writable(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
