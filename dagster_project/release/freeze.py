"""Frozen, versioned releases of a year's indicator values (``RA-<year>-v<n>``).

A release is written once and never changed: rows in ``release.releases``,
``release.release_values`` and ``release.waivers`` of the warehouse, and a folder
``releases/RA-2025-v1/`` holding ``values.csv``, ``values.parquet``, the exports (Excel,
HTML report, data docs, when ``dagster_project.release.exports`` is installed) and
``manifest.json``. The manifest records the SHA-256 of every input delivery, of every
output file of the folder (recursively), of the release's values as stored in the
warehouse (``values_sha256``) and of the previous version's manifest (a chain per year),
plus tool versions, validation results, waived checks and review-status counts.

Release files hold no wall-clock time and no run identifier, so freezing the same inputs
twice, even in another warehouse, gives the same bytes. ``verify`` re-checks all of it
(``kpi verify``); ``diff_releases`` compares two versions (``kpi diff``).

Outside the warehouse file, beside the releases: ``SHA256SUMS``, the anchor (one block per
release, appended at its freeze: the SHA-256 of every file of its folder, manifest last, as
``sha256sum -c`` reads it), against which ``verify`` checks the build database and
``verify_copy`` the published copy's release tables; and ``.gel-en-cours.json``, the
write-ahead intent of the freeze in progress, from which ``recover_interrupted`` completes
or sets aside (``.interrompues/``) what a killed freeze left.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import duckdb

from dagster_project.lib.crash import crash_point
from dagster_project.lib.csv_safety import neutralise
from dagster_project.warehouse.relations import table_exists

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
alter table release.releases add column if not exists values_sha256 varchar;
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
alter table release.release_values add column if not exists review_status varchar;
alter table release.release_values add column if not exists review_comment varchar;
alter table release.release_values add column if not exists plausibility_note varchar;
create table if not exists release.waivers (
    release_id varchar not null,
    check_name varchar not null,
    asset varchar,
    description varchar,
    justification varchar not null,
    recorded_at timestamp not null default current_timestamp
);
create or replace view release.latest_values as
select v.*, r.version, r.created_at as frozen_at
from release.release_values as v
join release.releases as r on r.release_id = v.release_id
where r.version = (select max(r2.version) from release.releases as r2 where r2.year = r.year);
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
REVIEW_COLUMNS = ["review_status", "review_comment"]
RELEASED_COLUMNS = VALUE_COLUMNS + REVIEW_COLUMNS
# Total order of a release's rows: the CSV rendering (and so values_sha256) is deterministic.
VALUES_ORDER = ", ".join(f"{c} nulls first" for c in RELEASED_COLUMNS)
NOT_REVIEWED = "non revu"
MANIFEST = "manifest.json"
# How values.csv renders its rows (recorded as ``values_csv_format`` in the manifest of every
# release frozen since version 2; absent: 1). 1: text as it is; 2: a text cell that a
# spreadsheet would take for a formula (« =… », « +… », « -… », « @… ») has a « ' » before it
# (``csv_safety``; numbers are never touched, and values.parquet keeps the text as it is). A
# release is always re-rendered the way it was frozen, so a release frozen before 2 verifies.
VALUES_CSV_FORMAT = 2
# Beside the releases, outside the warehouse file: the anchor every release is checked
# against (`sha256sum -c`), the write-ahead intent of the freeze in progress, and where a
# folder left by an interrupted freeze is set aside when it cannot be completed.
ANCHOR = "SHA256SUMS"
JOURNAL = ".gel-en-cours.json"
SET_ASIDE = ".interrompues"
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
    """The freeze cannot happen; the message (French) says why (``summary``: what the freeze
    would have shown, when it got that far)."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary


@dataclass
class Release:
    release_id: str
    folder: Path
    value_count: int
    manifest_sha256: str
    values_sha256: str = ""
    waivers: list[dict] = field(default_factory=list)
    summary: object = None  # validation.plausibility.FreezeSummary
    recovered: list[str] = field(default_factory=list)  # what an interrupted freeze left
    warnings: list[str] = field(default_factory=list)


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
        if table_exists(con, table):
            column = "checked_at" if table.endswith("check_results") else "recorded_at"
            parts.append(f"select run_id, max({column}) as last_at from {table} group by run_id")
    if not parts:
        return None
    row = con.execute(
        f"select run_id from ({' union all '.join(parts)}) order by last_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def _column_exists(con: duckdb.DuckDBPyConnection, qualified: str, column: str) -> bool:
    schema, table = qualified.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            [schema, table, column],
        ).fetchone()[0]
    )


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed in the run."""
    if run_id is None:
        return []
    failures = []
    if table_exists(con, "audit.check_results"):
        for name, asset, description in con.execute(
            "select check_name, asset, description_fr from audit.check_results "
            "where run_id = ? and blocking and not passed order by check_name",
            [run_id],
        ).fetchall():
            failures.append({"check": name, "asset": asset, "description": description})
    if table_exists(con, "audit.dbt_results"):
        for unique_id, status, message in con.execute(
            "select unique_id, status, message from audit.dbt_results "
            "where run_id = ? and status in ('fail', 'error') order by unique_id",
            [run_id],
        ).fetchall():
            failures.append(
                {"check": unique_id, "asset": "dbt", "description": f"{status}: {message}"}
            )
    return failures


def _waiver_matches(name: str, failure: dict) -> bool:
    """``--waive`` names a check: its full name, or the short name of a dbt test."""
    check = failure["check"]
    if name == check:
        return True
    parts = check.split(".")
    return failure["asset"] == "dbt" and len(parts) >= 3 and name == parts[2]


def apply_waivers(failures: list[dict], waivers: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Split failures into (still blocking, waived); refuse waivers that are unusable."""
    problems = []
    for name, justification in sorted(waivers.items()):
        if not (justification or "").strip():
            problems.append(f"  - {name} : une levée exige une justification écrite")
        if not any(_waiver_matches(name, f) for f in failures):
            problems.append(
                f"  - {name} : ce contrôle n'est pas en échec bloquant lors de la dernière "
                "exécution, il n'y a rien à lever"
            )
    if problems:
        raise FreezeRefused("levée(s) de contrôle refusée(s) :\n" + "\n".join(problems))
    remaining, waived = [], []
    for failure in failures:
        name = next((n for n in sorted(waivers) if _waiver_matches(n, failure)), None)
        if name is None:
            remaining.append(failure)
        else:
            waived.append({**failure, "justification": waivers[name].strip()})
    waived.sort(key=lambda w: (w["check"], w["asset"] or ""))
    return remaining, waived


