"""Frozen, versioned releases of a year's indicator values (``RA-<year>-v<n>``): ``freeze``
(``kpi freeze``).

A release is written once and never changed: rows in ``release.releases``,
``release.release_values`` and ``release.waivers`` of the warehouse (``records``), and a
folder ``releases/RA-2025-v1/`` holding ``values.csv``, ``values.parquet``, the exports
(Excel, HTML report, data docs, when ``dagster_project.release.exports`` is installed),
``manifest.json`` (``manifest``: with the code and tools that wrote them) and, written last,
``SHA256SUMS`` (every other file's SHA-256, for ``sha256sum -c``). Past the gate (``gate.prepare_freeze``) and once what an
interrupted freeze left is completed or set aside (``recovery``), ``freeze`` writes its
intent (the journal), the rows and the folder under a temporary name, renames it into place,
commits, then appends the release to the anchor ``SHA256SUMS`` (``anchor``).

Release files hold no wall-clock time and no run identifier, so freezing the same inputs
twice, even in another warehouse, gives the same bytes (the same code too: its git commit and
digests are in the manifest). ``verify`` re-checks all of it
(``kpi verify``); ``diff_releases`` compares two versions (``kpi diff``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.crash import crash_point
from dagster_project.lib.hashing import sha256_bytes, sha256_file
from dagster_project.lib.progress import progress
from dagster_project.lib.versions import code_version, release_tools
from dagster_project.release.anchor import (
    ANCHOR,
    JOURNAL,
    anchor_block,
    append_anchor,
    fsync,
    fsync_tree,
    write_journal,
)
from dagster_project.release.gate import (
    FreezeRefused,
    apply_waivers,
    blocking_failures,
    latest_run_id,
    prepare_freeze,
    validation_summary,
)
from dagster_project.release.manifest import (
    CHECKSUMS,
    MANIFEST,
    VALUES_CSV_FORMAT,
    checksums_sha256,
    input_deliveries,
    make_read_only,
    make_writable,
    output_files,
    render_checksums,
    render_values_csv,
    review_counts,
)
from dagster_project.release.records import RELEASED_COLUMNS, VALUE_COLUMNS, VALUES_ORDER
from dagster_project.release.recovery import recover_interrupted


@dataclass
class Release:
    release_id: str
    folder: Path
    value_count: int
    manifest_sha256: str
    values_sha256: str = ""
    waivers: list[dict] = field(default_factory=list)
    summary: object = None  # quality.plausibility.FreezeSummary
    recovered: list[str] = field(default_factory=list)  # what an interrupted freeze left
    warnings: list[str] = field(default_factory=list)


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
    return sha256_bytes(rendered)


def _write_exports(con: duckdb.DuckDBPyConnection, release_id: str, year: int, folder: Path):
    try:
        from dagster_project.release.exports import write_release_exports
    except ImportError:
        return []
    return write_release_exports(con, release_id, year, folder)


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
    write_journal(releases_dir, journal)
    crash_point("freeze:journal")
    staging = Path(tempfile.mkdtemp(prefix=f".{release_id}-", dir=releases_dir))
    renamed = committed = False
    try:
        con.execute("begin transaction")
        try:
            progress(f"{release_id} : copie des valeurs de {year} dans release.release_values")
            count = _insert_values(con, release_id, year)
            if count == 0:
                raise FreezeRefused(f"aucune valeur d'indicateur pour {year} : rien à figer")
            progress(f"{release_id} : {count} valeurs, écriture de values.csv et values.parquet")
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
            progress(
                f"{release_id} : exports (classeur Excel, valeurs par commune, rapport HTML, "
                "Data Docs)"
            )
            _write_exports(con, release_id, year, staging)
            progress(f"{release_id} : manifeste (empreintes SHA-256 des fichiers)")
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
                "inputs": input_deliveries(con, year, release_id),
                "outputs": {
                    p.relative_to(staging).as_posix(): sha256_file(p) for p in output_files(staging)
                },
                "review": review_counts(con, release_id),
                "waivers": [
                    {k: w[k] for k in ("check", "asset", "description", "justification")}
                    for w in waived
                ],
                "code": code_version(),  # the git commit, digests of code, contracts, dbt
                "tools": release_tools(),  # every tool that wrote the files, npm included
                "checksums": CHECKSUMS,  # written after the manifest, which cannot hash it
                "validation": validation_summary(con, run_id),
                "plausibility": summary.manifest(),
            }
            manifest_path = staging / MANIFEST
            manifest_path.write_text(
                json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
                encoding="utf-8",
            )
            manifest_sha = sha256_file(manifest_path)
            # last: every other file of the folder, manifest included, for `sha256sum -c`
            (staging / CHECKSUMS).write_bytes(render_checksums(manifest["outputs"], manifest_sha))
            con.execute(
                "update release.releases set manifest_sha256 = ? where release_id = ?",
                [manifest_sha, release_id],
            )
            progress(f"{release_id} : dossier en lecture seule, mise en place, enregistrement")
            make_read_only(staging)
            fsync_tree(staging)
            write_journal(
                releases_dir,
                {**journal, "manifest_sha256": manifest_sha, "values_sha256": values_digest},
            )
            crash_point("freeze:manifest")
            os.replace(staging, folder)
            renamed = True
            fsync(releases_dir)
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
            make_writable(staging)
            shutil.rmtree(staging, ignore_errors=True)
    crash_point("freeze:committed")
    warnings = []
    progress(f"{release_id} : ancre {ANCHOR} (chaîne des manifestes)")
    try:
        block = anchor_block(
            release_id,
            manifest["outputs"],
            manifest_sha,
            checksums_sha256(manifest, manifest_sha),
        )
        append_anchor(releases_dir, [block])
        crash_point("freeze:anchored")
        (releases_dir / JOURNAL).unlink()
        fsync(releases_dir)
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
