"""Completing or undoing what a killed (or failed) freeze left: ``recover_interrupted``,
run by the next ``kpi freeze`` or ``kpi verify``.

A freeze writes its intent first (the journal ``.gel-en-cours.json``, ``anchor``), its
folder under a temporary name renamed into place just before its commit, and its block of
the anchor after the commit: whatever a kill leaves, the next command makes the release
absent (its folder set aside in ``.interrompues/``, never deleted) or complete, never half
(``needs_recovery`` tells cheaply whether there is anything to look at).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.hashing import sha256_file
from dagster_project.release.anchor import (
    ANCHOR,
    JOURNAL,
    SET_ASIDE,
    anchor_block,
    append_anchor,
    chain_head,
    fsync,
    read_anchor,
    read_journal,
)
from dagster_project.release.manifest import (
    MANIFEST,
    checksums_problems,
    checksums_sha256,
    make_writable,
    output_files,
    values_csv_format,
    values_sha256,
)
from dagster_project.release.records import (
    RELEASED_COLUMNS,
    ensure_release_tables,
    release_folder,
)
from dagster_project.release.verify import verify_records
from dagster_project.warehouse.relations import table_exists


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
            make_writable(path)
            shutil.rmtree(path, ignore_errors=True)
            recovery.messages.append(
                f"{path.name} : dossier temporaire d'un gel interrompu, supprimé"
            )
    with contextlib.suppress(FileNotFoundError):
        (releases_dir / f"{JOURNAL}.tmp").unlink()
    journal = read_journal(releases_dir)
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
        fsync(releases_dir)
        recovery.messages.append(
            f"{folder.name} : dossier de publication sans enregistrement dans l'entrepôt "
            f"({why}), mis de côté dans {SET_ASIDE}/{aside.name} ; cette version sera refaite "
            "au prochain gel"
        )
    _recover_anchor(con, releases_dir, pending if pending in known else None, recovery)
    if journal is not None and (pending in known) == (pending in _anchored(releases_dir)):
        (releases_dir / JOURNAL).unlink()
        fsync(releases_dir)
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
        result = verify_records(con, releases_dir)
        if not result.intact:
            recovery.messages.append(
                f"ancre {ANCHOR} non créée : {len(result.problems)} écart(s) dans les "
                "publications existantes (kpi verify)"
            )
            return
        blocks = []
        for release_id, manifest_sha in rows:
            folder = release_folder(releases_dir, release_id, None)
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
            blocks.append(
                anchor_block(
                    release_id,
                    manifest.get("outputs") or {},
                    manifest_sha,
                    checksums_sha256(manifest, manifest_sha),
                )
            )
        append_anchor(releases_dir, blocks)
        recovery.messages.append(
            f"ancre {ANCHOR} créée avec les {len(rows)} publication(s) existante(s), vérifiées "
            f"intègres ; tête de chaîne {chain_head(releases_dir)} (à conserver hors du serveur)"
        )
        return
    if pending is None or (anchor is not None and pending in anchor.releases):
        return
    manifest_sha = dict(rows).get(pending)
    folder = release_folder(releases_dir, pending, None)
    path = folder / MANIFEST
    if not path.is_file() or sha256_file(path) != manifest_sha:
        return  # kpi verify reports it
    manifest = json.loads(path.read_text(encoding="utf-8"))
    block = anchor_block(
        pending,
        manifest.get("outputs") or {},
        manifest_sha,
        checksums_sha256(manifest, manifest_sha),
    )
    append_anchor(releases_dir, [block])
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
    if checksums_problems(folder, manifest, manifest_sha):
        return "SHA256SUMS absent ou différent des empreintes du manifeste"
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
