"""Rejection reports that help fix the file (issue 14, item 5).

The same problem on many rows is one line of ``<file>.rejet.csv`` (its rows as French
ranges, how many), through ``ingest.report.group_problems``, which the reminder e-mails use
too; a delivery whose dates are all in one other year (last year's workbook delivered as
this year's) says so on its first line. ``ingest.delivery_problems`` keeps one row per
problem."""

from __future__ import annotations

import csv
import datetime as dt
import os

import duckdb
import pytest

from dagster_project.ingest.discovery import DeliveryFile, discover
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.readers import csv_file, xlsx_file
from dagster_project.ingest.rejection import write_report
from dagster_project.ingest.report import REPORT_HEADER, group_problems, rows_fr
from dagster_project.ingest.validation import driver
from dagster_project.ingest.validation.driver import validate_delivery
from dagster_project.ingest.validation.results import MAX_PROBLEMS, Problem, ValidationResult

NBSP = "\u00a0"
COLLECTE = ["code_insee", "mois", "flux", "tonnage_t"]
ACTIVITY = [
    "code_insee",
    "mois",
    "controles_spanc_vente",
    "branchements_eu_crees",
    "demandes_eaux_pluviales",
]


def _collecte(codes: list[str], year: int, months: int, flows: list[str]) -> list[list[object]]:
    return [
        [code, f"{year}-{month:02d}", flow, 10.5]
        for month in range(1, months + 1)
        for flow in flows
        for code in codes
    ]


def _ingest(tmp_path, workbook, rows, name="dechets_collecte_2025.xlsx", contracts=None):
    folder = tmp_path / "sources" / "2025" / "waste"
    folder.mkdir(parents=True)
    path = workbook({"Collecte": [COLLECTE, *rows]}, name=name)
    target = folder / name
    path.replace(target)
    os.utime(target, (1_700_000_000, 1_700_000_000))
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ingestor = Ingestor(con, contracts, today=dt.date(2026, 1, 15))
    summary = ingestor.ingest_source("dechets_collecte", discover(tmp_path / "sources", contracts))
    return con, target, summary


def _report(path) -> list[list[str]]:
    report = path.with_name(path.name + ".rejet.csv")
    raw = report.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with BOM: Excel reads the accents
    with report.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


# --- last year's workbook delivered as this year's --------------------------------------------


def test_last_years_workbook_says_so_first_then_a_handful_of_grouped_lines(
    tmp_path, workbook, contracts, communes
):
    codes = sorted(communes.names)  # the 100 member communes
    rows = _collecte(codes, 2024, 6, ["OMR", "EMB_PAP", "VERRE"])  # 1 800 rows, all of 2024
    assert len(rows) == 1800
    for k in (498, 499, 500):  # rows 500 to 502 of the sheet: negative tonnages
        rows[k][3] = -1
    rows[998][0] = "Atlantis"  # row 1 000: an unknown commune
    con, path, summary = _ingest(tmp_path, workbook, rows, contracts=contracts)
    assert len(summary.rejected) == 1

    lines = _report(path)
    assert lines[0] == REPORT_HEADER
    assert len(lines) == 5  # the header, the other year, months, tonnages, the commune
    name = "2025/waste/dechets_collecte_2025.xlsx"  # from the sources folder: no server path
    assert {line[0] for line in lines[1:]} == {name}
    first = lines[1]
    assert first[5].startswith(
        "Ce fichier semble être celui de 2024 : toutes ses dates (mois) sont en 2024, "
        "la campagne est 2025. Déposez le fichier de 2025"
    )
    assert first[1:5] == ["Collecte", "", "mois", ""] and first[6] == ""
    assert lines[2] == [
        name,
        "Collecte",
        f"2 à 1{NBSP}801",
        "mois",
        "« 2024-01 », « 2024-02 », « 2024-03 » et 3 autres valeurs",
        "date hors de l'année de la campagne 2025 (mois (AAAA-MM ou « janvier 2025 »))",
        "1800",
    ]
    assert lines[3][1:] == [
        "Collecte",
        "500 à 502",
        "tonnage_t",
        "-1",
        "valeur négative non autorisée (nombre)",
        "3",
    ]
    assert lines[4][1:5] == ["Collecte", "1000", "code_insee", "Atlantis"]
    assert lines[4][6] == "1"  # a group of one: the line it always was, counted once

    # the warehouse keeps every problem, the other year first
    stored = con.execute(
        "select row_number, column_name, reason from ingest.delivery_problems order by rowid"
    ).fetchall()
    assert len(stored) == 1 + 1800 + 3 + 1
    assert stored[0][0] is None and stored[0][2].startswith("Ce fichier semble être celui de 2024")
    assert con.execute("select problem_count from ingest.deliveries").fetchone() == (1805,)
    con.close()


