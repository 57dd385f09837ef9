"""Releases: freeze, revisions, diff, waivers, tamper evidence (`kpi verify`).

Fast: a small warehouse built by hand (``support.warehouses.build_warehouse``, also used by
test_review.py and test_lineage.py); the exports of the release folder are replaced by a small
fake (``fake_exports``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from support import TESTS_DIR
from support.warehouses import (
    D_DECL_24,
    D_DECL_25,
    D_HR_25,
    D_NET_25,
    YEAR,
    build_warehouse,
    fake_exports,
)

from dagster_project.cli import main
from dagster_project.lib.crash import POINTS as CRASH_POINTS
from dagster_project.lib.hashing import sha256_file
from dagster_project.release import freeze as freeze_module
from dagster_project.release.anchor import ANCHOR, chain_head, read_anchor
from dagster_project.release.diff import diff_releases, format_diff
from dagster_project.release.freeze import freeze
from dagster_project.release.gate import FreezeRefused
from dagster_project.release.manifest import output_files, render_checksums, values_sha256
from dagster_project.release.records import release_for
from dagster_project.release.recovery import needs_recovery, recover_interrupted
from dagster_project.release.verify import format_verification, verify, verify_records


@pytest.fixture(autouse=True)
def _fake_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", fake_exports)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    yield connection
    connection.close()


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def writable(path: Path) -> Path:
    path.chmod(0o644)
    return path


# --------------------------------------------------------------------------- freeze


def test_freeze_hashes_every_file_and_the_values(con, tmp_path):
    release = freeze(con, YEAR, tmp_path / "releases")
    folder = release.folder
    assert release.release_id == "RA-2025-v1" and release.value_count == 5
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    # every file but the manifest and SHA256SUMS (written after it, it hashes the manifest)
    assert set(manifest["outputs"]) == files - {"manifest.json", "SHA256SUMS"}
    assert "rapport/index.html" in manifest["outputs"]  # recursive
    for name, digest in manifest["outputs"].items():
        assert sha256_file(folder / name) == digest
    # values_sha256: the warehouse rows rendered as CSV are values.csv, byte for byte
    assert manifest["values_sha256"] == sha256_file(folder / "values.csv")
    assert values_sha256(con, release.release_id) == manifest["values_sha256"]
    stored = con.execute(
        "select manifest_sha256, values_sha256, value_count from release.releases"
    ).fetchone()
    assert stored == (sha256_file(folder / "manifest.json"), manifest["values_sha256"], 5)
    assert [d["delivery_id"] for d in manifest["inputs"]] == sorted([D_DECL_25, D_HR_25, D_NET_25])
    assert "run_id" not in manifest["validation"]
    assert manifest["review"]["non revu"] == 5 and manifest["waivers"] == []
    assert all(p.stat().st_mode & 0o777 == 0o444 for p in folder.rglob("*") if p.is_file())


def test_same_inputs_give_byte_identical_release_in_another_warehouse(tmp_path):
    folders = []
    for name in ("a", "b"):
        con = duckdb.connect(str(build_warehouse(tmp_path / name / "w.duckdb")))
        folders.append(freeze(con, YEAR, tmp_path / name / "releases").folder)
        con.close()
    assert folder_bytes(folders[0]) == folder_bytes(folders[1])


def test_revision_needs_a_reason_and_never_touches_v1(con, tmp_path):
    releases = tmp_path / "releases"
    v1 = freeze(con, YEAR, releases)
    before = folder_bytes(v1.folder)
    with pytest.raises(FreezeRefused, match="motif"):
        freeze(con, YEAR, releases)
    con.execute(
        "update marts.fct_indicator_values set value = 31.0 where year = 2025 "
        "and indicator_id = 'water_network_length' and code_insee is null"
    )
    con.execute(  # a value citing an earlier campaign's delivery: an input of the release
        "update marts.fct_indicator_values set delivery_ids = delivery_ids || ',' || ? "
        "where year = 2025 and indicator_id = 'declared_budget'",
        [D_DECL_24],
    )
    v2 = freeze(con, YEAR, releases, reason="Correction du linéaire")
    assert v2.release_id == "RA-2025-v2"
    assert folder_bytes(v1.folder) == before
    manifest = json.loads((v2.folder / "manifest.json").read_text(encoding="utf-8"))
    assert D_DECL_24 in {d["delivery_id"] for d in manifest["inputs"]}
    assert manifest["previous_release_id"] == "RA-2025-v1"
    assert manifest["previous_manifest_sha256"] == sha256_file(v1.folder / "manifest.json")
    # both versions stay queryable; the view reads the latest
    assert con.execute(
        "select release_id, value from release.latest_values where indicator_id = "
        "'water_network_length' and code_insee is null"
    ).fetchall() == [("RA-2025-v2", 31.0)]
    assert con.execute(
        "select value from release.release_values where release_id = 'RA-2025-v1' "
        "and indicator_id = 'water_network_length' and code_insee is null"
    ).fetchone() == (30.5,)
    assert release_for(con, YEAR) == "RA-2025-v2"
    assert release_for(con, YEAR, "RA-2025-v1") == "RA-2025-v1"
    assert verify(con, releases).intact


def test_diff_lists_changed_added_and_removed_values(con, tmp_path):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    con.execute(
        "update marts.fct_indicator_values set value = 31.0 where year = 2025 "
        "and indicator_id = 'water_network_length' and code_insee is null"
    )
    con.execute("delete from marts.fct_indicator_values where year = 2025 and code_insee = '62126'")
    con.execute(
        "insert into marts.fct_indicator_values select 'declared_budget', 2025, '62119', 10, "
        "'eur', as_of_date, kind, computation, department, priority, null, source_ids, "
        "delivery_ids from marts.fct_indicator_values where year = 2025 and "
        "indicator_id = 'declared_budget'"
    )
    freeze(con, YEAR, releases, reason="Révision")
    changes = diff_releases(con, "RA-2025-v1", "RA-2025-v2")
    summary = {(c.change, c.indicator_id, c.code_insee, c.old_value, c.new_value) for c in changes}
    assert summary == {
        ("modifiée", "water_network_length", None, 30.5, 31.0),
        ("retirée", "water_network_length", "62126", 10.5, None),
        ("ajoutée", "declared_budget", "62119", None, 10.0),
    }
    text = format_diff("RA-2025-v1", "RA-2025-v2", changes, "Révision")
    assert "30,5 km → 31 km" in text and "Beuvry (62126)" in text
    assert "Valeurs ajoutées : 1" in text and "Valeurs retirées : 1" in text


def test_kpi_diff_and_verify_commands(tmp_path, capsys):
    warehouse = tmp_path / "w.duckdb"
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    common = ["--warehouse", str(warehouse)]
    releases = ["--releases", str(tmp_path / "releases")]
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 0
    con = duckdb.connect(str(tmp_path / ".build" / "w.duckdb"))
    con.execute(
        "update marts.fct_indicator_values set value = 1100 where year = 2025 and indicator_id = 'declared_budget'"
    )
    con.close()
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 3
    assert (
        main(
            [
                "freeze",
                "--year",
                "2025",
                "--reason",
                "Budget rectifié",
                "--no-publish",
                *common,
                *releases,
            ]
        )
        == 0
    )
    capsys.readouterr()
    out_csv = tmp_path / "diff.csv"
    assert main(["diff", "RA-2025-v1", "RA-2025-v2", "--csv", str(out_csv), *common]) == 0
    out = capsys.readouterr().out
    assert "Valeurs modifiées : 1" in out and "1\u202f000 € → 1\u202f100 €" in out
    assert out_csv.read_bytes().startswith(b"\xef\xbb\xbf")  # French Excel: BOM, « ; »
    with out_csv.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert rows == [
        {
            "changement": "modifiée",
            "indicateur": "declared_budget",
            "libelle": "Budget déclaré",
            "code_insee": "",
            "commune": "agglomération",
            "ancienne_valeur": "1000",
            "nouvelle_valeur": "1100",
            "ancienne_unite": "€",
            "nouvelle_unite": "€",
        }
    ]
    assert main(["verify", *common, *releases]) == 0
    assert "intègre" in capsys.readouterr().out
    assert main(["diff", "RA-2025-v1", "RA-2025-v9", *common]) == 1


# --------------------------------------------------------------------------- waivers


def _fail_check(con, name="raw_eau_reseau"):
    con.execute(
        "insert into audit.check_results values ('run-2', '2026-01-21 10:00:00', ?, "
        "'raw/eau_reseau', false, true, 'ERROR', '3 attente(s) non satisfaite(s)', '{}')",
        [name],
    )


def test_failed_blocking_check_refuses_the_freeze_unless_waived_with_justification(con, tmp_path):
    releases = tmp_path / "releases"
    _fail_check(con)
    with pytest.raises(FreezeRefused, match="--waive"):
        freeze(con, YEAR, releases)
    with pytest.raises(FreezeRefused, match="justification"):
        freeze(con, YEAR, releases, waivers={"raw_eau_reseau": "  "})
    with pytest.raises(FreezeRefused, match="rien à lever"):
        freeze(con, YEAR, releases, waivers={"raw_eau_reseau": "ok", "inconnu": "texte"})
    assert not releases.exists() or not any(releases.iterdir())
    text = "Erreur de saisie connue, corrigée à la source en 2026"
    release = freeze(con, YEAR, releases, waivers={"raw_eau_reseau": text})
    manifest = json.loads((release.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["waivers"] == [
        {
            "check": "raw_eau_reseau",
            "asset": "raw/eau_reseau",
            "description": "3 attente(s) non satisfaite(s)",
            "justification": text,
        }
    ]
    assert con.execute(
        "select release_id, check_name, justification from release.waivers"
    ).fetchall() == [("RA-2025-v1", "raw_eau_reseau", text)]
    assert verify(con, releases).intact
    con.execute("update release.waivers set justification = 'autre'")
    assert any("levées" in p for p in verify(con, releases).problems)


def test_waive_options_pair_with_justifications(tmp_path, capsys):
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    con = duckdb.connect(str(tmp_path / ".build" / "w.duckdb"))
    _fail_check(con)
    con.close()
    args = ["freeze", "--year", "2025", "--no-publish", "--warehouse", str(tmp_path / "w.duckdb")]
    args += ["--releases", str(tmp_path / "releases")]
    assert main(args) == 3
    assert "raw_eau_reseau" in capsys.readouterr().err
    assert main([*args, "--waive", "raw_eau_reseau"]) == 1
    assert main([*args, "--waive", "raw_eau_reseau", "--justification", "Connu et documenté"]) == 0
    assert "contrôle levé : raw_eau_reseau" in capsys.readouterr().out


# --------------------------------------------------------------------------- verify


def test_verify_detects_a_modified_output_file(con, tmp_path):
    releases = tmp_path / "releases"
    release = freeze(con, YEAR, releases)
    path = writable(release.folder / "rapport" / "index.html")
    path.write_text("<p>falsifié</p>\n", encoding="utf-8")
    (release.folder / "notes.txt").write_text("ajout", encoding="utf-8")
    result = verify(con, releases)
    assert not result.intact
    assert any("rapport/index.html modifié" in p for p in result.problems)
    assert any("notes.txt ajouté" in p for p in result.problems)
    (release.folder / "values.parquet").chmod(0o644)
    (release.folder / "values.parquet").unlink()
    assert any("values.parquet absent" in p for p in verify(con, releases).problems)


def test_verify_detects_a_modified_warehouse_row(con, tmp_path):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    con.execute(
        "update release.release_values set value = 999 where indicator_id = 'declared_budget'"
    )
    problems = verify(con, releases).problems
    assert any("release.release_values ont été modifiées" in p for p in problems)
    assert any("au gel, plus dans l'entrepôt : declared_budget,2025,,1000.0" in p for p in problems)
    assert any("dans l'entrepôt, pas au gel : declared_budget,2025,,999.0" in p for p in problems)


def test_verify_detects_deleted_rows_and_a_changed_release_record(con, tmp_path):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    con.execute("delete from release.release_values where code_insee = '62126'")
    problems = verify(con, releases).problems
    assert any("4 valeur(s) dans release.release_values, 5 au gel" in p for p in problems)
    con.execute("update release.releases set previous_release_id = 'RA-2024-v1'")
    assert any("première version" in p for p in verify(con, releases).problems)


def test_verify_detects_a_modified_manifest_and_a_broken_chain(con, tmp_path, capsys):
    releases = tmp_path / "releases"
    v1 = freeze(con, YEAR, releases)
    freeze(con, YEAR, releases, reason="Deuxième version")
    manifest = writable(v1.folder / "manifest.json")
    data = json.loads(manifest.read_text(encoding="utf-8"))
    data["value_count"] = 4
    manifest.write_text(json.dumps(data), encoding="utf-8")
    problems = verify(con, releases).problems
    assert any(p.startswith("RA-2025-v1 : le manifeste a été modifié") for p in problems)
    assert any("value_count" in p for p in problems)
    assert any(p.startswith("RA-2025-v2 : chaînage rompu") for p in problems)
    only_v2 = verify(con, releases, "RA-2025-v2")
    assert only_v2.checked == ["RA-2025-v2"] and not only_v2.intact
    # the command: French report, exit 3
    con.close()
    warehouse_args = ["--warehouse", str(tmp_path / "w.duckdb"), "--releases", str(releases)]
    os.makedirs(tmp_path / ".build", exist_ok=True)
    os.replace(tmp_path / "w.duckdb", tmp_path / ".build" / "w.duckdb")
    assert main(["verify", *warehouse_args]) == 3
    out = capsys.readouterr().out
    assert "ÉCART : RA-2025-v1 : le manifeste a été modifié" in out and "écart(s)" in out


def test_verify_reports_a_release_folder_unknown_to_the_warehouse(con, tmp_path):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    (releases / "RA-2025-v7").mkdir()
    assert any(
        "RA-2025-v7 : dossier de publication sans enregistrement" in p
        for p in verify(con, releases).problems
    )


# --------------------------------------------------------------------------- kills, anchor

KILLED_FREEZE = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import duckdb
from dagster_project.release import freeze as freeze_module
from support.warehouses import fake_exports
freeze_module._write_exports = fake_exports
con = duckdb.connect(sys.argv[1])
freeze_module.freeze(con, 2025, Path(sys.argv[2]), reason=sys.argv[4] or None)
"""


