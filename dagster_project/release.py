"""Frozen, versioned releases of a year's indicator values (``RA-<year>-v<n>``).

A release is written once and never changed: rows in ``release.releases``,
``release.release_values`` and ``release.waivers`` of the warehouse, and a folder
``releases/RA-2025-v1/`` holding ``values.csv``, ``values.parquet``, the exports (Excel,
HTML report, data docs, when ``dagster_project.exports`` is installed) and
``manifest.json``. The manifest records the SHA-256 of every input delivery, of every
output file of the folder (recursively), of the release's values as stored in the
warehouse (``values_sha256``) and of the previous version's manifest (a chain per year),
plus tool versions, validation results, waived checks and review-status counts.

Release files hold no wall-clock time and no run identifier, so freezing the same inputs
twice, even in another warehouse, gives the same bytes. ``verify`` re-checks all of it
(``kpi verify``); ``diff_releases`` compares two versions (``kpi diff``).
"""

from __future__ import annotations

import csv
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

from dagster_project.relations import table_exists

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


def render_values_csv(con: duckdb.DuckDBPyConnection, release_id: str) -> bytes:
    """The release's rows of ``release.release_values`` as CSV bytes: values.csv exactly.

    Its SHA-256 is the release's ``values_sha256``: re-rendering the warehouse rows later
    and comparing the hash shows whether any row was changed, added or removed.
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
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return buffer.getvalue().encode("utf-8")


def values_sha256(con: duckdb.DuckDBPyConnection, release_id: str) -> str:
    return hashlib.sha256(render_values_csv(con, release_id)).hexdigest()


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
    rendered = render_values_csv(con, release_id)
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
    from dagster_project.review import STATUSES

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
        from dagster_project.exports import write_release_exports
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
    from dagster_project.review import anomalies, ensure_review_tables
    from dagster_project.validation.plausibility import freeze_summary

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
        con.execute("begin transaction")
        try:
            count = _insert_values(con, release_id, year)
            if count == 0:
                raise FreezeRefused(f"aucune valeur d'indicateur pour {year} : rien à figer")
            values_digest = _write_values(con, release_id, staging)
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
            os.replace(staging, folder)
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        if staging.exists():
            _make_writable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    return Release(release_id, folder, count, manifest_sha, values_digest, waived, summary)


def _make_writable(folder: Path) -> None:
    for path in folder.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)


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
            writer.writerow(
                [
                    c.change,
                    c.indicator_id,
                    c.label or "",
                    c.code_insee or "",
                    c.commune or ("agglomération" if c.code_insee is None else ""),
                    _cell(c.old_value),
                    _cell(c.new_value),
                    c.old_unit or "",
                    c.new_unit or "",
                ]
            )


# --------------------------------------------------------------------------- verify


@dataclass
class Verification:
    checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

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
    """Re-hash release folders and warehouse rows; every difference, in French."""
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
        rendered = render_values_csv(con, rid)
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
    return "\n".join(lines)