def validation_summary(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict:
    """Check and dbt results of the run, without the run id (it differs between warehouses)."""
    summary: dict = {"checks": [], "dbt": {}}
    if run_id is None:
        return summary
    if table_exists(con, "audit.check_results"):
        summary["checks"] = [
            {"check": n, "asset": a, "passed": bool(p), "blocking": bool(b), "severity": s}
            for n, a, p, b, s in con.execute(
                "select check_name, asset, passed, blocking, severity from audit.check_results "
                "where run_id = ? order by check_name, asset",
                [run_id],
            ).fetchall()
        ]
    if table_exists(con, "audit.dbt_results"):
        summary["dbt"] = dict(
            con.execute(
                "select status, count(*) from audit.dbt_results where run_id = ? group by status order by status",
                [run_id],
            ).fetchall()
        )
    return summary


def _input_deliveries(con: duckdb.DuckDBPyConnection, year: int, release_id: str) -> list[dict]:
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


def _tool_versions() -> dict[str, str]:
    versions = {}
    for tool in TOOLS:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = "absent"
    return versions


def _cell(value) -> object:
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
        c if _column_exists(con, "release.release_values", c) else f"null as {c}"
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
        writer.writerow([_cell(safe(v)) for v in row])
    return buffer.getvalue().encode("utf-8")


def _as_is(value: object) -> object:
    return value


def values_sha256(
    con: duckdb.DuckDBPyConnection, release_id: str, values_format: int = VALUES_CSV_FORMAT
) -> str:
    return hashlib.sha256(render_values_csv(con, release_id, values_format)).hexdigest()


def _insert_values(con: duckdb.DuckDBPyConnection, release_id: str, year: int) -> int:
    """Copy the year's values with their current review status into the release."""
    con.execute(
        f"insert into release.release_values (release_id, {', '.join(RELEASED_COLUMNS)}) "
        f"select ?, {', '.join('f.' + c for c in VALUE_COLUMNS)}, r.status, r.comment "
        "from marts.fct_indicator_values as f "
        "left join review.current_reviews as r on r.year = f.year "
        "and r.indicator_id = f.indicator_id and r.code_insee is not distinct from f.code_insee "
        "where f.year = ?",
        [release_id, year],
    )
    return con.execute(
        "select count(*) from release.release_values where release_id = ?", [release_id]
    ).fetchone()[0]


def _write_values(con: duckdb.DuckDBPyConnection, release_id: str, folder: Path) -> str:
    """values.csv and values.parquet from the warehouse rows; returns values_sha256."""
    rendered = render_values_csv(con, release_id, VALUES_CSV_FORMAT)  # (as the manifest says)
    (folder / "values.csv").write_bytes(rendered)
    parquet = (folder / "values.parquet").as_posix().replace("'", "''")
    quoted = release_id.replace("'", "''")
    con.execute(
        f"copy (select {', '.join(RELEASED_COLUMNS)} from release.release_values "
        f"where release_id = '{quoted}' order by {VALUES_ORDER}) "
        f"to '{parquet}' (format parquet, compression zstd)"
    )
    return hashlib.sha256(rendered).hexdigest()


def _review_counts(con: duckdb.DuckDBPyConnection, release_id: str) -> dict[str, int]:
    from dagster_project.quality.review import STATUSES

    counts = dict.fromkeys([*STATUSES, NOT_REVIEWED], 0)
    for status, n in con.execute(
        "select coalesce(review_status, ?), count(*) from release.release_values "
        "where release_id = ? group by 1",
        [NOT_REVIEWED, release_id],
    ).fetchall():
        counts[status] = n
    return counts


def _write_exports(con: duckdb.DuckDBPyConnection, release_id: str, year: int, folder: Path):
    try:
        from dagster_project.release.exports import write_release_exports
    except ImportError:
        return []
    return write_release_exports(con, release_id, year, folder)


def output_files(folder: Path) -> list[Path]:
    """Every file of a release folder (recursively), manifest excluded, in a stable order."""
    return sorted(
        (
            p
            for p in folder.rglob("*")
            if p.is_file() and p.relative_to(folder).as_posix() != MANIFEST
        ),
        key=lambda p: p.relative_to(folder).as_posix(),
    )


def _make_read_only(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o444 if path.is_file() else 0o755)
    folder.chmod(0o755)


def prepare_freeze(
    con: duckdb.DuckDBPyConnection, year: int, *, waivers: dict[str, str] | None = None
):
    """Everything ``kpi freeze`` checks and shows before it writes: (summary, waived checks,
    run id). Raises ``FreezeRefused`` (French) when a value of the year is reviewed as
    ``anomalie``, when a blocking check of the last run failed and was not waived with a
    written justification, or when an implausible value is not qualified
    (``validation.plausibility``)."""
    from dagster_project.quality.plausibility import freeze_summary
    from dagster_project.quality.review import anomalies, ensure_review_tables

    ensure_release_tables(con)
    ensure_review_tables(con)
    if not table_exists(con, "marts.fct_indicator_values"):
        raise FreezeRefused("aucune valeur à figer : lancez d'abord `kpi run`")
    flagged = anomalies(con, year)
    if flagged:
        listed = "\n".join(
            f"  - {a['indicator_id']} ({a['code_insee'] or 'agglomération'}) : "
            f"{a['comment'] or 'sans commentaire'} — {a['reviewer']}"
            for a in flagged[:20]
        )
        more = f"\n  … et {len(flagged) - 20} autre(s)" if len(flagged) > 20 else ""
        raise FreezeRefused(
            f"gel refusé : {len(flagged)} valeur(s) de {year} en statut « anomalie » :\n"
            f"{listed}{more}\nCorrigez-les puis relancez `kpi run`, ou changez leur statut "
            "(`kpi review set ...`)."
        )
    run_id = latest_run_id(con)
    failures, waived = apply_waivers(blocking_failures(con, run_id), waivers or {})
    if failures:
        listed = "\n".join(
            f"  - {f['check']} ({f['asset']}) : {f['description']}" for f in failures[:20]
        )
        raise FreezeRefused(
            f"gel refusé : {len(failures)} contrôle(s) bloquant(s) en échec lors de la dernière "
            f"exécution ({run_id}) :\n{listed}\n"
            'Un contrôle ne se lève qu\'avec une justification écrite : --waive NOM --justification "..."'
        )
    summary = freeze_summary(con, year, run_id)
    if summary.unqualified:
        raise FreezeRefused(summary.refusal(), summary=summary)
    return summary, waived, run_id


def freeze(
    con: duckdb.DuckDBPyConnection,
    year: int,
    releases_dir: Path,
    *,
    reason: str | None = None,
    waivers: dict[str, str] | None = None,
    summary=None,
) -> Release:
    """Freeze the year's values into the next release version (``prepare_freeze`` first:
    ``summary`` is its result when the caller already has it, and shows it)."""
    if summary is None:
        summary, waived, run_id = prepare_freeze(con, year, waivers=waivers)
    else:
        run_id = latest_run_id(con)
        _failures, waived = apply_waivers(blocking_failures(con, run_id), waivers or {})
    # what a killed freeze left is completed or set aside first (it may be this year's)
    recovered = recover_interrupted(con, releases_dir).messages
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
    # The write-ahead intent: which release is being written, and what the folder alone
    # does not say (run, notes, time). Whatever a kill leaves, the next freeze or verify
    # reads it (``recover_interrupted``): absent or complete, never half.
    journal = {
        "release_id": release_id,
        "year": year,
        "version": version,
        "reason": reason,
        "run_id": run_id,
        "previous_release_id": previous[0] if previous else None,
        "previous_manifest_sha256": previous[2] if previous else None,
        "started_at": dt.datetime.now().isoformat(timespec="microseconds"),
        "pid": os.getpid(),
        "plausibility_notes": [[f.indicator_id, f.code_insee, f.note] for f in summary.flags],
    }
    _write_journal(releases_dir, journal)
    crash_point("freeze:journal")
    staging = Path(tempfile.mkdtemp(prefix=f".{release_id}-", dir=releases_dir))
    renamed = committed = False
    try:
        con.execute("begin transaction")
        try:
            count = _insert_values(con, release_id, year)
            if count == 0:
                raise FreezeRefused(f"aucune valeur d'indicateur pour {year} : rien à figer")
            values_digest = _write_values(con, release_id, staging)
            crash_point("freeze:values")
            con.execute(
                "insert into release.releases (release_id, year, version, reason, run_id, "
                "value_count, manifest_sha256, previous_release_id, previous_manifest_sha256, "
                "folder, values_sha256) values (?, ?, ?, ?, ?, ?, '', ?, ?, ?, ?)",
                [
                    release_id,
                    year,
                    version,
                    reason,
                    run_id,
                    count,
                    previous[0] if previous else None,
                    previous[2] if previous else None,
                    str(folder),
                    values_digest,
                ],
            )
            for w in waived:
                con.execute(
                    "insert into release.waivers (release_id, check_name, asset, description, "
                    "justification) values (?, ?, ?, ?, ?)",
                    [release_id, w["check"], w["asset"], w["description"], w["justification"]],
                )
            for flag in summary.flags:  # qualified (the others refused the freeze)
                con.execute(
                    "update release.release_values set plausibility_note = ? where "
                    "release_id = ? and indicator_id = ? and code_insee is not distinct from ?",
                    [flag.note, release_id, flag.indicator_id, flag.code_insee],
                )
            _write_exports(con, release_id, year, staging)
            manifest = {
                "release_id": release_id,
                "year": year,
                "version": version,
                "reason": reason,
                "previous_release_id": previous[0] if previous else None,
                "previous_manifest_sha256": previous[2] if previous else None,
                "value_count": count,
                "values_sha256": values_digest,
                **({"values_csv_format": VALUES_CSV_FORMAT} if VALUES_CSV_FORMAT > 1 else {}),
                "inputs": _input_deliveries(con, year, release_id),
                "outputs": {
                    p.relative_to(staging).as_posix(): sha256_file(p) for p in output_files(staging)
                },
                "review": _review_counts(con, release_id),
                "waivers": [
                    {k: w[k] for k in ("check", "asset", "description", "justification")}
                    for w in waived
                ],
                "tools": _tool_versions(),
                "validation": validation_summary(con, run_id),
                "plausibility": summary.manifest(),
            }
            manifest_path = staging / MANIFEST
            manifest_path.write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                encoding="utf-8",
            )
            manifest_sha = sha256_file(manifest_path)
            con.execute(
                "update release.releases set manifest_sha256 = ? where release_id = ?",
                [manifest_sha, release_id],
            )
            _make_read_only(staging)
            _fsync_tree(staging)
            _write_journal(
                releases_dir,
                {**journal, "manifest_sha256": manifest_sha, "values_sha256": values_digest},
            )
            crash_point("freeze:manifest")
            os.replace(staging, folder)
            renamed = True
            _fsync(releases_dir)
            crash_point("freeze:renamed")
            con.execute("commit")
            committed = True
        except BaseException:
            if not committed:  # a failed commit (disk full) too: never a folder without record
                with contextlib.suppress(duckdb.Error):
                    con.execute("rollback")
                if renamed:
                    with contextlib.suppress(OSError):
                        os.replace(folder, staging)
                if not folder.exists():  # nothing of this freeze is left in place
                    with contextlib.suppress(OSError):
                        (releases_dir / JOURNAL).unlink()
            raise
    finally:
        if staging.exists():
            _make_writable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    crash_point("freeze:committed")
    warnings = []
    try:
        _append_anchor(releases_dir, [_anchor_block(release_id, manifest["outputs"], manifest_sha)])
        crash_point("freeze:anchored")
        (releases_dir / JOURNAL).unlink()
        _fsync(releases_dir)
    except OSError as exc:  # the release is committed; the next freeze or verify anchors it
        warnings.append(
            f"{release_id} figée, mais l'ancre {ANCHOR} n'a pas pu être écrite ({exc}) : elle "
            "le sera par la prochaine commande kpi freeze ou kpi verify"
        )
    return Release(
        release_id,
        folder,
        count,
        manifest_sha,
        values_digest,
        waived,
        summary,
        recovered=recovered,
        warnings=warnings,
    )