def freeze_killed_at(point: str, warehouse: Path, releases: Path, reason: str = "") -> int:
    """``freeze`` in a child process killed (SIGKILL) at ``point`` (dagster_project.lib.crash)."""
    done = subprocess.run(
        [sys.executable, "-c", KILLED_FREEZE, str(warehouse), str(releases)]
        + [str(TESTS_DIR), reason],
        env={**os.environ, "KPI_CRASH_AT": point},
        capture_output=True,
        text=True,
    )
    assert done.returncode == -9, done.stderr  # killed where asked, not failed elsewhere
    return done.returncode


def reopen(warehouse: Path) -> duckdb.DuckDBPyConnection:
    from dagster_project.warehouse.recovery import recover_after_crash

    recover_after_crash(warehouse)  # as every `kpi` command does before opening the build
    return duckdb.connect(str(warehouse))


FREEZE_POINTS = [p for p in CRASH_POINTS if p.startswith("freeze:")]
COMPLETED_AT = {"freeze:renamed", "freeze:committed", "freeze:anchored"}


@pytest.mark.parametrize("point", FREEZE_POINTS)
def test_a_freeze_killed_at_any_point_is_absent_or_complete_on_the_next_command(tmp_path, point):
    warehouse = build_warehouse(tmp_path / "w.duckdb")
    releases = tmp_path / "releases"
    reference = duckdb.connect(str(build_warehouse(tmp_path / "ref" / "w.duckdb")))
    expected = folder_bytes(freeze(reference, YEAR, tmp_path / "ref" / "releases").folder)
    reference.close()

    freeze_killed_at(point, warehouse, releases)
    con = reopen(warehouse)
    try:
        recovery = recover_interrupted(con, releases)
        leftovers = [p.name for p in releases.iterdir() if p.name.startswith(".")]
        assert leftovers == [], leftovers  # no staging folder, no journal
        result = verify(con, releases)
        assert result.intact, result.problems
        if point in COMPLETED_AT:
            assert result.checked == ["RA-2025-v1"]
            assert folder_bytes(releases / "RA-2025-v1") == expected
            assert set(read_anchor(releases).releases) == {"RA-2025-v1"}
            if point == "freeze:renamed":
                assert recovery.completed == ["RA-2025-v1"]
                assert any("enregistrement complété" in m for m in recovery.messages)
            if point in ("freeze:renamed", "freeze:committed"):
                assert any("inscrite dans l'ancre SHA256SUMS" in m for m in recovery.messages)
            with pytest.raises(FreezeRefused, match="existe déjà"):
                freeze(con, YEAR, releases)
        else:  # absent: the next freeze makes it, as if nothing had happened
            assert result.checked == [] and not (releases / "RA-2025-v1").exists()
            assert freeze(con, YEAR, releases).release_id == "RA-2025-v1"
            assert folder_bytes(releases / "RA-2025-v1") == expected
        assert verify(con, releases).intact
    finally:
        con.close()


