"""Releases: freeze, revisions, diff, waivers, tamper evidence (`kpi verify`).

Fast: a small warehouse built by hand (``build_warehouse``, also used by test_review.py and
test_lineage.py); the exports of the release folder are replaced by a small fake.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import duckdb
import pytest

from dagster_project import release as rel
from dagster_project.cli import main
from dagster_project.ingest.store import ensure_ingest_tables
from dagster_project.release import FreezeRefused, diff_releases, freeze, verify

YEAR = 2025
D_DECL_25 = "indicateurs_declares-2025-finance-aaaaaaaaaaaa"
D_DECL_24 = "indicateurs_declares-2024-finance-bbbbbbbbbbbb"
D_NET_25 = "eau_reseau-2025-water-cccccccccccc"
D_HR_25 = "rh_effectifs-2025-hr-dddddddddddd"
PSEUDONYM = "0123456789abcdef"


def build_warehouse(path: Path) -> Path:
    """A tiny warehouse: 2 years of values, their deliveries, raw rows and a passing run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    ensure_ingest_tables(con)
    con.execute(
        """
        create schema marts;
        create table marts.fct_indicator_values (
            indicator_id varchar not null, year integer not null, code_insee varchar,
            value double not null, unit varchar, as_of_date date, kind varchar,
            computation varchar, department varchar, priority varchar, comment varchar,
            source_ids varchar, delivery_ids varchar);
        create table marts.dim_indicators (indicator_id varchar, priority varchar,
            label_fr varchar, unit varchar, department varchar, kind varchar, computation varchar);
        create table marts.dim_communes (code_insee varchar, commune_name varchar);
        insert into marts.dim_communes values ('62119', 'Béthune'), ('62126', 'Beuvry');
        insert into marts.dim_indicators values
          ('declared_budget', 'P1', 'Budget déclaré', 'eur', 'finance', 'value', 'declared'),
          ('water_network_length', 'P2', 'Linéaire du réseau d''eau', 'km', 'water', 'value', 'derived'),
          ('permanent_staff', 'APPUI', 'Collaborateurs permanents', 'agents', 'hr', 'value', 'derived');
        create schema raw;
        create schema raw_restricted;
        create table raw.indicateurs_declares (indicator_id varchar, code_insee varchar,
            valeur double, date_valeur date, commentaire varchar, source varchar,
            _delivery_id varchar, _file_sha256 varchar, _sheet varchar, _row_number integer,
            _campaign_year integer, _department varchar);
        create table raw.eau_reseau (code_insee varchar, reseau varchar, lineaire_km double,
            _delivery_id varchar, _file_sha256 varchar, _sheet varchar, _row_number integer,
            _campaign_year integer, _department varchar);
        create table raw_restricted.rh_effectifs (matricule varchar, date_observation date,
            age_months bigint, sexe varchar, _delivery_id varchar, _file_sha256 varchar,
            _sheet varchar, _row_number integer, _campaign_year integer, _department varchar);
        create schema audit;
        create table audit.check_results (run_id varchar not null, checked_at timestamp,
            check_name varchar not null, asset varchar, passed boolean not null,
            blocking boolean not null, severity varchar not null, description_fr varchar,
            details_json varchar);
        create table audit.dbt_results (run_id varchar, unique_id varchar, status varchar,
            failures integer, message varchar, execution_time double, recorded_at timestamp);
        """
    )
    values = [
        (
            "declared_budget",
            2024,
            None,
            900.0,
            "eur",
            "declared",
            "finance",
            "P1",
            "indicateurs_declares",
            D_DECL_24,
        ),
        (
            "declared_budget",
            2025,
            None,
            1000.0,
            "eur",
            "declared",
            "finance",
            "P1",
            "indicateurs_declares",
            D_DECL_25,
        ),
        (
            "water_network_length",
            2024,
            None,
            29.0,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            None,
        ),
        (
            "water_network_length",
            2025,
            None,
            30.5,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "water_network_length",
            2025,
            "62119",
            20.0,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "water_network_length",
            2025,
            "62126",
            10.5,
            "km",
            "derived",
            "water",
            "P2",
            "eau_reseau",
            D_NET_25,
        ),
        (
            "permanent_staff",
            2025,
            None,
            12.0,
            "agents",
            "derived",
            "hr",
            "APPUI",
            "rh_effectifs",
            D_HR_25,
        ),
    ]
    for ind, year, code, value, unit, computation, dept, prio, sources, deliveries in values:
        con.execute(
            "insert into marts.fct_indicator_values values (?, ?, ?, ?, ?, ?, 'value', ?, ?, ?, "
            "null, ?, ?)",
            [
                ind,
                year,
                code,
                value,
                unit,
                dt.date(year, 12, 31),
                computation,
                dept,
                prio,
                sources,
                deliveries,
            ],
        )
    deliveries = [
        (D_DECL_24, 2024, "finance", "indicateurs_declares", "indicateurs_declares_2024.xlsx"),
        (D_DECL_25, 2025, "finance", "indicateurs_declares", "indicateurs_declares_2025.xlsx"),
        (D_NET_25, 2025, "water", "eau_reseau", "eau_reseau_2025.xlsx"),
        (D_HR_25, 2025, "hr", "rh_effectifs", "rh_effectifs_2025.xlsx"),
    ]
    for did, year, dept, source, name in deliveries:
        con.execute(
            "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
            "file_path, file_name, file_sha256, file_size, received_at, processed_at, outcome, "
            "row_count, problem_count, warning_count, sheet, in_force) values "
            "(?, ?, ?, ?, ?, ?, ?, 100, ?, ?, 'accepted', 4, 0, 0, 'Feuille', true)",
            [
                did,
                year,
                dept,
                source,
                f"/sources/{year}/{dept}/{name}",
                name,
                hashlib.sha256(did.encode()).hexdigest(),
                dt.datetime(year + 1, 1, 15, 9, 30),
                dt.datetime(year + 1, 1, 16, 8, 0),
            ],
        )
    declared = [
        ("autre_indicateur", None, 5.0, D_DECL_25, 4),
        ("declared_budget", None, 1000.0, D_DECL_25, 5),
        ("declared_budget", None, 900.0, D_DECL_24, 5),
    ]
    for ind, code, value, did, row in declared:
        con.execute(
            "insert into raw.indicateurs_declares values (?, ?, ?, ?, 'commentaire déclaré', "
            "'source', ?, 'x', 'Indicateurs', ?, ?, 'finance')",
            [ind, code, value, dt.date(2025, 12, 31), did, row, int(did.split("-")[1])],
        )
    for code, row in (("62119", 2), ("62119", 3), ("62126", 4), ("62119", 5)):
        con.execute(
            "insert into raw.eau_reseau values (?, 'AEP', 5.0, ?, 'x', 'Réseaux', ?, 2025, 'water')",
            [code, D_NET_25, row],
        )
    for row in range(3, 15):
        con.execute(
            "insert into raw_restricted.rh_effectifs values (?, '2025-10-01', ?, 'F', ?, 'x', "
            "'Effectifs', ?, 2025, 'hr')",
            [PSEUDONYM[:-2] + f"{row:02d}", 480 + row, D_HR_25, row],
        )
    con.execute(
        "insert into audit.check_results values ('run-1', '2026-01-20 10:00:00', "
        "'raw_eau_reseau', 'raw/eau_reseau', true, true, 'ERROR', 'ok', '{}')"
    )
    con.execute(
        "insert into audit.dbt_results values ('run-1', 'test.kpi.not_null_x.abc', 'pass', 0, "
        "null, 0.1, '2026-01-20 10:00:00')"
    )
    con.close()
    return path