def test_one_date_of_last_year_in_this_years_file_is_not_last_years_file(
    tmp_path, workbook, contracts, communes
):
    rows = _collecte(sorted(communes.names), 2025, 2, ["OMR"])
    rows[10][1] = "2024-12"
    con, path, _ = _ingest(tmp_path, workbook, rows, contracts=contracts)
    lines = _report(path)
    assert len(lines) == 2
    assert lines[1][2:] == [
        "12",
        "mois",
        "2024-12",
        "date hors de l'année de la campagne 2025 (mois (AAAA-MM ou « janvier 2025 »))",
        "1",
    ]
    con.close()


def test_next_years_file_is_named_too(tmp_path, workbook, contracts, communes):
    rows = _collecte(sorted(communes.names)[:10], 2026, 3, ["VERRE"])
    con, path, _ = _ingest(tmp_path, workbook, rows, contracts=contracts)
    lines = _report(path)
    assert lines[1][5].startswith("Ce fichier semble être celui de 2026")
    assert lines[2][2] == "2 à 31" and lines[2][6] == "30"
    con.close()


# --- the same answer on the Arrow paths and cell by cell ---------------------------------------


def _year_line(result) -> list[str]:
    return [p.reason for p in result.problems if p.reason.startswith("Ce fichier semble")]


def _activity(year_of) -> list[list[object]]:
    codes = ["62119", "62178", "62051"]
    return [[codes[k % 3], f"{year_of(k)}-{1 + k // 3 % 12:02d}", k % 4, 2, 1] for k in range(36)]


