"""Dagster resources: the warehouse, the delivery folder, dbt and Great Expectations."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import shutil
import sys
from functools import cached_property
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from dagster_dbt import DbtCliResource
from pydantic import PrivateAttr

from dagster_project.defs.assets.dbt_inprocess import drop_parse_ahead
from dagster_project.quality import gx_worker
from dagster_project.settings import DBT_PROJECT_DIR, Settings
from dagster_project.warehouse import access

# Every asset and check that opens the build database runs in this Dagster concurrency pool;
# the project's instance limits it to one step at a time (dagster_project/defs/instance.py).
WAREHOUSE_POOL = "duckdb"


class WarehouseResource(ConfigurableResource):
    """The DuckDB file the pipeline builds (``Settings.build_warehouse``, never the published
    copy analysts read). Connections wait their turn (``dagster_project.warehouse.access``):
    a step never fails because a colleague reads, or another step writes, at that moment."""

    path: str
    _run_id: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._run_id = getattr(context, "run_id", None)

    def holder(self, step: str | None = None) -> str:
        """How other processes name this one while it holds the database (French)."""
        run = f"l'exécution Dagster {self._run_id[:8]}" if self._run_id else "une exécution Dagster"
        return f"{run} ({step})" if step else run

    @contextlib.contextmanager
    def writing(self, step: str | None = None):
        """Hold the write access for a whole step (dbt's own process writes meanwhile)."""
        with access.access(Path(self.path), "write", self.holder(step)):
            yield

    def connect(
        self, read_only: bool = False, step: str | None = None
    ) -> access.WarehouseConnection:
        return access.connect(Path(self.path), read_only=read_only, purpose=self.holder(step))


class GreatExpectationsResource(ConfigurableResource):
    """Where the checks' Great Expectations runs: a worker process started when the run
    starts (``quality/gx_worker.py``: it imports GX on the other core while the first steps
    run, then validates the suites' frames), stopped when the run ends. Dagster initialises
    a run's resources before its first step, in the runs the daemon launches as in
    ``kpi run`` (which starts the worker even earlier). ``KPI_GX_WORKER=0``: in the step's
    own process."""

    def setup_for_execution(self, context: InitResourceContext) -> None:
        gx_worker.start()

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        gx_worker.stop()


class SourcesResource(ConfigurableResource):
    """The delivery folder, and the clock deliveries are judged against (settable by tests)."""

    path: str
    today: str | None = None  # ISO date; None = the real date
    # every step of a run in this process (``kpi run``): an ingestion step may read the
    # workbooks of the run's other sources ahead (ingest/readers/readahead.py); a step in a
    # process of its own reads ahead only its own source's
    read_ahead: bool = False

    def today_date(self) -> dt.date:
        return dt.date.fromisoformat(self.today) if self.today else dt.date.today()


def dbt_executable() -> str:
    """The dbt of this virtual environment, even when it is not activated."""
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else (shutil.which("dbt") or "dbt")


class KpiDbtCliResource(DbtCliResource):
    """The ``dbt`` resource: where the dbt project and its profiles are, and which target. The
    project's own dbt step runs dbt in its process with these (``assets/dbt_inprocess.py``);
    ``dbt.cli(...)`` stays available to an op that wants dagster-dbt's ``dbt`` process, without
    two start-up costs dagster-dbt pays on every invocation (measured in bench/README.md,
    "Where the time goes"):

    - it asks the dbt executable for its version in a subprocess (``dbt --version``: a whole
      dbt start, ~3 s). When the executable is the one of this virtual environment, the version
      is the installed dbt-core's (tests/unit/defs/test_dbt_resource.py checks that they agree);
    - it builds a dbt-core adapter inside the Dagster process (~3.5 s: dbt's imports and its
      macro parsing) used only to fetch row counts and column metadata, which this project
      does not ask for. dagster-dbt supports running without one (the dbt Fusion engine has
      none); a run that calls ``fetch_row_counts()`` would need this override removed.

    Both are private methods of the pinned dagster-dbt; the test fails if an upgrade renames
    them, and every run of the test suite goes through this resource."""

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        # a dbt parse started ahead (by the raw checks) that no dbt step took: ended, forgotten
        drop_parse_ahead()
        super().teardown_after_execution(context)

    @cached_property
    def _cli_version(self):
        if Path(self.dbt_executable).parent != Path(sys.executable).parent:
            return super()._cli_version
        from packaging import version

        return version.parse(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def build_resources(settings: Settings | None = None, *, in_process: bool = True) -> dict:
    """``in_process``: every step of a run runs in one process (``kpi run``, and the runs the
    daemon launches: the definitions' executor is Dagster's in-process executor), so an
    ingestion step may read ahead the workbooks of the run's other sources."""
    settings = settings or Settings.from_env()
    settings.export()
    return {
        "warehouse": WarehouseResource(path=str(settings.build_warehouse)),
        "gx": GreatExpectationsResource(),
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