def fake_exports(con, release_id, year, folder: Path) -> list[Path]:
    """Stands in for dagster_project.exports: a nested file, deterministic."""
    count = con.execute(
        "select count(*) from release.release_values where release_id = ?", [release_id]
    ).fetchone()[0]
    target = folder / "rapport" / "index.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"<p>{release_id} : {count} valeurs ({year})</p>\n", encoding="utf-8")
    return [target]


@pytest.fixture(autouse=True)
def _fake_exports(monkeypatch):
    monkeypatch.setattr(rel, "_write_exports", fake_exports)


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
    assert set(manifest["outputs"]) == files - {"manifest.json"}
    assert "rapport/index.html" in manifest["outputs"]  # recursive
    for name, digest in manifest["outputs"].items():
        assert rel.sha256_file(folder / name) == digest
    # values_sha256: the warehouse rows rendered as CSV are values.csv, byte for byte
    assert manifest["values_sha256"] == rel.sha256_file(folder / "values.csv")
    assert rel.values_sha256(con, release.release_id) == manifest["values_sha256"]
    stored = con.execute(
        "select manifest_sha256, values_sha256, value_count from release.releases"
    ).fetchone()
    assert stored == (rel.sha256_file(folder / "manifest.json"), manifest["values_sha256"], 5)
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
    assert manifest["previous_manifest_sha256"] == rel.sha256_file(v1.folder / "manifest.json")
    # both versions stay queryable; the view reads the latest
    assert con.execute(
        "select release_id, value from release.latest_values where indicator_id = "
        "'water_network_length' and code_insee is null"
    ).fetchall() == [("RA-2025-v2", 31.0)]
    assert con.execute(
        "select value from release.release_values where release_id = 'RA-2025-v1' "
        "and indicator_id = 'water_network_length' and code_insee is null"
    ).fetchone() == (30.5,)
    assert rel.release_for(con, YEAR) == "RA-2025-v2"
    assert rel.release_for(con, YEAR, "RA-2025-v1") == "RA-2025-v1"
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
    text = rel.format_diff("RA-2025-v1", "RA-2025-v2", changes, "Révision")
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
    assert "Valeurs modifiées : 1" in out and "1\u202f000 eur → 1\u202f100 eur" in out
    with out_csv.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows == [
        {
            "changement": "modifiée",
            "indicateur": "declared_budget",
            "libelle": "Budget déclaré",
            "code_insee": "",
            "commune": "agglomération",
            "ancienne_valeur": "1000.0",
            "nouvelle_valeur": "1100.0",
            "ancienne_unite": "eur",
            "nouvelle_unite": "eur",
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
