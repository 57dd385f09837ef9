"""The review workbook (`kpi review export`) and `kpi review list` say the directions and the
units in French (issue 18, point 2): « Direction des Finances », « € », not ``finance``, ``eur``."""

from __future__ import annotations

import duckdb
import openpyxl
import pytest
from support.warehouses import build_warehouse

from dagster_project.cli import main
from dagster_project.quality.review_workbook import (
    H_DEPARTMENT,
    H_ID,
    H_UNIT,
    SHEET,
    export_workbook,
)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    yield connection
    connection.close()


def test_review_workbook_shows_french_directions_and_units(con, tmp_path):
    out = tmp_path / "revue.xlsx"
    export_workbook(con, 2025, out)
    sheet = openpyxl.load_workbook(out)[SHEET]
    headers = [c.value for c in sheet[1]]
    rows = [
        dict(zip(headers, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)
    ]
    by_id = {(r[H_ID], r["Code INSEE"] or None): r for r in rows}
    budget = by_id[("declared_budget", None)]
    assert (budget[H_DEPARTMENT], budget[H_UNIT]) == ("Direction des Finances", "€")
    network = by_id[("water_network_length", "62119")]
    assert (network[H_DEPARTMENT], network[H_UNIT]) == ("Direction du Petit Cycle de l'Eau", "km")
    staff = by_id[("permanent_staff", None)]
    assert (staff[H_DEPARTMENT], staff[H_UNIT]) == ("Direction des Ressources Humaines", "agents")
    shown = {r[H_DEPARTMENT] for r in rows} | {r[H_UNIT] for r in rows}
    assert not {"finance", "water", "hr", "eur"} & shown


def test_review_list_shows_french_units(tmp_path, capsys):
    build_warehouse(tmp_path / ".build" / "w.duckdb")
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
    assert main(["review", "list", "--year", "2025", "--status", "non revu", *warehouse]) == 0
    out = capsys.readouterr().out
    assert "declared_budget — agglomération : 1\u202f000 €" in out
    assert "Béthune (62119) : 20 km" in out
    assert " eur" not in out
