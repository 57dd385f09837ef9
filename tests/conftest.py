from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest

# Tests never use the developer's key or warehouse.
os.environ.setdefault("KPI_PSEUDONYM_KEY", "test-key-" + "0" * 40)
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
# `kpi run` in a test runs in its own process: no warm process left behind by a test
# (tests/integration/test_warm_process.py starts its own, in its own folder, and stops them)
os.environ["KPI_WARM"] = "0"
# the shared helpers' asserts explain themselves as the tests' do
pytest.register_assert_rewrite("support")

from support import TESTS_DIR  # noqa: E402
from support.demo import DEMO_TODAY, BuiltDemo, DemoCampaign  # noqa: E402
from support.settings import SETTINGS_VARS  # noqa: E402
from support.shared import exclusive, session_dir  # noqa: E402

from dagster_project.contracts.model import default_contracts  # noqa: E402
from dagster_project.ingest.reference_data import load_catalogue, load_communes  # noqa: E402
from dagster_project.ingest.validation.context import IngestContext  # noqa: E402

UNIT_DIR = TESTS_DIR / "unit"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """tests/unit holds fast tests only: a test there marked slow (by itself, its class or its
    module) is a collection error, whatever ``-m`` says. Slow tests go to tests/integration,
    whose conftest marks them all."""
    slow_units = [
        item.nodeid
        for item in items
        if item.path.resolve().is_relative_to(UNIT_DIR) and item.get_closest_marker("slow")
    ]
    if slow_units:
        raise pytest.UsageError(
            "slow tests under tests/unit (move them to tests/integration): " + ", ".join(slow_units)
        )


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config, specs):
    """Under pytest-xdist (`make test`: ``-n 2``), before its workers start: dbt's manifest
    parsed into dbt/target when stale (a clean clone has none), once. Each `kpi run` parses it
    there when stale: the two workers' first runs would otherwise both write it at the same
    time, and one read the other's half-written manifest.json."""
    from dagster_project.defs.assets.dbt import ensure_manifest

    ensure_manifest()


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


# --- what a test leaves in os.environ ----------------------------------------------------------
# An in-process `kpi` command exports its Dagster home (``ensure_dagster_home``) and its settings
# (``Settings.export``) to os.environ. Under pytest-xdist (`make test`) the tests of a process
# are not those of a one-process run, nor in the same order: none may inherit what an earlier
# one left, and none may share a Dagster instance with the other process (a command waits for
# the runs in progress of its instance).


@pytest.fixture(scope="session", autouse=True)
def _session_dagster_home(tmp_path_factory):
    """The Dagster home of the tests that name none: the session's (each process's), never
    the project's ``.dagster_home/`` nor the developer's DAGSTER_HOME."""
    patch = pytest.MonkeyPatch()
    patch.setenv("DAGSTER_HOME", str(tmp_path_factory.mktemp("dagster_home")))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _restore_exported_env():
    """DAGSTER_HOME and the settings variables as they were before the test, after it."""
    names = ("DAGSTER_HOME", *SETTINGS_VARS)
    before = {name: os.environ.get(name) for name in names}
    yield
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# what building definitions exports to os.environ (``Settings.export``)
KPI_VARS = ("KPI_SOURCES", "KPI_WAREHOUSE", "KPI_RELEASES", "KPI_DBT_TARGET", "KPI_TODAY")


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    """Building definitions exports the settings to os.environ: record and restore them."""
    for name in KPI_VARS:
        monkeypatch.setenv(name, "recorded")  # remembers the original value (or its absence)
        monkeypatch.delenv(name)
    from dagster_project.defs.instance import DAGSTER_YAML

    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML, encoding="utf-8")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return monkeypatch


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


@pytest.fixture(scope="session")
def demo_warehouse(tmp_path_factory) -> BuiltDemo:
    """The demo campaign (``generate_demo``: every workbook of 2023-2025) after one
    uninterrupted `kpi run --today 2026-01-31` in a child process, once per session: under
    pytest-xdist (`make test`), built by the first worker that needs it, the others waiting
    for it (``support.shared``).

    Shared by the slow tests that need a built demo warehouse (tests/integration:
    test_end_to_end.py, test_sensor.py…): read it or ``.copy()`` it, never write it. The
    run's exit code and output are kept for the tests to check (the fixture itself asserts
    nothing)."""
    shared = session_dir(tmp_path_factory)
    root, outcome = shared / "demo_warehouse", shared / "demo_warehouse.json"
    with exclusive(shared / "demo_warehouse.lock"):
        if not outcome.exists():
            outcome.write_text(json.dumps(_build_demo(root)), encoding="utf-8")
    return BuiltDemo(root, **json.loads(outcome.read_text(encoding="utf-8")))


def _build_demo(root: Path) -> dict:
    from dagster_project.demo import generate_demo

    shutil.rmtree(root, ignore_errors=True)  # a build a killed worker left half done
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
    return {
        "returncode": result.returncode,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "seconds": time.perf_counter() - started,
    }