def test_a_killed_revision_completed_from_its_folder_keeps_its_chain_and_notes(tmp_path):
    warehouse = build_warehouse(tmp_path / "w.duckdb")
    releases = tmp_path / "releases"
    con = duckdb.connect(str(warehouse))
    v1 = freeze(con, YEAR, releases)
    con.execute(
        "update marts.fct_indicator_values set value = 1100 where year = 2025 "
        "and indicator_id = 'declared_budget'"
    )
    _fail_check(con)
    con.close()
    # v2 with a waiver, killed between its folder's rename and its commit
    code = KILLED_FREEZE.replace(
        "reason=sys.argv[4] or None)",
        "reason=sys.argv[4], waivers={'raw_eau_reseau': 'Doublons connus'})",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(warehouse),
            str(releases),
            str(TESTS_DIR),
            "Budget rectifié",
        ],
        env={**os.environ, "KPI_CRASH_AT": "freeze:renamed"},
        capture_output=True,
        text=True,
    )
    assert done.returncode == -9, done.stderr
    con = reopen(warehouse)
    try:
        assert needs_recovery(releases)
        assert recover_interrupted(con, releases).completed == ["RA-2025-v2"]
        assert not needs_recovery(releases)
        row = con.execute(
            "select reason, run_id, previous_release_id, previous_manifest_sha256, value_count "
            "from release.releases where release_id = 'RA-2025-v2'"
        ).fetchone()
        assert row == ("Budget rectifié", "run-2", "RA-2025-v1", v1.manifest_sha256, 5)
        assert con.execute("select check_name, justification from release.waivers").fetchall() == [
            ("raw_eau_reseau", "Doublons connus")
        ]
        assert verify(con, releases).intact
        assert list(read_anchor(releases).releases) == ["RA-2025-v1", "RA-2025-v2"]
    finally:
        con.close()