@pytest.mark.parametrize(
    ("name", "year_of", "said"),
    [
        ("all of 2024", lambda k: 2024, True),
        ("2025 first, then 2024", lambda k: 2025 if k < 6 else 2024, False),
        ("2024 first, then 2025", lambda k: 2024 if k < 30 else 2025, False),
    ],
)
def test_other_year_same_answer_on_the_csv_arrow_path(
    contracts, outcome, make_context, tmp_path, monkeypatch, name, year_of, said
):
    path = tmp_path / "assainissement_activite_2025.csv"
    lines = [";".join(ACTIVITY)] + [";".join(map(str, row)) for row in _activity(year_of)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    contract = contracts["assainissement_activite"]
    monkeypatch.setattr(driver, "CHUNK_ROWS", 3)  # the first chunks pass in Arrow
    real, read = csv_file._csv_arrow, []
    monkeypatch.setattr(csv_file, "_csv_arrow", lambda *a: read.append(1) or real(*a))
    with_arrow = validate_delivery(contract, path, make_context())
    assert read  # read by Arrow's CSV parser
    monkeypatch.setattr(csv_file, "_csv_arrow", lambda *args: None)
    cell_by_cell = validate_delivery(contract, path, make_context())
    assert outcome(with_arrow) == outcome(cell_by_cell)
    assert bool(_year_line(with_arrow)) == said
    if said:
        assert with_arrow.problems[0].reason == _year_line(with_arrow)[0]


@pytest.mark.parametrize(
    ("name", "year_of", "said"),
    [
        ("all of 2024", lambda k: 2024, True),
        ("2025 first, then 2024", lambda k: 2025 if k < 6 else 2024, False),
    ],
)
def test_other_year_same_answer_on_the_worksheet_arrow_path(
    contracts, outcome, make_context, tmp_path, monkeypatch, workbook, name, year_of, said
):
    path = workbook({"Activité": [ACTIVITY, *_activity(year_of)]}, name="activite.xlsx")
    contract = contracts["assainissement_activite"]
    monkeypatch.setattr(driver, "CHUNK_ROWS", 3)
    monkeypatch.setattr(xlsx_file, "ARROW_MIN_ROWS", 2)  # read by fastexcel into Arrow columns
    real, read = xlsx_file._fastexcel_sheet, []
    monkeypatch.setattr(xlsx_file, "_fastexcel_sheet", lambda *a: read.append(real(*a)) or read[-1])
    with_arrow = validate_delivery(contract, path, make_context())
    assert read and read[0] is not None
    monkeypatch.setattr(xlsx_file, "ARROW_MIN_ROWS", 10**12)
    cell_by_cell = validate_delivery(contract, path, make_context())
    assert outcome(with_arrow) == outcome(cell_by_cell)
    assert bool(_year_line(with_arrow)) == said


# --- group_problems ----------------------------------------------------------------------------


def test_rows_as_french_ranges():
    assert rows_fr(range(5, 6005)) == f"5 à 6{NBSP}004"
    assert rows_fr([15, 3, 12, 7, 13, 14, 3]) == "3, 7, 12 à 15"
    assert rows_fr([8, 9]) == "8, 9"
    assert rows_fr([1200]) == f"1{NBSP}200"
    assert rows_fr(range(2, 100, 2), limit=3) == "2, 4, 6 et 46 autres lignes"


def test_identical_problems_are_one_group_in_the_order_of_their_first_row():
    problems = [
        Problem("valeur négative non autorisée", "S", 9, "tonnage_t", "-1"),
        *[
            Problem("date hors de l'année", "S", r, "mois", f"2024-{r % 12 + 1:02d}")
            for r in range(2, 40)
        ],
        Problem("valeur négative non autorisée", "S", 10, "tonnage_t", "-2"),
        Problem("2 commune(s) membre(s) absente(s) : …", "S", None, "code_insee"),
        Problem("colonne inconnue du contrat, ignorée", "S", 1, "x", severity="warning"),
        Problem("valeur négative non autorisée", "S", 30, "tonnage_t", "-1"),
    ]
    groups = group_problems(problems)
    assert [(g.reason[:12], g.rows_fr, g.count) for g in groups] == [
        ("2 commune(s)", "", 1),  # about the whole file: first
        ("colonne inco", "1", 1),
        ("date hors de", "2 à 39", 38),
        ("valeur négat", "9, 10, 30", 3),
    ]
    months, tonnages = groups[2], groups[3]
    assert months.values == ("2024-03", "2024-04", "2024-05") and months.distinct_values == 12
    assert months.value_fr == "« 2024-03 », « 2024-04 », « 2024-05 » et 9 autres valeurs"
    assert tonnages.value_fr == "« -1 », « -2 »"
    assert groups[1].severity == "warning"  # never mixed with the errors


def test_a_group_of_one_is_the_line_it_always_was():
    problem = Problem("mois illisible (mois)", "Activité", 3, "mois", "2025-13")
    [group] = group_problems([problem])
    assert group.report_row("2025/water/a.xlsx") == [
        "2025/water/a.xlsx",
        "Activité",
        "3",
        "mois",
        "2025-13",
        "mois illisible (mois)",
        "1",
    ]
    assert group.line_fr() == (
        "Feuille « Activité », ligne 3, colonne « mois », valeur « 2025-13 » : "
        "mois illisible (mois)"
    )
    [alone] = group_problems([Problem("fichier illisible")])
    assert alone.report_row("a.csv") == ["a.csv", "", "", "", "", "fichier illisible", ""]
    assert alone.line_fr() == "fichier illisible"


def test_dicts_from_the_warehouse_group_as_problems_do():
    problems = [
        Problem("cellule vide : valeur obligatoire", "S", row, "flux") for row in (4, 5, 6, 8)
    ]
    stored = [  # ingest.delivery_problems columns, as the reminders read them
        {
            "sheet": p.sheet,
            "row_number": p.row,
            "column_name": p.column,
            "value": p.value,
            "reason": p.reason,
            "severity": "error",
        }
        for p in problems
    ]
    short = [
        {"sheet": p.sheet, "row": p.row, "column": p.column, "value": None, "reason": p.reason}
        for p in problems
    ]
    assert group_problems(stored) == group_problems(problems) == group_problems(short)
    [group] = group_problems(stored)
    assert (group.rows, group.count, group.value_fr) == ((4, 5, 6, 8), 4, "")
    assert group.line_fr() == (
        "Feuille « S », lignes 4 à 6, 8 (4 lignes), colonne « flux » : "
        "cellule vide : valeur obligatoire"
    )


def test_the_report_is_bounded_and_says_how_many_problems_it_leaves_out(tmp_path):
    path = tmp_path / "sources" / "2025" / "waste" / "dechets_collecte_2025.xlsx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    problems = [
        Problem("date hors de l'année de la campagne 2025 (mois)", "S", r, "mois", "2024-01")
        for r in range(2, 2 + MAX_PROBLEMS)
    ]
    result = ValidationResult("S", problems, [], omitted_problems=4000)
    delivery = DeliveryFile(path, 2025, "waste", "dechets_collecte")
    write_report(path, delivery, result)
    lines = _report(path)
    assert lines == [
        REPORT_HEADER,
        [
            "2025/waste/dechets_collecte_2025.xlsx",
            "S",
            f"2 à 2{NBSP}001",
            "mois",
            "2024-01",
            "date hors de l'année de la campagne 2025 (mois)",
            "2000",
        ],
        ["", "", "", "", "", "… et 4000 autres problèmes", ""],
    ]