def _make_writable(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)


# --------------------------------------------------------------------------- kills, anchor


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(folder: Path) -> None:
    """Every file and folder of a release on disk before its rename makes it visible."""
    for path in folder.rglob("*"):
        _fsync(path)
    _fsync(folder)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a small file whole or not at all (temporary file, fsync, rename, fsync)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.chmod(mode)
    os.replace(tmp, path)
    _fsync(path.parent)


def _write_journal(releases_dir: Path, entry: dict) -> None:
    text = json.dumps(entry, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _write_atomic(releases_dir / JOURNAL, text.encode("utf-8"))


def _read_journal(releases_dir: Path) -> dict | None:
    try:
        entry = json.loads((releases_dir / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) else {}


@dataclass
class Anchor:
    """``releases/SHA256SUMS``: for each release, in the order they were frozen, the SHA-256
    of every file of its folder, its manifest last, in the format of ``sha256sum``."""

    releases: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {path: sha}
    problems: list[str] = field(default_factory=list)

    def manifest(self, release_id: str) -> str | None:
        return self.releases.get(release_id, {}).get(MANIFEST)


def read_anchor(releases_dir: Path) -> Anchor | None:
    """The anchor beside the releases, None when there is none."""
    path = releases_dir / ANCHOR
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return Anchor(problems=[f"ancre {ANCHOR} illisible"])
    anchor = Anchor()
    for number, line in enumerate(lines, start=1):
        digest, sep, name = line.partition("  ")
        release_id, slash, relative = name.partition("/")
        if (
            not sep
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
            or not release_id.startswith("RA-")
            or not slash
            or not relative
        ):
            anchor.problems.append(f"ancre {ANCHOR} : ligne {number} illisible")
            continue
        anchor.releases.setdefault(release_id, {})[relative] = digest
    return anchor


def chain_head(releases_dir: Path) -> str | None:
    """SHA-256 of the anchor file (``sha256sum releases/SHA256SUMS``): kept away from the
    server, it shows later that the anchor was only ever appended to."""
    path = releases_dir / ANCHOR
    return sha256_file(path) if path.is_file() else None


def _anchor_block(release_id: str, outputs: dict[str, str], manifest_sha: str) -> str:
    names = sorted(outputs)
    for name in names:
        if "\n" in name or "\\" in name:  # sha256sum would escape it: never in a release
            raise ValueError(f"nom de fichier impossible à inscrire dans l'ancre : {name!r}")
    lines = [f"{outputs[name]}  {release_id}/{name}" for name in names]
    lines.append(f"{manifest_sha}  {release_id}/{MANIFEST}")
    return "".join(line + "\n" for line in lines)


def _append_anchor(releases_dir: Path, blocks: list[str]) -> None:
    """Append whole blocks to the anchor, atomically (a copy with the new lines replaces
    it): what was there stays byte for byte, so an earlier chain head still matches its
    beginning."""
    path = releases_dir / ANCHOR
    before = path.read_bytes() if path.exists() else b""
    _write_atomic(path, before + "".join(blocks).encode("utf-8"), mode=0o444)


@dataclass
class Recovery:
    """What ``recover_interrupted`` did, in French (``completed``: releases recorded from
    their folder, so the published copy needs a new publication)."""

    messages: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)


def needs_recovery(releases_dir: Path) -> bool:
    """Whether a killed freeze may have left something (cheap: files only)."""
    if not releases_dir.is_dir():
        return False
    if (releases_dir / JOURNAL).exists() or any(releases_dir.glob(".RA-*")):
        return True
    folders = {p.name for p in releases_dir.iterdir() if p.is_dir() and p.name.startswith("RA-")}
    anchor = read_anchor(releases_dir)
    return bool(folders - set(anchor.releases if anchor else ()))


def recover_interrupted(con: duckdb.DuckDBPyConnection, releases_dir: Path) -> Recovery:
    """Complete or undo what a killed (or failed) freeze left; run with the build database's
    *write* connection, so no other freeze is running (one writer at a time, and ``kpi
    freeze`` holds its connection from start to end): whatever is found is not in progress.

    * ``.RA-…-*`` staging folders are deleted;
    * a ``RA-…`` folder without its ``release.releases`` row is completed when the journal
      (``.gel-en-cours.json``) names it with the hash of its manifest, and its files, values
      and chain verify: its rows are inserted from ``values.parquet`` and the manifest (the
      values re-rendered must give the manifest's ``values_sha256``); otherwise it is moved
      to ``releases/.interrompues/`` (never deleted) and the next freeze makes that version
      again;
    * the journal's release, committed but not yet in the anchor, is appended to it; a
      warehouse frozen before the anchor existed gets one, from its releases when they all
      verify;
    * the journal is removed once its release is absent or complete.
    """
    recovery = Recovery()
    if not releases_dir.is_dir():
        return recovery
    for path in sorted(releases_dir.glob(".RA-*")):
        if path.is_dir():
            _make_writable(path)
            shutil.rmtree(path, ignore_errors=True)
            recovery.messages.append(
                f"{path.name} : dossier temporaire d'un gel interrompu, supprimé"
            )
    with contextlib.suppress(FileNotFoundError):
        (releases_dir / f"{JOURNAL}.tmp").unlink()
    journal = _read_journal(releases_dir)
    pending = (journal or {}).get("release_id")
    if table_exists(con, "release.releases"):
        known = {r[0] for r in con.execute("select release_id from release.releases").fetchall()}
    else:
        known = set()
    for folder in sorted(releases_dir.iterdir(), key=lambda p: p.name):
        if not folder.is_dir() or not folder.name.startswith("RA-") or folder.name in known:
            continue
        if pending == folder.name and journal.get("manifest_sha256"):
            why = _complete(con, folder, journal)
            if why is None:
                known.add(folder.name)
                recovery.completed.append(folder.name)
                recovery.messages.append(
                    f"{folder.name} : gel interrompu après l'écriture de son dossier, "
                    "enregistrement complété dans l'entrepôt depuis son manifeste et ses "
                    "valeurs (vérifiés)"
                )
                continue
        else:
            why = "aucun gel interrompu ne l'a écrit : pas de journal à son nom"
        aside = releases_dir / SET_ASIDE / f"{folder.name}-{dt.datetime.now():%Y%m%dT%H%M%S%f}"
        aside.parent.mkdir(exist_ok=True)
        os.replace(folder, aside)
        _fsync(releases_dir)
        recovery.messages.append(
            f"{folder.name} : dossier de publication sans enregistrement dans l'entrepôt "
            f"({why}), mis de côté dans {SET_ASIDE}/{aside.name} ; cette version sera refaite "
            "au prochain gel"
        )
    _recover_anchor(con, releases_dir, pending if pending in known else None, recovery)
    if journal is not None and (pending in known) == (pending in _anchored(releases_dir)):
        (releases_dir / JOURNAL).unlink()
        _fsync(releases_dir)
        if pending and pending not in known and not recovery.messages:
            recovery.messages.append(
                f"{pending} : gel interrompu avant que son dossier soit en place ; rien n'en "
                "reste, cette version sera faite au prochain gel"
            )
    return recovery


def _anchored(releases_dir: Path) -> set[str]:
    anchor = read_anchor(releases_dir)
    return set(anchor.releases) if anchor else set()


def _recover_anchor(con, releases_dir: Path, pending: str | None, recovery: Recovery) -> None:
    """The journal's release, committed before the kill but not anchored yet; or the first
    anchor of a warehouse frozen before it existed."""
    if not table_exists(con, "release.releases"):
        return
    rows = con.execute(
        "select release_id, manifest_sha256 from release.releases order by created_at, year, version"
    ).fetchall()
    anchor = read_anchor(releases_dir)
    if anchor is None and any(release_id != pending for release_id, _sha in rows):
        result = _verify_records(con, releases_dir)
        if not result.intact:
            recovery.messages.append(
                f"ancre {ANCHOR} non créée : {len(result.problems)} écart(s) dans les "
                "publications existantes (kpi verify)"
            )
            return
        blocks = []
        for release_id, manifest_sha in rows:
            folder = _release_folder(releases_dir, release_id, None)
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            blocks.append(_anchor_block(release_id, manifest.get("outputs") or {}, manifest_sha))
        _append_anchor(releases_dir, blocks)
        recovery.messages.append(
            f"ancre {ANCHOR} créée avec les {len(rows)} publication(s) existante(s), vérifiées "
            f"intègres ; tête de chaîne {chain_head(releases_dir)} (à conserver hors du serveur)"
        )
        return
    if pending is None or (anchor is not None and pending in anchor.releases):
        return
    manifest_sha = dict(rows).get(pending)
    folder = _release_folder(releases_dir, pending, None)
    path = folder / MANIFEST
    if not path.is_file() or sha256_file(path) != manifest_sha:
        return  # kpi verify reports it
    manifest = json.loads(path.read_text(encoding="utf-8"))
    _append_anchor(
        releases_dir, [_anchor_block(pending, manifest.get("outputs") or {}, manifest_sha)]
    )
    recovery.messages.append(
        f"{pending} : inscrite dans l'ancre {ANCHOR} (le gel a été interrompu juste avant)"
    )


def _complete(con, folder: Path, journal: dict) -> str | None:
    """Record the release a killed freeze renamed into place before its commit, from its
    folder, when everything verifies; returns why not (French), None once recorded."""
    release_id = folder.name
    path = folder / MANIFEST
    if not path.is_file():
        return "manifeste absent"
    manifest_sha = sha256_file(path)
    if manifest_sha != journal.get("manifest_sha256"):
        return "son manifeste n'est pas celui que le gel interrompu avait écrit"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "manifeste illisible"
    for key in ("release_id", "year", "version", "previous_release_id", "previous_manifest_sha256"):
        if manifest.get(key) != journal.get(key):
            return f"« {key} » diffère entre le manifeste et le journal du gel"
    outputs = manifest.get("outputs") or {}
    for name, digest in sorted(outputs.items()):
        if not (folder / name).is_file() or sha256_file(folder / name) != digest:
            return f"fichier {name} absent ou modifié"
    extra = [p for p in output_files(folder) if p.relative_to(folder).as_posix() not in outputs]
    if extra or "values.parquet" not in outputs:
        return "fichiers différents du manifeste"
    ensure_release_tables(con)
    year, version = manifest["year"], manifest["version"]
    latest = con.execute(
        "select release_id, version, manifest_sha256 from release.releases where year = ? "
        "order by version desc limit 1",
        [year],
    ).fetchone()
    expected = (latest[0], latest[2]) if latest else (None, None)
    if version != (latest[1] + 1 if latest else 1) or expected != (
        manifest.get("previous_release_id"),
        manifest.get("previous_manifest_sha256"),
    ):
        return "il ne prolonge pas la dernière version enregistrée de l'année"
    columns = ", ".join(RELEASED_COLUMNS)
    con.execute("begin transaction")
    try:
        con.execute(
            f"insert into release.release_values (release_id, {columns}) "
            f"select ?, {columns} from read_parquet(?)",
            [release_id, str(folder / "values.parquet")],
        )
        for indicator_id, code_insee, note in journal.get("plausibility_notes") or []:
            con.execute(
                "update release.release_values set plausibility_note = ? where "
                "release_id = ? and indicator_id = ? and code_insee is not distinct from ?",
                [note, release_id, indicator_id, code_insee],
            )
        count = con.execute(
            "select count(*) from release.release_values where release_id = ?", [release_id]
        ).fetchone()[0]
        digest = values_sha256(con, release_id, values_csv_format(manifest))
        if count != manifest.get("value_count") or digest != manifest.get("values_sha256"):
            con.execute("rollback")
            return "ses valeurs ne redonnent pas l'empreinte de son manifeste"
        con.execute(
            "insert into release.releases (release_id, year, version, created_at, reason, "
            "run_id, value_count, manifest_sha256, previous_release_id, "
            "previous_manifest_sha256, folder, values_sha256) "
            "values (?, ?, ?, coalesce(?::timestamp, current_timestamp), ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                release_id,
                year,
                version,
                journal.get("started_at"),
                manifest.get("reason"),
                journal.get("run_id"),
                count,
                manifest_sha,
                manifest.get("previous_release_id"),
                manifest.get("previous_manifest_sha256"),
                str(folder),
                digest,
            ],
        )
        for w in manifest.get("waivers") or []:
            con.execute(
                "insert into release.waivers (release_id, check_name, asset, description, "
                "justification) values (?, ?, ?, ?, ?)",
                [release_id, w["check"], w["asset"], w["description"], w["justification"]],
            )
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise
    return None


