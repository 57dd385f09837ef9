"""Has anything changed since a release was frozen? (``kpi verify``)

``verify`` re-hashes the release folders and the warehouse rows (``values_sha256``), checks
each manifest against its record and the chain of manifests per year, and checks both
against the anchor beside the releases (``SHA256SUMS``, outside the warehouse file): every
difference, in French. Editing the build database's release tables, even with the folders
and the manifest chain rewritten to match, shows as a difference with the anchor.
``verify_copy`` checks the release tables of the published copy analysts read against the
same anchor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.hashing import sha256_bytes, sha256_file
from dagster_project.release.anchor import ANCHOR, Anchor, chain_head, read_anchor
from dagster_project.release.manifest import (
    MANIFEST,
    checksums_problems,
    output_files,
    render_values_csv,
    values_csv_format,
    values_sha256,
)
from dagster_project.release.records import release_folder, release_rows
from dagster_project.warehouse.relations import table_exists


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


def verify(
    con: duckdb.DuckDBPyConnection, releases_dir: Path, release_id: str | None = None
) -> Verification:
    """Re-hash release folders and warehouse rows, and check both against the anchor beside
    the releases (``SHA256SUMS``, outside the warehouse file): every difference, in French.
    Editing the build database's release tables, even with the folders and the manifest
    chain rewritten to match, shows as a difference with the anchor."""
    result = verify_records(con, releases_dir, release_id)
    _check_anchor(con, releases_dir, release_id, result)
    return result


def verify_records(
    con: duckdb.DuckDBPyConnection, releases_dir: Path, release_id: str | None = None
) -> Verification:
    """The warehouse rows against the folders and manifests (without the anchor)."""
    result = Verification()
    if not table_exists(con, "release.releases"):
        if release_id:
            result.problems.append(f"{release_id} : aucune publication dans l'entrepôt")
        return result
    rows = release_rows(con, release_id)
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
    folder = release_folder(releases_dir, rid, stored_folder)
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
        # the folder's SHA256SUMS: the manifest's outputs and the manifest's recorded hash
        problems.extend(f"{rid} : {p}" for p in checksums_problems(folder, manifest, manifest_sha))
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
            prev_manifest = release_folder(releases_dir, prev_id, None) / MANIFEST
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
        actual_values = sha256_bytes(rendered)
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
        folder = release_folder(releases_dir, rid, None)
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
        rows = release_rows(con, release_id) if table_exists(con, "release.releases") else []
        for rid, year, version, manifest_sha, prev_id, prev_sha, count, _, values_sha in rows:
            where = f"{rid} : {label}"
            digests = anchored.pop(rid, None)
            if digests is None or MANIFEST not in digests:
                result.problems.append(f"{where} : publication absente de l'ancre {ANCHOR}")
                continue
            if manifest_sha != digests[MANIFEST]:
                result.problems.append(
                    f"{where} : l'empreinte de son manifeste n'est pas celle de l'ancre {ANCHOR}"
                )
            manifest_path = release_folder(releases_dir, rid, None) / MANIFEST
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
