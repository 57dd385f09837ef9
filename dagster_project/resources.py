"""Dagster resources: the warehouse, the delivery folder and dbt."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import shutil
import sys
from functools import cached_property
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from dagster_dbt import DbtCliResource

from dagster_project.settings import DBT_PROJECT_DIR, Settings


class WarehouseResource(ConfigurableResource):
    """The DuckDB file the pipeline builds (``Settings.build_warehouse``, never the published
    copy analysts read)."""

    path: str

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        from dagster_project.publish import recover_after_crash

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        recover_after_crash(Path(self.path))  # a log DuckDB 1.5.5 cannot replay alone
        return duckdb.connect(self.path, read_only=read_only)


class SourcesResource(ConfigurableResource):
    """The delivery folder, and the clock deliveries are judged against (settable by tests)."""

    path: str
    today: str | None = None  # ISO date; None = the real date
    # every step of a run in this process (``kpi run``): an ingestion step may read the
    # workbooks of the run's other sources ahead (ingest/readahead.py); a step in a process
    # of its own reads ahead only its own source's
    read_ahead: bool = False

    def today_date(self) -> dt.date:
        return dt.date.fromisoformat(self.today) if self.today else dt.date.today()


def dbt_executable() -> str:
    """The dbt of this virtual environment, even when it is not activated."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


class KpiDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without two start-up costs it pays on every run (measured in
    bench/README.md, "Where the time goes"):

    - it asks the dbt executable for its version in a subprocess (``dbt --version``: a whole
      dbt start, ~3 s). When the executable is the one of this virtual environment, the version
      is the installed dbt-core's (tests/test_dbt_resource.py checks that they agree);
    - it builds a dbt-core adapter inside the Dagster process (~3.5 s: dbt's imports and its
      macro parsing) used only to fetch row counts and column metadata, which this project
      does not ask for. dagster-dbt supports running without one (the dbt Fusion engine has
      none); a run that calls ``fetch_row_counts()`` would need this override removed.

    Both are private methods of the pinned dagster-dbt; the test fails if an upgrade renames
    them, and every run of the test suite goes through this resource."""

    @cached_property
    def _cli_version(self):
        if Path(self.dbt_executable).parent != Path(sys.executable).parent:
            return super()._cli_version
        from packaging import version

        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def build_resources(settings: Settings | None = None, *, in_process: bool = False) -> dict:
    """``in_process``: every step runs in this process (``execute_in_process``)."""
    settings = settings or Settings.from_env()
    settings.export()
    return {
        "warehouse": WarehouseResource(path=str(settings.build_warehouse)),
        "sources": SourcesResource(
            path=str(settings.sources_dir), today=settings.today, read_ahead=in_process
        ),
        "dbt": KpiDbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
            target=settings.dbt_target,
        ),
    }
