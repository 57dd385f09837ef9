"""Dagster resources: the warehouse, the delivery folder and dbt."""

from __future__ import annotations

import datetime as dt
import shutil
import sys
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

    def today_date(self) -> dt.date:
        return dt.date.fromisoformat(self.today) if self.today else dt.date.today()


def dbt_executable() -> str:
    """The dbt of this virtual environment, even when it is not activated."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


def build_resources(settings: Settings | None = None) -> dict:
    settings = settings or Settings.from_env()
    settings.export()
    return {
        "warehouse": WarehouseResource(path=str(settings.build_warehouse)),
        "sources": SourcesResource(path=str(settings.sources_dir), today=settings.today),
        "dbt": DbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=dbt_executable(),
            target=settings.dbt_target,
        ),
    }
