"""Validation status of values: `kpi review set|list|export|import`, and the freeze gate."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import openpyxl
import pytest
from support.warehouses import build_warehouse

from dagster_project.cli import main
from dagster_project.quality import review
from dagster_project.quality.review import (
    STATUS_ANOMALY,
    STATUS_OK,
    STATUS_SUSPECT,
    ReviewError,
    set_review,
)
from dagster_project.quality.review_workbook import ImportRejected, export_workbook, import_workbook
from dagster_project.release import freeze as freeze_module
from dagster_project.release.freeze import freeze
from dagster_project.release.gate import FreezeRefused

YEAR = 2025


@pytest.fixture(autouse=True)
def _no_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", lambda *args: [])


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    yield connection
    connection.close()


def current(con, indicator_id, code=None):
    return con.execute(
        "select status, comment, reviewer from review.current_reviews where year = 2025 "
        "and indicator_id = ? and code_insee is not distinct from ?",
        [indicator_id, code],
    ).fetchone()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ok", STATUS_OK),
        ("OK", STATUS_OK),
        ("Sans anomalie apparente", STATUS_OK),
        ("presomption", STATUS_SUSPECT),
        ("présomption d’anomalie", STATUS_SUSPECT),
        ("Présomption d'anomalie", STATUS_SUSPECT),
        ("anomalie", STATUS_ANOMALY),
        ("ANOMALIE ", STATUS_ANOMALY),
        ("bof", None),
        ("", None),
    ],
)
def test_statuses_and_aliases(text, expected):
    assert review.normalize_status(text) == expected


def test_latest_review_wins_and_history_is_kept(con):
    t0 = dt.datetime(2026, 2, 1, 10, 0)
    set_review(con, YEAR, "declared_budget", None, "presomption", "Écart avec le CA", "Ana", now=t0)
    set_review(con, YEAR, "declared_budget", None, "ok", None, "Bruno", now=t0)  # same second
    assert current(con, "declared_budget") == (STATUS_OK, None, "Bruno")
    history = review.history(con, YEAR, "declared_budget", None)
    assert [h["status"] for h in history] == [STATUS_SUSPECT, STATUS_OK]
    assert history[0]["value_at_review"] == 1000.0
    set_review(con, YEAR, "water_network_length", "62119", "anomalie", "Doublon", "Ana")
    assert current(con, "water_network_length", "62119")[0] == STATUS_ANOMALY
    assert current(con, "water_network_length") is None  # the agglomeration value is distinct


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("inconnu", None, "ok", None, "Ana"), "n'a aucune valeur en 2025"),
        (("declared_budget", "62119", "ok", None, "Ana"), "pas de valeur pour la commune 62119"),
        (("declared_budget", None, "bof", None, "Ana"), "statut « bof » inconnu"),
        (("declared_budget", None, "anomalie", " ", "Ana"), "commentaire est obligatoire"),
        (("declared_budget", None, "ok", None, " "), "relecteur est obligatoire"),
    ],
)
def test_set_review_refuses_with_a_french_message(con, args, message):
    with pytest.raises(ReviewError, match=message):
        set_review(con, YEAR, *args)


def test_agglomeration_value_needs_a_commune_when_there_is_none(con):
    con.execute(
        "delete from marts.fct_indicator_values where indicator_id = 'water_network_length' "
        "and code_insee is null"
    )
    with pytest.raises(ReviewError, match="précisez --commune"):
        set_review(con, YEAR, "water_network_length", None, "ok", None, "Ana")


def test_anomaly_blocks_the_freeze_and_release_rows_carry_the_status(con, tmp_path):
    releases = tmp_path / "releases"
    set_review(con, YEAR, "declared_budget", None, "anomalie", "Montant incohérent", "Ana")
    set_review(con, YEAR, "water_network_length", "62119", "presomption", "À vérifier", "Ana")
    with pytest.raises(FreezeRefused, match="anomalie") as refused:
        freeze(con, YEAR, releases)
    assert "declared_budget (agglomération) : Montant incohérent — Ana" in str(refused.value)
    set_review(con, YEAR, "declared_budget", None, "ok", "Corrigé par la direction", "Ana")
    release = freeze(con, YEAR, releases)
    rows = dict(
        (
            (ind, code),
            (status, comment),
        )
        for ind, code, status, comment in con.execute(
            "select indicator_id, code_insee, review_status, review_comment "
            "from release.release_values"
        ).fetchall()
    )
    assert rows[("declared_budget", None)] == (STATUS_OK, "Corrigé par la direction")
    assert rows[("water_network_length", "62119")] == (STATUS_SUSPECT, "À vérifier")
    assert rows[("permanent_staff", None)] == (None, None)
    manifest = json.loads((release.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["review"] == {
        STATUS_OK: 1,
        STATUS_SUSPECT: 1,
        STATUS_ANOMALY: 0,
        "non revu": 3,
    }
    header = (release.folder / "values.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.endswith(",review_status,review_comment")


def _sheet_rows(path):
    wb = openpyxl.load_workbook(path)
    ws = wb["Revue"]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    return wb, ws, rows


def test_export_writes_one_row_per_value_with_a_status_dropdown(con, tmp_path):
    set_review(con, YEAR, "declared_budget", None, "presomption", "Écart", "Ana")
    out = tmp_path / "revue_2025.xlsx"
    assert export_workbook(con, YEAR, out) == 5
    wb, ws, rows = _sheet_rows(out)
    header = rows[0]
    assert header[:3] == ["Année", "Indicateur", "Libellé"]
    assert {
        "Valeur",
        "Unité",
        "Valeur N-1",
        "Évolution",
        "Statut",
        "Commentaire",
        "Relecteur",
    } <= set(header)
    by_id = {
        (r[1], r[header.index("Code INSEE")] or None): dict(zip(header, r, strict=True))
        for r in rows[1:]
    }
    budget = by_id[("declared_budget", None)]
    assert budget["Valeur"] == 1000 and budget["Valeur N-1"] == 900 and budget["Évolution"] == 100
    assert budget["Statut"] == STATUS_SUSPECT and budget["Commentaire"] == "Écart"
    assert budget["Relecteur"] == "Ana" and budget["Commune"] == "Agglomération"
    assert by_id[("water_network_length", "62119")]["Commune"] == "Béthune"
    validations = ws.data_validations.dataValidation
    assert len(validations) == 1 and validations[0].type == "list"
    assert STATUS_SUSPECT in validations[0].formula1
    assert "Mode d'emploi" in wb.sheetnames


def test_import_records_only_changed_rows(con, tmp_path):
    set_review(con, YEAR, "declared_budget", None, "ok", None, "Ana")
    out = tmp_path / "revue.xlsx"
    export_workbook(con, YEAR, out)
    wb, ws, rows = _sheet_rows(out)
    header = rows[0]
    status, comment = header.index("Statut") + 1, header.index("Commentaire") + 1
    for i, row in enumerate(rows[1:], start=2):
        if row[1] == "water_network_length" and row[header.index("Code INSEE")] == "62126":
            ws.cell(i, status).value = "presomption"
            ws.cell(i, comment).value = "Chiffre en baisse"
        if row[1] == "permanent_staff":
            ws.cell(i, status).value = "sans anomalie apparente"
    wb.save(out)
    result = import_workbook(con, out, "Claire")
    assert (result.recorded, result.unchanged) == (2, 1)
    assert current(con, "water_network_length", "62126") == (
        STATUS_SUSPECT,
        "Chiffre en baisse",
        "Claire",
    )
    assert current(con, "declared_budget") == (STATUS_OK, None, "Ana")  # unchanged, not re-recorded
    origin = con.execute(
        "select distinct origin from review.value_reviews where reviewer = 'Claire'"
    ).fetchall()
    assert origin == [("import revue.xlsx",)]
    again = import_workbook(con, out, "Claire")
    assert (again.recorded, again.unchanged) == (0, 3)


def test_import_rejects_unknown_values_and_bad_statuses_naming_the_rows(con, tmp_path):
    out = tmp_path / "revue.xlsx"
    export_workbook(con, YEAR, out)
    wb, ws, rows = _sheet_rows(out)
    header = rows[0]
    status, comment = header.index("Statut") + 1, header.index("Commentaire") + 1
    ws.cell(2, status).value = "bof"
    ws.cell(3, 2).value = "indicateur_inconnu"
    ws.cell(3, status).value = "ok"
    ws.cell(4, status).value = "anomalie"  # no comment
    ws.cell(5, status).value = "ok"
    ws.cell(5, comment).value = "Vérifié"
    wb.save(out)
    with pytest.raises(ImportRejected) as rejected:
        import_workbook(con, out, "Claire")
    problems = rejected.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("ligne 2 : statut « bof » inconnu")
    assert problems[1].startswith(
        "ligne 3 : valeur inconnue en 2025 : indicateur « indicateur_inconnu »"
    )
    assert problems[2].startswith("ligne 4 : un commentaire est obligatoire")
    # all or nothing: the valid row 5 was not recorded either
    assert con.execute("select count(*) from review.value_reviews").fetchone()[0] == 0


def test_import_refuses_a_cleared_status_and_missing_columns(con, tmp_path):
    set_review(con, YEAR, "declared_budget", None, "ok", None, "Ana")
    out = tmp_path / "revue.xlsx"
    export_workbook(con, YEAR, out)
    wb, ws, rows = _sheet_rows(out)
    header = rows[0]
    for i, row in enumerate(rows[1:], start=2):
        if row[1] == "declared_budget":
            ws.cell(i, header.index("Statut") + 1).value = None
    wb.save(out)
    with pytest.raises(ImportRejected, match="un statut ne s'efface pas"):
        import_workbook(con, out, "Claire")
    ws.delete_cols(header.index("Statut") + 1)
    wb.save(out)
    with pytest.raises(ImportRejected, match="colonne\\(s\\) absente\\(s\\).*Statut"):
        import_workbook(con, out, "Claire")


def test_review_commands(tmp_path, capsys):
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    common = ["--warehouse", str(tmp_path / "w.duckdb")]
    assert (
        main(
            [
                "review",
                "set",
                "--year",
                "2025",
                "--indicator",
                "water_network_length",
                "--commune",
                "62119",
                "--status",
                "anomalie",
                "--comment",
                "Doublon de tronçon",
                "--reviewer",
                "Jeanne Martin",
                *common,
            ]
        )
        == 0
    )
    assert "« anomalie » enregistré par Jeanne Martin" in capsys.readouterr().out
    assert (
        main(
            [
                "review",
                "set",
                "--year",
                "2025",
                "--indicator",
                "declared_budget",
                "--status",
                "bof",
                "--reviewer",
                "X",
                *common,
            ]
        )
        == 1
    )
    assert "statut « bof » inconnu" in capsys.readouterr().err
    assert main(["review", "list", "--year", "2025", "--status", "anomalie", *common]) == 0
    out = capsys.readouterr().out
    assert "water_network_length — Béthune (62119)" in out and "1 anomalie" in out
    assert main(["review", "list", "--year", "2025", "--status", "non revu", *common]) == 0
    assert "4 valeur(s) listée(s)" in capsys.readouterr().out
    releases = ["--releases", str(tmp_path / "releases")]
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 3
    assert "en statut « anomalie »" in capsys.readouterr().err
    out_xlsx = tmp_path / "revue_2025.xlsx"
    assert main(["review", "export", "--year", "2025", "--out", str(out_xlsx), *common]) == 0
    wb, ws, rows = _sheet_rows(out_xlsx)
    header = rows[0]
    for i, row in enumerate(rows[1:], start=2):
        if row[header.index("Statut")] == STATUS_ANOMALY:
            ws.cell(i, header.index("Statut") + 1).value = "ok"
            ws.cell(i, header.index("Commentaire") + 1).value = "Doublon retiré à la source"
    wb.save(out_xlsx)
    assert main(["review", "import", str(out_xlsx), "--reviewer", "Paul", *common]) == 0
    assert "1 revue(s) enregistrée(s) par Paul" in capsys.readouterr().out
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 0
    assert (
        main(
            [
                "review",
                "list",
                "--year",
                "2025",
                "--indicator",
                "water_network_length",
                "--commune",
                "62119",
                *common,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "Jeanne Martin : « anomalie »" in out and "Paul : « sans anomalie apparente »" in out
    bad = tmp_path / "bad.xlsx"
    ws.cell(2, header.index("Statut") + 1).value = "peut-être"
    wb.save(bad)
    assert main(["review", "import", str(bad), "--reviewer", "Paul", *common]) == 1
    assert "ligne 2 : statut « peut-être » inconnu" in capsys.readouterr().err
