"""Everything a person reads of a release is French, and its files for people open right in
French Excel (issue 18, points 1 to 4): `kpi trace` and `kpi diff` in French (unit labels,
natures, computations, directions, dates JJ/MM/AAAA); `valeurs_par_commune.csv` and
`kpi diff --csv` in French Excel's dialect (BOM, « ; », decimal comma) while values.csv keeps
the open-data dialect; the report workbook's native charts, written the same byte for byte.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import zipfile

import duckdb
import openpyxl
import pytest
from support.warehouses import build_warehouse

from dagster_project.release import freeze as freeze_module
from dagster_project.release.diff import ValueChange, format_diff, write_diff_csv
from dagster_project.release.exports import write_commune_csv
from dagster_project.release.exports.common import ReleaseData, Row
from dagster_project.release.exports.workbook import (
    CHANGES,
    TOP_COMMUNES,
    TOP_COUNT,
    sheet_titles,
    write_workbook,
)
from dagster_project.release.freeze import freeze
from dagster_project.release.lineage.report import format_trace
from dagster_project.release.lineage.trace import trace

BOM = b"\xef\xbb\xbf"
# English words of the catalogue's codes that must never reach a person
ENGLISH = re.compile(
    r"\b(?:type value|calcul derived|derived|declared|forecast|persons|count|eur|finance)\b"
)


@pytest.fixture(autouse=True)
def _no_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", lambda *args: [])


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    yield connection
    connection.close()


# --- kpi trace --------------------------------------------------------------------------------


def test_trace_speaks_french(con, tmp_path):
    freeze(con, 2025, tmp_path / "releases")
    text = format_trace(trace(con, "declared_budget", 2025))
    value_line = next(line for line in text.splitlines() if line.startswith("Valeur : "))
    assert value_line == (
        "Valeur : 1\u202f000 € (nature : valeur constatée, déclarée par la direction, "
        "au 31/12/2025)"
    )
    assert "Direction des Finances, reçue le" in text  # not « direction finance »
    assert "date 31/12/2025" in text or "date —" in text  # the declared row's date, French
    derived = format_trace(trace(con, "water_network_length", 2025, "62119"))
    assert "Valeur : 20 km (nature : valeur constatée, calculée par l'entrepôt, au 31/12/2025)" in (
        derived
    )
    assert "Direction du Petit Cycle de l'Eau" in derived
    for shown in (text, derived):  # (identifiers aside: ids of indicators and deliveries)
        for line in shown.splitlines():
            if line.startswith(("Valeur : ", "  - ")):
                words = re.sub(r"\(livraison [^)]*\)|\S*_\S*", "", line)
                assert not ENGLISH.search(words), line


# --- kpi diff ---------------------------------------------------------------------------------


def test_diff_text_and_csv_in_french(tmp_path):
    changes = [
        ValueChange(
            "modifiée",
            "water_network_length",
            "62119",
            1234.5,
            1250.25,
            "km",
            "km",
            label="Linéaire du réseau d'eau",
            commune="Béthune",
        ),
        ValueChange(
            "ajoutée", "population", None, None, 101234.0, None, "persons", label="Population"
        ),
        ValueChange("retirée", "renewal_rate", None, 0.1, None, "pct", None, label="Taux"),
    ]
    text = format_diff("RA-2025-v1", "RA-2025-v2", changes, None)
    assert "1\u202f234,5 km → 1\u202f250,25 km" in text
    assert "101\u202f234 personnes" in text and "0,1 %" in text
    path = tmp_path / "diff.csv"
    write_diff_csv(changes, path)
    raw = path.read_bytes()
    assert raw.startswith(BOM) and b"\r\n" in raw
    with path.open(encoding="utf-8-sig", newline="") as handle:
        header, *rows = list(csv.reader(handle, delimiter=";"))
    assert header[:2] == ["changement", "indicateur"]
    assert rows[0][5:] == ["1234,5", "1250,25", "km", "km"]  # decimal comma, no thousands
    assert rows[1][4:] == ["agglomération", "", "101234", "", "personnes"]
    assert rows[2][5:] == ["0,1", "", "%", ""]


# --- valeurs_par_commune.csv (for people) and values.csv (open data) --------------------------


def _row(indicator_id, code, name, value, unit="km", priority="P2", order=0) -> Row:
    return Row(
        priority=priority,
        objective="Eau",
        indicator_id=indicator_id,
        label_fr=f"Libellé de {indicator_id}",
        code_insee=code,
        commune_name=name,
        value=value,
        unit=unit,
        as_of_date=dt.date(2025, 12, 31),
        previous_year_value=None,
        change=None,
        change_pct=None,
        target_value=None,
        comment=None,
        review_status="",
        review_comment=None,
        kind="value",
        order=order,
    )


def test_commune_csv_opens_in_french_excel(con, tmp_path):
    data = ReleaseData(
        "RA-2025-v1",
        2025,
        [
            _row("water_network_length", "62119", "Béthune", 1234.5),
            _row("water_network_length", "62126", "Beuvry", 10.0),
            _row("water_network_length", None, "Agglomération", 1244.5),
        ],
    )
    path = write_commune_csv(con, data, tmp_path / "valeurs_par_commune.csv")
    raw = path.read_bytes()
    assert raw.startswith(BOM)
    assert raw[len(BOM) :].decode("utf-8").splitlines() == [
        "code_insee;commune;water_network_length",
        "62119;Béthune;1234,5",
        "62126;Beuvry;10",
    ]


def test_values_csv_keeps_the_open_data_dialect(con, tmp_path):
    release = freeze(con, 2025, tmp_path / "releases")
    raw = (release.folder / "values.csv").read_bytes()
    assert not raw.startswith(BOM)
    header = raw.decode("utf-8").splitlines()[0]
    assert header.startswith("indicator_id,year,code_insee,value,unit,")
    assert "30.5" in raw.decode("utf-8")  # decimal point, comma-separated


# --- the report workbook's charts -------------------------------------------------------------


def _release_with_history() -> ReleaseData:
    rows = []
    changes = [(f"ind_{i:02d}", 100.0 + i, 100.0, "P1" if i % 2 else "P2") for i in range(20)]
    for order, (indicator_id, value, previous, priority) in enumerate(changes):
        row = _row(indicator_id, None, "Agglomération", value, "persons", priority, order)
        row.previous_year_value = previous
        row.change = value - previous
        row.change_pct = 100.0 * (value - previous) / previous if value != previous else 0.0
        rows.append(row)
    communes = [(f"62{n:03d}", f"Commune {n:02d}") for n in range(14)]
    for n, (code, name) in enumerate(communes):
        rows.append(_row("water_network_length", code, name, float(n * 3 % 14), order=99))
    return ReleaseData("RA-2025-v1", 2025, rows)


def test_report_workbook_has_native_charts_written_the_same_each_time(tmp_path):
    data = _release_with_history()
    assert sheet_titles(data)[-2:] == [CHANGES, TOP_COMMUNES]
    created = dt.datetime(2026, 1, 15, 9, 30)
    first = write_workbook(data, tmp_path / "a.xlsx", created)
    second = write_workbook(data, tmp_path / "b.xlsx", created)
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        charts = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        xml = {n: archive.read(n).decode("utf-8") for n in charts}
    assert len(charts) == 3  # Priorité 1, Priorité 2, one commune indicator
    changes = [x for x in xml.values() if "Évolutions!" in x]
    tops = [x for x in xml.values() if "'Communes en tête'!" in x]
    assert len(changes) == 2 and len(tops) == 1
    assert all("<c:barChart>" in x and "<c:numCache>" in x for x in xml.values())
    assert "Priorité 1 : évolution 2024-2025" in changes[0]
    # the ten highest communes, highest first, their values cached for any viewer
    top = tops[0]
    assert top.count("<c:pt idx=") == 2 * TOP_COUNT
    assert re.search(r"<c:v>Commune \d\d</c:v>", top)
    book = openpyxl.load_workbook(first)
    sheet = book[TOP_COMMUNES]
    table = [r for r in sheet.iter_rows(min_row=6, max_row=5 + TOP_COUNT, values_only=True)]
    values = [r[1] for r in table]
    assert values == sorted(values, reverse=True) and values[0] == 13
    assert [c.value for c in sheet[5]][:3] == ["Commune", "Valeur", "Code INSEE"]
    changes_sheet = book[CHANGES]
    assert changes_sheet["A4"].value == "Priorité 1"
    assert [c.value for c in changes_sheet[5]][:5] == [
        "Indicateur",
        "Évolution %",
        "Valeur",
        "Année précédente",
        "Unité",
    ]
    assert changes_sheet["E6"].value == "personnes"


def test_no_chart_sheet_without_changes_or_communes():
    data = ReleaseData("RA-2025-v1", 2025, [_row("x", None, "Agglomération", 1.0)])
    assert CHANGES not in sheet_titles(data) and TOP_COMMUNES not in sheet_titles(data)