def test_kpi_verify_and_kpi_freeze_first_recover_a_killed_freeze(tmp_path, capsys):
    build = build_warehouse(tmp_path / ".build" / "w.duckdb")
    releases = tmp_path / "releases"
    args = ["--warehouse", str(tmp_path / "w.duckdb"), "--releases", str(releases)]
    freeze_killed_at("freeze:values", build, releases)
    assert main(["freeze", "--year", "2025", "--dry-run", *args]) == 0
    assert "un gel interrompu a laissé des fichiers" in capsys.readouterr().out
    assert any(p.name.startswith(".RA-2025-v1-") for p in releases.iterdir())  # dry: untouched
    assert main(["freeze", "--year", "2025", "--no-publish", *args]) == 0
    out = capsys.readouterr().out
    assert "Reprise d'un gel interrompu : .RA-2025-v1-" in out and "supprimé" in out
    assert "Publication RA-2025-v1 figée" in out
    freeze_killed_at("freeze:renamed", build, releases, reason="Deuxième version")
    assert main(["verify", *args]) == 0
    out = capsys.readouterr().out
    assert (
        "Reprise d'un gel interrompu : RA-2025-v2 : gel interrompu après l'écriture de son "
        "dossier, enregistrement complété" in out
    )
    assert "2 publication(s) vérifiée(s), intègre(s) : RA-2025-v1, RA-2025-v2" in out
    assert sorted(p.name for p in releases.iterdir()) == ["RA-2025-v1", "RA-2025-v2", "SHA256SUMS"]
    # a freeze that completes a killed one, then is refused (no reason): it still publishes
    freeze_killed_at("freeze:renamed", build, releases, reason="Troisième version")
    assert main(["freeze", "--year", "2025", *args]) == 3
    captured = capsys.readouterr()
    assert "RA-2025-v3 : gel interrompu après l'écriture de son dossier" in captured.out
    assert "RA-2025-v3 existe déjà" in captured.err
    published = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        assert published.execute(
            "select list(release_id order by release_id) from release.releases"
        ).fetchone() == (["RA-2025-v1", "RA-2025-v2", "RA-2025-v3"],)
    finally:
        published.close()


