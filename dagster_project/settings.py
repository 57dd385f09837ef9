"""Project paths and run-time settings, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# KPI_DBT_DIR lets benchmarks run a copy of the dbt project with a generated referential.
DBT_PROJECT_DIR = Path(os.environ.get("KPI_DBT_DIR", PROJECT_ROOT / "dbt")).resolve()
CONTRACTS_DIR = PROJECT_ROOT / "sources" / "contracts"
CATALOGUE_CSV = DBT_PROJECT_DIR / "seeds" / "indicator_catalogue.csv"
COMMUNES_CSV = DBT_PROJECT_DIR / "seeds" / "communes.csv"
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"


# Set in the runs a warm process makes (cli/warm.py).
IN_WARM_PROCESS_ENV = "KPI_IN_WARM_PROCESS"
# How a run is made, not what it computes: progress lines, waits, where Great Expectations
# validates, the warm process. Neither a project change (warehouse/inputs.py) nor a reason for
# dbt to parse again (defs/assets/dbt_inprocess.project_stamp).
EXECUTION_VARIABLES = frozenset(
    {
        "KPI_PROGRESS",
        "KPI_LOCK_WAIT",
        "KPI_GX_WORKER",
        "KPI_WARM",
        "KPI_WARM_IDLE",
        "KPI_WARM_DIR",
        IN_WARM_PROCESS_ENV,
    }
)


EVENT_BATCH_SIZE = "500"  # more than the events a run at SF1 plans (86)


def no_telemetry() -> None:
    """No telemetry, ever: Dagster's, dbt's, and any tool honouring DO_NOT_TRACK. Set when this
    module is imported (before dbt or Dagster is imported by anything below), and again by a
    process that replaces its environment (a run made by the warm process, cli/warm_server.py).
    With them, Dagster's batched writes of the events it plans at a run's start
    (``DAGSTER_EVENT_BATCH_SIZE``: written in one transaction by the project's SQLite storage,
    ``defs/storage.py``, instead of one event at a time; Dagster's PostgreSQL storage
    has its own batch writes)."""
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", EVENT_BATCH_SIZE)


no_telemetry()


def warehouse_path(path) -> Path:
    """The published copy's path, absolute, its folder resolved but not the file itself:
    ``warehouse.duckdb`` is a link to the publication in place (``.publications/current/``,
    see ``dagster_project.warehouse.publication``), and the build, the exports and the releases are found
    beside the link, never beside the file it designates."""
    path = Path(path)
    return path.parent.resolve() / path.name


@dataclass(frozen=True)
class Settings:
    """Where a run reads its deliveries and writes its warehouse."""

    sources_dir: Path
    warehouse: Path
    releases_dir: Path
    today: str | None = None  # ISO date the campaign clock reads (KPI_TODAY), None = real date
    dbt_target: str = "duckdb"

    @classmethod
    def from_env(cls) -> Settings:
        sources = Path(os.environ.get("KPI_SOURCES", PROJECT_ROOT / "sources")).resolve()
        warehouse = warehouse_path(
            os.environ.get("KPI_WAREHOUSE", PROJECT_ROOT / "warehouse.duckdb")
        )
        releases = Path(os.environ.get("KPI_RELEASES", warehouse.parent / "releases")).resolve()
        return cls(
            sources_dir=sources,
            warehouse=warehouse,
            releases_dir=releases,
            today=os.environ.get("KPI_TODAY") or None,
            dbt_target=os.environ.get("KPI_DBT_TARGET", "duckdb"),
        )

    @property
    def build_warehouse(self) -> Path:
        """The database the pipeline writes (ingestion, dbt, checks, freezes): ``.build/<name>``
        beside the published copy ``warehouse``, which analysts open read-only and which only
        ``dagster_project.warehouse.publication`` replaces (see docs/analysts.md)."""
        return self.warehouse.parent / ".build" / self.warehouse.name

    @property
    def exports_dir(self) -> Path:
        """Parquet exports of the published marts (``exports/marts/<table>.parquet``)."""
        return self.warehouse.parent / "exports"

    def export(self) -> None:
        """Make these settings visible to child processes (dbt reads KPI_BUILD_WAREHOUSE)."""
        os.environ["KPI_SOURCES"] = str(self.sources_dir)
        os.environ["KPI_WAREHOUSE"] = str(self.warehouse)
        os.environ["KPI_BUILD_WAREHOUSE"] = str(self.build_warehouse)
        os.environ["KPI_RELEASES"] = str(self.releases_dir)
        os.environ["KPI_DBT_TARGET"] = self.dbt_target
        if self.today:
            os.environ["KPI_TODAY"] = self.today