# --------------------------------------------------------------------------- reading


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
        if _column_exists(con, "release.releases", "values_sha256")
        else None
    )
    return info


# --------------------------------------------------------------------------- diff


@dataclass
class ValueChange:
    change: str  # 'modifiée' | 'ajoutée' | 'retirée'
    indicator_id: str
    code_insee: str | None
    old_value: float | None
    new_value: float | None
    old_unit: str | None
    new_unit: str | None
    label: str | None = None
    commune: str | None = None


def diff_releases(con: duckdb.DuckDBPyConnection, old_id: str, new_id: str) -> list[ValueChange]:
    """Every value changed (value or unit), added or removed between two releases."""
    for release_id in (old_id, new_id):
        if release_info(con, release_id) is None:
            raise KeyError(f"publication inconnue : {release_id}")
    labels = "null"
    if table_exists(con, "marts.dim_indicators"):
        labels = (
            "(select any_value(label_fr) from marts.dim_indicators d "
            "where d.indicator_id = coalesce(n.indicator_id, o.indicator_id))"
        )
    communes = "null"
    if table_exists(con, "marts.dim_communes"):
        communes = (
            "(select any_value(commune_name) from marts.dim_communes c "
            "where c.code_insee = coalesce(n.code_insee, o.code_insee))"
        )
    rows = con.execute(
        f"""
        with o as (select * from release.release_values where release_id = $old),
             n as (select * from release.release_values where release_id = $new)
        select
            case when o.indicator_id is null then 'ajoutée'
                 when n.indicator_id is null then 'retirée'
                 else 'modifiée' end as change,
            coalesce(n.indicator_id, o.indicator_id) as indicator_id,
            coalesce(n.code_insee, o.code_insee) as code_insee,
            o.value, n.value, o.unit, n.unit, {labels}, {communes}
        from o full outer join n
          on n.indicator_id = o.indicator_id and n.code_insee is not distinct from o.code_insee
        where o.indicator_id is null or n.indicator_id is null
           or o.value is distinct from n.value or o.unit is distinct from n.unit
        order by case change when 'modifiée' then 0 when 'ajoutée' then 1 else 2 end,
                 indicator_id, code_insee nulls first
        """,
        {"old": old_id, "new": new_id},
    ).fetchall()
    return [
        ValueChange(
            change=r[0],
            indicator_id=r[1],
            code_insee=r[2],
            old_value=r[3],
            new_value=r[4],
            old_unit=r[5],
            new_unit=r[6],
            label=r[7],
            commune=r[8],
        )
        for r in rows
    ]


