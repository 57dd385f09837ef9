from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import openpyxl
import pytest

# Tests never use the developer's key or warehouse.
os.environ.setdefault("KPI_PSEUDONYM_KEY", "test-key-" + "0" * 40)
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from dagster_project.contracts import default_contracts  # noqa: E402
from dagster_project.ingest.engine import IngestContext  # noqa: E402
from dagster_project.ingest.pipeline import load_catalogue, load_communes  # noqa: E402


@pytest.fixture(scope="session")
def contracts():
    return default_contracts()


@pytest.fixture(scope="session")
def communes():
    return load_communes()


@pytest.fixture
def make_context(communes):
    def factory(year: int = 2025, department: str = "water", references=None, **kwargs):
        refs = references or {}
        return IngestContext(
            campaign_year=year,
            department=department,
            communes=communes,
            today=kwargs.pop("today", dt.date(2026, 11, 25)),
            references=lambda source, column: refs.get((source, column)),
            catalogue=kwargs.pop("catalogue", load_catalogue()),
            **kwargs,
        )

    return factory


@pytest.fixture
def workbook(tmp_path):
    """Write a small workbook: sheets = {name: [row, ...]}; returns its path."""

    counter = {"n": 0}

    def write(
        sheets: dict[str, list[list[object]]], name: str | None = None, errors=(), hidden_rows=()
    ):
        counter["n"] += 1
        wb = openpyxl.Workbook()
        wb.remove(wb.active)
        for sheet_name, rows in sheets.items():
            ws = wb.create_sheet(sheet_name)
            for row in rows:
                ws.append(row)
        for sheet_name, cell, text in errors:
            wb[sheet_name][cell].value = text
            wb[sheet_name][cell].data_type = "e"
        for sheet_name, row in hidden_rows:
            wb[sheet_name].row_dimensions[row].hidden = True
        path = Path(tmp_path) / (name or f"delivery_{counter['n']}.xlsx")
        wb.save(path)
        return path

    return write