class FullDisk:
    """A connection whose commit fails, as on a full disk."""

    def __init__(self, con):
        self.con = con

    def execute(self, sql, *args):
        if sql == "commit":
            raise duckdb.IOException("Could not write file: No space left on device")
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


def test_a_failed_commit_leaves_no_folder_and_the_next_freeze_succeeds(con, tmp_path):
    releases = tmp_path / "releases"
    with pytest.raises(duckdb.IOException, match="No space"):
        freeze(FullDisk(con), YEAR, releases)
    assert list(releases.iterdir()) == []  # no folder, no staging, no journal, no anchor
    assert con.execute("select count(*) from release.releases").fetchone() == (0,)
    assert verify(con, releases).intact
    assert freeze(con, YEAR, releases).release_id == "RA-2025-v1"
    assert verify(con, releases).intact


def test_leftovers_without_a_journal_are_removed_or_set_aside_with_a_french_message(con, tmp_path):
    releases = tmp_path / "releases"
    v1 = freeze(con, YEAR, releases)
    # what killed freezes of an earlier version left: a staging folder, and a folder renamed
    # into place without its record and without a journal (the issue's « existe déjà »)
    staging = releases / ".RA-2025-v2-k1ll3d"
    (staging / "rapport").mkdir(parents=True)
    (staging / "values.csv").write_text("partiel", encoding="utf-8")
    orphan = releases / "RA-2025-v2"
    orphan.mkdir()
    (orphan / "values.csv").write_bytes((v1.folder / "values.csv").read_bytes())
    assert any("sans enregistrement" in p for p in verify(con, releases).problems)
    assert needs_recovery(releases)
    recovery = recover_interrupted(con, releases)
    assert recovery.completed == []
    assert recovery.messages[0] == (
        ".RA-2025-v2-k1ll3d : dossier temporaire d'un gel interrompu, supprimé"
    )
    assert recovery.messages[1].startswith(
        "RA-2025-v2 : dossier de publication sans enregistrement dans l'entrepôt (aucun gel "
        "interrompu ne l'a écrit : pas de journal à son nom), mis de côté dans .interrompues/"
        "RA-2025-v2-"
    )
    assert not staging.exists() and not orphan.exists()
    (aside,) = (releases / ".interrompues").iterdir()
    assert (aside / "values.csv").exists()  # set aside, never deleted
    assert verify(con, releases).intact
    v2 = freeze(con, YEAR, releases, reason="Deuxième version")
    assert v2.release_id == "RA-2025-v2" and verify(con, releases).intact