def format_number(value: float | None) -> str:
    """French rendering: 1 234,5 (narrow no-break space, decimal comma), all digits kept."""
    if value is None:
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        text = f"{int(value):,}"
    else:
        text = f"{value:,.12g}" if abs(value) < 1e15 else repr(value)
    return text.replace(",", "\u202f").replace(".", ",")


def format_diff(old_id: str, new_id: str, changes: list[ValueChange], reason: str | None) -> str:
    def where(c: ValueChange) -> str:
        if c.code_insee is None:
            return "agglomération"
        return f"{c.commune} ({c.code_insee})" if c.commune else c.code_insee

    def amount(value, unit) -> str:
        return f"{format_number(value)} {unit or ''}".rstrip()

    lines = [f"Différences entre {old_id} et {new_id}"]
    if reason:
        lines.append(f"  motif de {new_id} : {reason}")
    groups = [
        ("modifiée", "Valeurs modifiées"),
        ("ajoutée", "Valeurs ajoutées"),
        ("retirée", "Valeurs retirées"),
    ]
    for key, title in groups:
        selected = [c for c in changes if c.change == key]
        lines.append(f"{title} : {len(selected)}")
        for c in selected:
            head = f"  - {c.indicator_id} — {where(c)}"
            if key == "modifiée":
                lines.append(
                    f"{head} : {amount(c.old_value, c.old_unit)} → {amount(c.new_value, c.new_unit)}"
                )
            elif key == "ajoutée":
                lines.append(f"{head} : {amount(c.new_value, c.new_unit)}")
            else:
                lines.append(f"{head} : {amount(c.old_value, c.old_unit)}")
    if not changes:
        lines.append("Aucune différence : les deux publications portent les mêmes valeurs.")
    return "\n".join(lines)


