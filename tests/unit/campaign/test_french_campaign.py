"""Campaign files for people, in French (issue 18): the blank templates' « Période publiée »
(``2025-H1`` → « 1er semestre 2025 », ``before extension`` → « avant extension »), their
published figures as numbers, and the status workbook's native charts (deliveries per
direction; progress against the due dates), written the same byte for byte."""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
from openpyxl import Workbook

from dagster_project.campaign.status import StatusRow
from dagster_project.campaign.status_report import (
    CHARTS,
    DIRECTION_SERIES,
    PROGRESS_SERIES,
    direction_counts,
    export_status_xlsx,
    progress,
)
from dagster_project.campaign.templates.sheets import indicator_comment, write_indicators_sheet
from dagster_project.contracts.reference import Indicator


def _indicator(indicator_id: str, period: str, published: str = "36.7", kind: str = "value"):
    return Indicator(
        indicator_id=indicator_id,
        label_fr="Libellé",
        unit="persons",
        kind=kind,
        definition="",
        published=published,
        period=period,
        allow_negative=False,
    )


def test_indicators_sheet_period_and_figures_in_french():
    ws = Workbook().active
    write_indicators_sheet(
        ws,
        [
            _indicator("a", "before extension"),
            _indicator("b", "target:2032", "4", "target"),
            _indicator("c", "2025-H1"),
            _indicator("d", "2024-2025 school year"),
        ],
    )
    header = [c.value for c in ws[1]]
    rows = {
        r[0]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)
    }
    assert [rows[k]["Période publiée"] for k in "abcd"] == [
        "avant extension",
        "objectif 2032",
        "1er semestre 2025",
        "année scolaire 2024-2025",
    ]
    assert rows["a"]["Unité"] == "personnes" and rows["b"]["Nature"] == "objectif"
    assert rows["a"]["Valeur publiée (rapport 2025)"] == 36.7  # a number: 36,7 in Excel
    assert rows["b"]["Valeur publiée (rapport 2025)"] == 4
    text = indicator_comment(_indicator("c", "2025-10"))
    assert "Publié au rapport 2025 : 36,7 (octobre 2025)" in text


def _rows() -> list[StatusRow]:
    def row(dept, direction, source, due, **kw):
        return StatusRow(
            year=2025,
            department=dept,
            source_id=source,
            direction_fr=direction,
            due_date=due,
            required=True,
            **kw,
        )

    water, waste = "Direction du Petit Cycle de l'Eau", "Direction Déchets et Économie Circulaire"
    return [
        row(
            "water",
            water,
            "eau_udi",
            dt.date(2026, 1, 31),
            received=True,
            received_at=dt.datetime(2026, 1, 20, 9, 30),
            latest_outcome="accepted",
            in_force_file="eau_udi_2025.xlsx",
            in_force_received_at=dt.datetime(2026, 1, 20, 9, 30),
        ),
        row(
            "water",
            water,
            "eau_volumes",
            dt.date(2026, 1, 31),
            received=True,
            received_at=dt.datetime(2026, 2, 1, 8, 0),
            latest_outcome="rejected",
            problem_count=12,
            days_late=5,
        ),
        row("waste", waste, "dechets_collecte", dt.date(2026, 2, 15), days_late=5),
    ]


def test_status_counts_per_direction_and_progress():
    rows = _rows()
    assert direction_counts(rows) == [
        ("Direction du Petit Cycle de l'Eau", 2, 1, 1, 1),
        ("Direction Déchets et Économie Circulaire", 1, 0, 0, 1),
    ]
    assert progress(rows) == [
        (dt.date(2026, 1, 20), 0, 1),
        (dt.date(2026, 1, 31), 2, 1),
        (dt.date(2026, 2, 15), 3, 1),
    ]


def test_status_workbook_has_native_charts_and_the_same_bytes(tmp_path):
    first = export_status_xlsx(_rows(), tmp_path / "a" / "campagne_2025.xlsx")
    second = export_status_xlsx(_rows(), tmp_path / "b" / "campagne_2025.xlsx")
    assert first.read_bytes() == second.read_bytes()  # fixed document dates and zip times
    with zipfile.ZipFile(first) as archive:
        charts = sorted(n for n in archive.namelist() if n.startswith("xl/charts/chart"))
        xml = [archive.read(n).decode("utf-8") for n in charts]
    assert len(charts) == 2
    assert "<barChart>" in xml[0] and "<strRef><f>'Graphiques'!$A$3:$A$4</f>" in xml[0]
    assert "<lineChart>" in xml[1] and "<dateAx>" in xml[1]
    book = openpyxl.load_workbook(first)
    assert book.sheetnames[-1] == CHARTS
    sheet = book[CHARTS]
    assert [c.value for c in sheet[2]] == ["Direction", *DIRECTION_SERIES]
    assert [c.value for c in sheet[3]] == ["Direction du Petit Cycle de l'Eau", 2, 1, 1, 1]
    headers = next(r for r in sheet.iter_rows(min_row=5, values_only=True) if r[0] == "Date")
    assert list(headers[:3]) == ["Date", *PROGRESS_SERIES]
    assert book.properties.created == dt.datetime(2026, 2, 1, 8, 0)  # its latest delivery
