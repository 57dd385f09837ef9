from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pytest

# Tests never use the developer's key or warehouse.
os.environ.setdefault("KPI_PSEUDONYM_KEY", "test-key-" + "0" * 40)
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

from dagster_project.contracts.model import default_contracts  # noqa: E402
from dagster_project.ingest.pipeline import load_catalogue, load_communes  # noqa: E402
from dagster_project.ingest.validation.context import IngestContext  # noqa: E402


@pytest.fixture(scope="session")
def contracts():
    return default_contracts()


@pytest.fixture(scope="session")
def communes():
    return load_communes()


def _validation_outcome(result) -> dict:
    """What two validations of the same file must share: verdict, problems with their row,
    column, value and reason, warnings, accepted rows and their lineage."""
    return {
        "accepted": result.accepted,
        "sheet": result.sheet,
        "problems": [(p.row, p.column, p.value, p.reason) for p in result.problems],
        "warnings": [(p.row, p.column, p.reason) for p in result.warnings],
        "omitted": result.omitted_problems,
        "total_rows": result.total_rows,
        "rows": result.records,
    }


@pytest.fixture
def outcome():
    """``outcome(result)``: a ValidationResult as a comparable dict (two paths, one answer)."""
    return _validation_outcome


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


# --- the demo campaign, built once per session (slow tests) ------------------------------------

DEMO_TODAY = "2026-01-31"
# what `Settings.export()` of an in-process run may have left in os.environ: never inherited
SETTINGS_VARS = (
    "KPI_SOURCES",
    "KPI_WAREHOUSE",
    "KPI_BUILD_WAREHOUSE",
    "KPI_RELEASES",
    "KPI_DBT_TARGET",
    "KPI_TODAY",
)


@dataclass(frozen=True)
class DemoCampaign:
    """A demo campaign folder: ``sources/`` (2023-2025), ``warehouse.duckdb`` (the published
    copy) with ``.build/warehouse.duckdb`` and ``exports/``, ``dagster_home/``, ``releases/``
    (none yet)."""

    root: Path

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"


@dataclass(frozen=True)
class BuiltDemo(DemoCampaign):
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    def copy(self, destination: Path) -> DemoCampaign:
        """A private copy of the whole tree (modification times kept: they date the
        deliveries; the ``exports/marts`` symbolic link kept relative)."""
        shutil.copytree(self.root, destination, symlinks=True)
        return DemoCampaign(destination)


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> BuiltDemo:
    """The demo campaign (``generate_demo``: every workbook of 2023-2025) after one
    uninterrupted `kpi run --today 2026-01-31` in a child process, once per session.

    Shared by the slow tests that need a built demo warehouse (test_end_to_end.py,
    test_sensor.py): read it or ``.copy()`` it, never write it. The run's exit code and output
    are kept for the tests to check (the fixture itself asserts nothing)."""
    from dagster_project.demo import generate_demo

    root = tmp_path_factory.mktemp("demo_warehouse")
    demo = DemoCampaign(root)
    generate_demo(demo.sources)
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    env["DAGSTER_HOME"] = str(demo.dagster_home)
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "kpi"),
            "run",
            "--sources",
            str(demo.sources),
            "--warehouse",
            str(demo.warehouse),
            "--today",
            DEMO_TODAY,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    return BuiltDemo(
        root,
        returncode=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
        seconds=time.perf_counter() - started,
    )