DIFF_CSV_COLUMNS = [
    "changement",
    "indicateur",
    "libelle",
    "code_insee",
    "commune",
    "ancienne_valeur",
    "nouvelle_valeur",
    "ancienne_unite",
    "nouvelle_unite",
]


def write_diff_csv(changes: list[ValueChange], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(DIFF_CSV_COLUMNS)
        for c in changes:
            text = [
                c.change,
                c.indicator_id,
                c.label or "",
                c.code_insee or "",
                c.commune or ("agglomération" if c.code_insee is None else ""),
            ]
            units = [c.old_unit or "", c.new_unit or ""]
            # text neutralised (csv_safety), the numbers written as numbers
            writer.writerow(
                [*map(neutralise, text), _cell(c.old_value), _cell(c.new_value)]
                + [neutralise(unit) for unit in units]
            )


# --------------------------------------------------------------------------- verify


@dataclass
class Verification:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    anchor: Anchor | None = None  # SHA256SUMS as read by verify
    chain_head: str | None = None
    anchor_bytes: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


def _release_folder(releases_dir: Path, release_id: str, stored: str | None) -> Path:
    folder = releases_dir / release_id
    if not folder.exists() and stored and Path(stored).exists():
        return Path(stored)
    return folder


def verify(
    con: duckdb.DuckDBPyConnection, releases_dir: Path, release_id: str | None = None
) -> Verification:
    """Re-hash release folders and warehouse rows, and check both against the anchor beside
    the releases (``SHA256SUMS``, outside the warehouse file): every difference, in French.
    Editing the build database's release tables, even with the folders and the manifest
    chain rewritten to match, shows as a difference with the anchor."""
    result = _verify_records(con, releases_dir, release_id)
    _check_anchor(con, releases_dir, release_id, result)
    return result


def _verify_records(
    con: duckdb.DuckDBPyConnection, releases_dir: Path, release_id: str | None = None
) -> Verification:
    """The warehouse rows against the folders and manifests (without the anchor)."""
    result = Verification()
    if not table_exists(con, "release.releases"):
        if release_id:
            result.problems.append(f"{release_id} : aucune publication dans l'entrepôt")
        return result
    has_values_sha = _column_exists(con, "release.releases", "values_sha256")
    rows = con.execute(
        "select release_id, year, version, manifest_sha256, previous_release_id, "
        "previous_manifest_sha256, value_count, folder, "
        f"{'values_sha256' if has_values_sha else 'null'} from release.releases "
        + ("where release_id = ? " if release_id else "")
        + "order by year, version",
        [release_id] if release_id else [],
    ).fetchall()
    if release_id and not rows:
        result.problems.append(f"{release_id} : aucune publication de ce nom dans l'entrepôt")
    all_rows = {
        r[0]: r
        for r in con.execute(
            "select release_id, year, version, manifest_sha256 from release.releases"
        ).fetchall()
    }
    for row in rows:
        _verify_one(con, releases_dir, row, all_rows, result)
    if release_id is None and releases_dir.exists():
        for path in sorted(releases_dir.iterdir()):
            if path.is_dir() and path.name.startswith("RA-") and path.name not in all_rows:
                result.problems.append(
                    f"{path.name} : dossier de publication sans enregistrement dans l'entrepôt "
                    "(release.releases)"
                )
    return result


def _verify_one(con, releases_dir: Path, row, all_rows: dict, result: Verification) -> None:
    (
        rid,
        year,
        version,
        manifest_sha,
        prev_id,
        prev_sha,
        value_count,
        stored_folder,
        values_sha,
    ) = row
    result.checked.append(rid)
    problems = result.problems
    folder = _release_folder(releases_dir, rid, stored_folder)
    manifest: dict = {}
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        problems.append(f"{rid} : dossier absent ({folder})")
    elif not manifest_path.is_file():
        problems.append(f"{rid} : manifeste absent ({manifest_path})")
    else:
        actual = sha256_file(manifest_path)
        if actual != manifest_sha:
            problems.append(
                f"{rid} : le manifeste a été modifié (SHA-256 {actual[:12]}…, "
                f"enregistré dans l'entrepôt {manifest_sha[:12]}…)"
            )
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            problems.append(f"{rid} : manifeste illisible (JSON invalide)")
    if manifest:
        outputs = manifest.get("outputs") or {}
        for name, digest in sorted(outputs.items()):
            path = folder / name
            if not path.is_file():
                problems.append(f"{rid} : fichier {name} absent")
            elif sha256_file(path) != digest:
                problems.append(f"{rid} : fichier {name} modifié (SHA-256 différent du manifeste)")
        for path in output_files(folder):
            name = path.relative_to(folder).as_posix()
            if name not in outputs:
                problems.append(f"{rid} : fichier {name} ajouté (absent du manifeste)")
        expected = {
            "release_id": rid,
            "year": year,
            "version": version,
            "value_count": value_count,
            "previous_release_id": prev_id,
            "previous_manifest_sha256": prev_sha,
        }
        for key, value in expected.items():
            if manifest.get(key) != value:
                problems.append(
                    f"{rid} : « {key} » diffère entre le manifeste ({manifest.get(key)!r}) "
                    f"et l'entrepôt ({value!r})"
                )
    # The chain: the previous version exists and its manifest is the one this one points to.
    if version > 1:
        expected_prev = f"RA-{year}-v{version - 1}"
        if prev_id != expected_prev:
            problems.append(
                f"{rid} : chaînage rompu, la version précédente devrait être {expected_prev} "
                f"(enregistré : {prev_id})"
            )
        previous = all_rows.get(prev_id) if prev_id else None
        if previous is None:
            problems.append(f"{rid} : la publication précédente {prev_id} a disparu de l'entrepôt")
        else:
            if previous[3] != prev_sha:
                problems.append(
                    f"{rid} : chaînage rompu, le manifeste de {prev_id} enregistré dans "
                    "l'entrepôt ne correspond plus à l'empreinte retenue lors du gel"
                )
            prev_manifest = _release_folder(releases_dir, prev_id, None) / MANIFEST
            if prev_manifest.is_file() and sha256_file(prev_manifest) != prev_sha:
                problems.append(
                    f"{rid} : chaînage rompu, le manifeste de {prev_id} a changé depuis le gel "
                    f"de {rid}"
                )
    elif prev_id or prev_sha:
        problems.append(f"{rid} : une première version ne doit pas avoir de version précédente")
    # The warehouse rows.
    count = con.execute(
        "select count(*) from release.release_values where release_id = ?", [rid]
    ).fetchone()[0]
    if count != value_count:
        problems.append(
            f"{rid} : {count} valeur(s) dans release.release_values, {value_count} au gel"
        )
    recorded = [s for s in (values_sha, manifest.get("values_sha256")) if s]
    if not recorded:
        result.warnings.append(
            f"{rid} : publication au format antérieur, sans empreinte des valeurs : les lignes "
            "de l'entrepôt ne peuvent pas être re-vérifiées"
        )
    else:
        rendered = render_values_csv(con, rid, values_csv_format(manifest))
        actual_values = hashlib.sha256(rendered).hexdigest()
        if values_sha and actual_values != values_sha:
            problems.append(
                f"{rid} : les valeurs de release.release_values ont été modifiées (empreinte "
                f"{actual_values[:12]}…, {values_sha[:12]}… au gel)"
            )
            problems.extend(_row_differences(rid, folder / "values.csv", rendered, values_sha))
        if manifest.get("values_sha256") and manifest["values_sha256"] != (values_sha or ""):
            problems.append(f"{rid} : « values_sha256 » diffère entre le manifeste et l'entrepôt")
    if manifest and "waivers" in manifest:
        stored = [
            {"check": c, "asset": a, "description": d, "justification": j}
            for c, a, d, j in con.execute(
                "select check_name, asset, description, justification from release.waivers "
                "where release_id = ? order by check_name, asset",
                [rid],
            ).fetchall()
        ]
        if stored != manifest["waivers"]:
            problems.append(
                f"{rid} : les levées de contrôle de release.waivers diffèrent du manifeste"
            )


def _check_anchor(con, releases_dir: Path, release_id: str | None, result: Verification) -> None:
    """Each release of the warehouse against ``SHA256SUMS``: recorded there, with the same
    manifest (in the warehouse and on disk; when the manifest on disk differs, each file is
    compared with the anchor, since the manifest can no longer be trusted), its chain to the
    previous version's anchored manifest; every anchored release is in the warehouse."""
    anchor = read_anchor(releases_dir)
    rows = []
    if table_exists(con, "release.releases"):
        rows = con.execute(
            "select release_id, year, version, manifest_sha256 from release.releases "
            + ("where release_id = ? " if release_id else "")
            + "order by year, version",
            [release_id] if release_id else [],
        ).fetchall()
    if anchor is None:
        if rows:
            result.problems.append(
                f"ancre {ANCHOR} absente du dossier des publications : les publications ne "
                "peuvent pas être vérifiées hors de l'entrepôt"
            )
        return
    result.anchor = anchor
    result.chain_head = chain_head(releases_dir)
    result.anchor_bytes = (releases_dir / ANCHOR).stat().st_size
    result.problems.extend(anchor.problems)
    for rid, year, version, manifest_sha in rows:
        anchored = anchor.releases.get(rid)
        if anchored is None or MANIFEST not in anchored:
            result.problems.append(
                f"{rid} : absente de l'ancre {ANCHOR} (enregistrement de l'entrepôt qu'aucun "
                "gel n'a ancré)"
            )
            continue
        if manifest_sha != anchored[MANIFEST]:
            result.problems.append(
                f"{rid} : l'empreinte du manifeste enregistrée dans l'entrepôt "
                f"({manifest_sha[:12]}…) n'est pas celle de l'ancre {ANCHOR} "
                f"({anchored[MANIFEST][:12]}…)"
            )
        folder = _release_folder(releases_dir, rid, None)
        path = folder / MANIFEST
        if path.is_file() and sha256_file(path) != anchored[MANIFEST]:
            result.problems.append(f"{rid} : le manifeste n'est pas celui de l'ancre {ANCHOR}")
            for name, digest in sorted(anchored.items()):
                if name != MANIFEST and (
                    not (folder / name).is_file() or sha256_file(folder / name) != digest
                ):
                    result.problems.append(f"{rid} : fichier {name} différent de l'ancre {ANCHOR}")
        elif path.is_file() and version > 1:
            try:
                manifest = json.loads(path.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, ValueError):
                continue
            previous = f"RA-{year}-v{version - 1}"
            if manifest.get("previous_manifest_sha256") != anchor.manifest(previous):
                result.problems.append(
                    f"{rid} : chaînage rompu, le manifeste de {previous} dans l'ancre {ANCHOR} "
                    "n'est pas celui retenu lors du gel"
                )
    if release_id is None:
        recorded = {r[0] for r in rows}
        for rid in anchor.releases:
            if rid not in recorded:
                result.problems.append(
                    f"{rid} : dans l'ancre {ANCHOR}, absente de l'entrepôt (release.releases)"
                )


def verify_copy(
    path: Path, releases_dir: Path, result: Verification, release_id: str | None = None
) -> None:
    """The releases as analysts read them: the release tables of the published copy
    (``warehouse.duckdb``) against the anchor and the anchored manifests (each release's
    manifest hash, values re-rendered from ``release.release_values`` to the manifest's
    ``values_sha256``, value count, chain, waivers). A release frozen since the last
    publication is a warning (``kpi publish``), not a difference."""
    if not path.exists():
        return
    label = f"copie publiée ({path.name})"
    anchor = result.anchor if result.anchor is not None else read_anchor(releases_dir)
    anchored = dict(anchor.releases) if anchor else {}
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        result.problems.append(f"{label} : illisible ({type(exc).__name__})")
        return
    try:
        rows = []
        if table_exists(con, "release.releases"):
            has_values_sha = _column_exists(con, "release.releases", "values_sha256")
            rows = con.execute(
                "select release_id, year, version, manifest_sha256, value_count, "
                "previous_release_id, previous_manifest_sha256, "
                f"{'values_sha256' if has_values_sha else 'null'} from release.releases "
                + ("where release_id = ? " if release_id else "")
                + "order by year, version",
                [release_id] if release_id else [],
            ).fetchall()
        for rid, year, version, manifest_sha, count, prev_id, prev_sha, values_sha in rows:
            where = f"{rid} : {label}"
            digests = anchored.pop(rid, None)
            if digests is None or MANIFEST not in digests:
                result.problems.append(f"{where} : publication absente de l'ancre {ANCHOR}")
                continue
            if manifest_sha != digests[MANIFEST]:
                result.problems.append(
                    f"{where} : l'empreinte de son manifeste n'est pas celle de l'ancre {ANCHOR}"
                )
            manifest_path = _release_folder(releases_dir, rid, None) / MANIFEST
            if not manifest_path.is_file() or sha256_file(manifest_path) != digests[MANIFEST]:
                continue  # reported with the release itself
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            recorded = {
                "year": year,
                "version": version,
                "value_count": count,
                "previous_release_id": prev_id,
                "previous_manifest_sha256": prev_sha,
                "values_sha256": values_sha,
            }
            for key, value in recorded.items():
                if manifest.get(key) != value:
                    result.problems.append(
                        f"{where} : « {key} » diffère du manifeste ancré ({value!r} au lieu "
                        f"de {manifest.get(key)!r})"
                    )
            actual = (
                values_sha256(con, rid, values_csv_format(manifest))
                if manifest.get("values_sha256")
                else None
            )
            if actual != manifest.get("values_sha256"):
                result.problems.append(
                    f"{where} : les valeurs de release.release_values ne sont pas celles du "
                    f"gel (empreinte {actual[:12]}…, {str(manifest.get('values_sha256'))[:12]}… "
                    "dans le manifeste ancré)"
                )
            if "waivers" in manifest and table_exists(con, "release.waivers"):
                waivers = [
                    {"check": c, "asset": a, "description": d, "justification": j}
                    for c, a, d, j in con.execute(
                        "select check_name, asset, description, justification from "
                        "release.waivers where release_id = ? order by check_name, asset",
                        [rid],
                    ).fetchall()
                ]
                if waivers != manifest["waivers"]:
                    result.problems.append(
                        f"{where} : les levées de contrôle diffèrent du manifeste ancré"
                    )
    except duckdb.Error as exc:
        result.problems.append(f"{label} : tables des publications illisibles ({exc})")
    finally:
        con.close()
    for rid in anchored if release_id is None else [r for r in anchored if r == release_id]:
        result.warnings.append(f"{rid} : pas encore dans la {label} (republier : kpi publish)")


def _row_differences(rid: str, frozen_csv: Path, rendered: bytes, expected: str) -> list[str]:
    """The rows that differ, when the frozen values.csv is intact (up to 10 of each kind)."""
    if not frozen_csv.is_file() or sha256_file(frozen_csv) != expected:
        return []
    frozen = frozen_csv.read_bytes().decode("utf-8").splitlines()[1:]
    current = rendered.decode("utf-8").splitlines()[1:]
    frozen_set, current_set = set(frozen), set(current)
    lines = []
    gone = [line for line in frozen if line not in current_set]
    new = [line for line in current if line not in frozen_set]
    for title, selected in (
        ("au gel, plus dans l'entrepôt", gone),
        ("dans l'entrepôt, pas au gel", new),
    ):
        for line in selected[:10]:
            lines.append(f"{rid} :   ligne {title} : {line}")
        if len(selected) > 10:
            lines.append(f"{rid} :   … et {len(selected) - 10} autre(s) ligne(s) {title}")
    return lines


def format_verification(result: Verification) -> str:
    lines = []
    for warning in result.warnings:
        lines.append(f"avertissement : {warning}")
    for problem in result.problems:
        lines.append(f"ÉCART : {problem}")
    if not result.checked and not result.problems:
        lines.append("Aucune publication figée (kpi freeze) à vérifier.")
    elif result.intact:
        lines.append(
            f"{len(result.checked)} publication(s) vérifiée(s), intègre(s) : "
            + ", ".join(result.checked)
        )
    else:
        lines.append(
            f"{len(result.problems)} écart(s) sur {len(result.checked)} publication(s) vérifiée(s)"
        )
    if result.chain_head:
        lines.append(
            f"Ancre {ANCHOR} (à côté des publications) : tête de chaîne {result.chain_head} "
            f"({result.anchor_bytes} octets) ; contrôle sans kpi : cd releases && sha256sum "
            f"-c {ANCHOR}"
        )
    return "\n".join(lines)