def test_the_anchor_is_checkable_with_sha256sum_and_appended_at_each_freeze(con, tmp_path):
    releases = tmp_path / "releases"
    v1 = freeze(con, YEAR, releases)
    head_v1 = chain_head(releases)
    anchor_v1 = (releases / ANCHOR).read_bytes()
    v2 = freeze(con, YEAR, releases, reason="Deuxième version")
    text = (releases / ANCHOR).read_text(encoding="utf-8")
    assert text.encode().startswith(anchor_v1)  # appended, never rewritten
    assert hashlib.sha256(anchor_v1).hexdigest() == head_v1
    assert text.splitlines()[-1] == f"{v2.manifest_sha256}  RA-2025-v2/manifest.json"
    assert f"{v1.manifest_sha256}  RA-2025-v1/manifest.json" in text.splitlines()
    assert {name for name in read_anchor(releases).releases["RA-2025-v1"]} == set(
        folder_bytes(v1.folder)
    )
    assert (releases / ANCHOR).stat().st_mode & 0o777 == 0o444
    if shutil.which("sha256sum"):
        checked = subprocess.run(
            ["sha256sum", "-c", "--strict", ANCHOR], cwd=releases, capture_output=True
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    result = verify(con, releases)
    assert result.intact and result.chain_head == chain_head(releases)
    assert f"tête de chaîne {result.chain_head}" in format_verification(result)


def test_a_warehouse_frozen_before_the_anchor_gets_one_when_its_releases_verify(con, tmp_path):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    freeze(con, YEAR, releases, reason="Deuxième version")
    expected = (releases / ANCHOR).read_bytes()
    (releases / ANCHOR).unlink()
    assert verify(con, releases).problems == [
        "ancre SHA256SUMS absente du dossier des publications : les publications ne peuvent "
        "pas être vérifiées hors de l'entrepôt"
    ]
    assert needs_recovery(releases)
    (message,) = recover_interrupted(con, releases).messages
    assert message.startswith("ancre SHA256SUMS créée avec les 2 publication(s) existante(s)")
    assert (releases / ANCHOR).read_bytes() == expected
    assert verify(con, releases).intact
    # not from releases that do not verify
    (releases / ANCHOR).unlink()
    con.execute(
        "update release.release_values set value = 1 where indicator_id = 'declared_budget'"
    )
    (message,) = recover_interrupted(con, releases).messages
    assert message.startswith("ancre SHA256SUMS non créée")
    assert not (releases / ANCHOR).exists()


def _forge(con, releases: Path, release_id: str, values_sql: str) -> None:
    """What someone who can write the build database and the release folders does to make a
    changed release verify: values changed, values.csv/.parquet, manifest and the warehouse
    record rewritten to match, and the next version's chain re-pointed at the new manifest."""
    con.execute(values_sql)
    folder = releases / release_id
    for path in folder.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    digest = freeze_module._write_values(con, release_id, folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["values_sha256"] = digest
    manifest["outputs"] = {
        p.relative_to(folder).as_posix(): sha256_file(p) for p in output_files(folder)
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    manifest_sha = sha256_file(folder / "manifest.json")
    (folder / "SHA256SUMS").write_bytes(render_checksums(manifest["outputs"], manifest_sha))
    con.execute(
        "update release.releases set values_sha256 = ?, manifest_sha256 = ? where release_id = ?",
        [digest, manifest_sha, release_id],
    )
    year, version = manifest["year"], manifest["version"]
    following = releases / f"RA-{year}-v{version + 1}"
    if following.exists():
        path = following / "manifest.json"
        path.chmod(0o644)
        data = json.loads(path.read_text(encoding="utf-8"))
        data["previous_manifest_sha256"] = manifest_sha
        path.write_text(
            json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
            encoding="utf-8",
        )
        (following / "SHA256SUMS").chmod(0o644)
        (following / "SHA256SUMS").write_bytes(render_checksums(data["outputs"], sha256_file(path)))
        con.execute(
            "update release.releases set previous_manifest_sha256 = ?, manifest_sha256 = ? "
            "where release_id = ?",
            [manifest_sha, sha256_file(path), following.name],
        )


def test_a_release_forged_in_the_build_database_and_its_folders_is_caught_by_the_anchor(
    con, tmp_path
):
    releases = tmp_path / "releases"
    freeze(con, YEAR, releases)
    freeze(con, YEAR, releases, reason="Deuxième version")
    _forge(
        con,
        releases,
        "RA-2025-v1",
        "update release.release_values set value = 999 where release_id = 'RA-2025-v1' "
        "and indicator_id = 'declared_budget'",
    )
    # consistent with itself: the warehouse, the folders and the manifest chain all agree
    assert verify_records(con, releases).intact
    problems = verify(con, releases).problems
    assert "RA-2025-v1 : le manifeste n'est pas celui de l'ancre SHA256SUMS" in problems
    assert any(p.startswith("RA-2025-v1 : l'empreinte du manifeste enregistrée") for p in problems)
    assert "RA-2025-v1 : fichier values.csv différent de l'ancre SHA256SUMS" in problems
    assert any(
        p.startswith("RA-2025-v2 : le manifeste n'est pas celui de l'ancre") for p in problems
    )
    if shutil.which("sha256sum"):  # and without kpi
        checked = subprocess.run(["sha256sum", "-c", ANCHOR], cwd=releases, capture_output=True)
        assert checked.returncode != 0 and b"RA-2025-v1/values.csv: FAILED" in checked.stdout
    # a record added to the build database alone is not anchored either
    con.execute(
        "insert into release.releases select * replace ('RA-2024-v1' as release_id, 2024 as "
        "year) from release.releases where release_id = 'RA-2025-v1'"
    )
    assert any(
        p.startswith("RA-2024-v1 : absente de l'ancre") for p in verify(con, releases).problems
    )


def test_kpi_verify_checks_the_release_tables_analysts_read(tmp_path, capsys):
    """An edit of the published copy's release tables, with its publication fingerprint
    recomputed so the copy's own check passes, still shows against the anchor."""
    from dagster_project.settings import Settings
    from dagster_project.warehouse.publication_check import verify_publication
    from dagster_project.warehouse.published_copy import columns_of, hash_rows, relation_fingerprint

    warehouse = tmp_path / "w.duckdb"
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    args = ["--warehouse", str(warehouse), "--releases", str(tmp_path / "releases")]
    assert main(["freeze", "--year", "2025", *args]) == 0
    out = capsys.readouterr().out
    assert "ancre SHA256SUMS : tête de chaîne " in out
    assert main(["verify", *args]) == 0
    assert "intègre" in capsys.readouterr().out
    target = Path(os.path.realpath(warehouse))
    target.chmod(0o644)
    copy = duckdb.connect(str(target))
    copy.execute(
        "update release.release_values set value = 999 where indicator_id = 'declared_budget'"
    )
    rows, rows_hash = hash_rows(copy, "select * from release.release_values")
    comment = copy.execute(
        "select comment from duckdb_tables() where schema_name = 'release' "
        "and table_name = 'release_values'"
    ).fetchone()[0]
    columns = columns_of(copy, "w")[("release", "release_values")]
    copy.execute(
        "update publication.tables set fingerprint = ? where schema_name = 'release' "
        "and table_name = 'release_values'",
        [relation_fingerprint(comment, columns, rows, rows_hash)],
    )
    copy.close()
    target.chmod(0o444)
    assert verify_publication(Settings(tmp_path, warehouse, tmp_path / "releases")).intact
    assert main(["verify", *args]) == 3
    out = capsys.readouterr().out
    assert (
        "ÉCART : RA-2025-v1 : copie publiée (w.duckdb) : les valeurs de release.release_values "
        "ne sont pas celles du gel" in out
    )


# --------------------------------------------------------------------------- where releases go


def test_releases_go_beside_their_warehouse_unless_releases_says_otherwise(tmp_path, monkeypatch):
    """`--warehouse X` without `--releases`: X's folder/releases, never the releases of the
    environment's (or the project's) warehouse; KPI_RELEASES names those of KPI_WAREHOUSE."""
    import argparse

    from support.settings import SETTINGS_VARS

    from dagster_project.cli.common import settings_from
    from dagster_project.settings import PROJECT_ROOT

    for name in SETTINGS_VARS:  # the commands export their settings: restored after the test
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    tmp_path = tmp_path.resolve()
    copy = tmp_path / "copy" / "w.duckdb"

    def releases(**options) -> Path:
        return settings_from(argparse.Namespace(**options)).releases_dir

    assert releases(warehouse=str(copy)) == copy.parent / "releases"
    assert releases(warehouse=str(copy), releases=str(tmp_path / "r")) == tmp_path / "r"
    main_warehouse = tmp_path / "main" / "warehouse.duckdb"
    monkeypatch.setenv("KPI_WAREHOUSE", str(main_warehouse))
    monkeypatch.setenv("KPI_RELEASES", str(tmp_path / "archive"))
    assert releases() == tmp_path / "archive"
    assert releases(warehouse=str(main_warehouse)) == tmp_path / "archive"
    assert releases(warehouse=str(copy)) == copy.parent / "releases"
    # the settings a first command exported do not send a second one's releases elsewhere
    other = tmp_path / "other" / "w.duckdb"
    assert releases(warehouse=str(other)) == other.parent / "releases"

    # end to end: a freeze of a copy writes beside the copy, not into ./releases
    for name in SETTINGS_VARS:
        monkeypatch.delenv(name, raising=False)
    build_warehouse(copy.parent / ".build" / copy.name)
    project_releases = PROJECT_ROOT / "releases"
    before = sorted(project_releases.iterdir()) if project_releases.exists() else None
    assert main(["freeze", "--year", "2025", "--no-publish", "--warehouse", str(copy)]) == 0
    assert (copy.parent / "releases" / "RA-2025-v1" / "manifest.json").is_file()
    after = sorted(project_releases.iterdir()) if project_releases.exists() else None
    assert after == before
