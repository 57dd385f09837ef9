"""The dbt project as Dagster assets (dagster-dbt), with one translator for keys and groups.

Asset keys are ``[<schema>, <model>]`` (``marts/fct_indicator_values``); dbt sources keep
``[<source>, <table>]``, so ``source('raw', 'eau_volumes')`` is the ingestion asset
``raw/eau_volumes``. dbt's data tests run in ``dbt build`` and are recorded in
audit.dbt_results; the Great Expectations suites are the Dagster asset checks. dbt's unit
tests check the SQL logic, not the data: they are left out of the production build
(``DBT_BUILD_ARGS``) and run in the test suite (tests/test_dbt_unit.py).
"""

import functools
import json
import shutil
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, AssetKey
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from dagster_project.defs.resources import WAREHOUSE_POOL, WarehouseResource, dbt_executable
from dagster_project.lib.progress import progress
from dagster_project.settings import DBT_PROJECT_DIR

DBT_PROJECT = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The production build: models, seeds and data tests. The 71 unit tests check the SQL on fixed
# inputs, a fixed cost of every run whatever the data (bench/README.md, proposal 5): they run in
# the test suite instead. dagster-dbt passes this flag through untouched, also when it turns a
# large subset selection into a generated --selector (dbt applies it there too).
DBT_BUILD_ARGS = ["build", "--exclude-resource-type", "unit_test"]


def _newest_input_mtime() -> float:
    newest = 0.0
    for folder in ("models", "seeds", "macros", "tests", "snapshots", "analyses"):
        for path in (DBT_PROJECT_DIR / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    for name in ("dbt_project.yml", "profiles.yml"):
        newest = max(newest, (DBT_PROJECT_DIR / name).stat().st_mtime)
    return newest


def ensure_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than any project file."""
    manifest = Path(DBT_PROJECT.manifest_path)
    if manifest.exists() and manifest.stat().st_mtime >= _newest_input_mtime():
        return manifest
    subprocess.run(
        [dbt_executable(), "parse", "--quiet", "--profiles-dir", str(DBT_PROJECT_DIR)],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )
    return manifest


class KpiDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["source_name"], dbt_resource_props["name"]])
        schema = dbt_resource_props.get("config", {}).get("schema") or "main"
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "seed":
            return "reference"
        fqn = dbt_resource_props.get("fqn", [])
        return fqn[1] if len(fqn) > 2 else "dbt"


def record_dbt_results(warehouse: WarehouseResource, run_id: str, run_results: dict) -> int:
    """Keep dbt's test and model results in the warehouse (audit.dbt_results); failures count."""
    rows = []
    for result in run_results.get("results", []):
        rows.append(
            (
                run_id,
                result.get("unique_id"),
                result.get("status"),
                result.get("failures"),
                (result.get("message") or "")[:2000],
                result.get("execution_time"),
            )
        )
    with warehouse.connect(step="résultats de dbt build") as con:
        con.execute("create schema if not exists audit")
        con.execute(
            "create table if not exists audit.dbt_results (run_id varchar, unique_id varchar, "
            "status varchar, failures integer, message varchar, execution_time double, "
            "recorded_at timestamp default current_timestamp)"
        )
        con.execute("delete from audit.dbt_results where run_id = ?", [run_id])
        if rows:
            con.executemany(
                "insert into audit.dbt_results (run_id, unique_id, status, failures, message, "
                "execution_time) values (?, ?, ?, ?, ?, ?)",
                rows,
            )
    return sum(1 for r in rows if r[2] in ("fail", "error"))


KEEP_INVOCATION_DIRS = 10
PRUNE_AFTER_SECONDS = 3600.0


def prune_invocation_dirs(
    target: Path,
    keep: int = KEEP_INVOCATION_DIRS,
    older_than: float = PRUNE_AFTER_SECONDS,
    now: float | None = None,
) -> list[Path]:
    """dagster-dbt gives each dbt invocation its own folder in dbt/target (``dbt_models-<run>-
    <id>``: compiled SQL, run_results.json, dbt's debug log; 20-30 MB). Without pruning, a
    daily schedule fills a disk: keep the newest ``keep``, remove older ones once they are an
    hour old (a concurrent run may still be using its own). Their results are kept in
    audit.dbt_results; the run log has dbt's output."""
    now = time.time() if now is None else now
    folders = sorted(
        ((p.stat().st_mtime, p) for p in target.glob("dbt_models-*") if p.is_dir()),
        reverse=True,
    )
    removed = []
    for mtime, folder in folders[keep:]:
        if now - mtime > older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


@functools.cache
def build_dbt_assets():
    """The dbt project's assets, built from its manifest (parsed first when stale): called when
    the definitions are built, never at import, so importing this module starts no dbt."""

    @dbt_assets(
        manifest=ensure_manifest(),
        project=DBT_PROJECT,
        # dbt's ~320 data tests are not mirrored as Dagster asset checks: each would add events to
        # the run's event log (measured: the dbt step 30 s by hand, 44-76 s inside Dagster). They
        # still run in `dbt build`, their results go to audit.dbt_results and a failure blocks the
        # freeze; the Great Expectations suites are the asset checks the UI shows.
        dagster_dbt_translator=KpiDbtTranslator(
            settings=DagsterDbtTranslatorSettings(enable_asset_checks=False)
        ),
        pool=WAREHOUSE_POOL,
    )
    def dbt_models(
        context: AssetExecutionContext, dbt: DbtCliResource, warehouse: WarehouseResource
    ):
        # dbt's own process writes the build database: this step holds the write access for it
        # (dagster_project.warehouse.access), so no reader or other writer opens it meanwhile
        with warehouse.writing("dbt build"):
            progress("dbt build : modèles, seeds et tests")
            invocation = dbt.cli(DBT_BUILD_ARGS, context=context, raise_on_error=False)
            yield from invocation.stream()
            try:
                results = invocation.get_artifact("run_results.json")
            except Exception:  # no artifact when dbt could not start at all
                results = {}
            failures = record_dbt_results(warehouse, context.run_id, results)
        prune_invocation_dirs(Path(invocation.target_path).parent)
        progress(f"dbt build terminé : {failures} échec(s)")
        if not invocation.is_successful() and not results:
            raise RuntimeError(
                "dbt n'a pas pu s'exécuter : " + json.dumps(invocation.get_error() or "")
            )

    return dbt_models
