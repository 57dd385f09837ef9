"""The `new_deliveries` sensor end to end: a corrected workbook dropped into a built demo
warehouse is picked up by the sensor and its figure reaches `marts.fct_indicator_values`; the
number of assets that re-ran and the seconds it took are printed (run with ``-s`` to see
them). The built demo warehouse is the session's (conftest.demo_warehouse), copied.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from dagster import DagsterInstance, RunRequest, build_sensor_context
from support.sensors import (
    CORRECTED_COMMUNE,
    SUBSCRIBERS_AFTER,
    SUBSCRIBERS_BEFORE,
    sensor_and_repo,
    water_subscribers,
    write_corrected_reseau,
)

from dagster_project.settings import Settings


def test_corrected_delivery_reaches_the_marts_through_the_sensor(
    tmp_path, isolated_env, demo_warehouse
):
    # the session's demo warehouse (conftest.demo_warehouse: every demo workbook, one
    # uninterrupted `kpi run --today 2026-01-31`), copied with its Dagster instance
    assert demo_warehouse.returncode in (0, 3), demo_warehouse.stderr[-3000:]
    built = demo_warehouse.copy(tmp_path / "demo")
    home = Path(os.environ["DAGSTER_HOME"])  # the instance of isolated_env
    shutil.copytree(built.dagster_home, home, dirs_exist_ok=True)
    sources = built.sources
    settings = Settings(
        sources_dir=sources,
        warehouse=built.warehouse,
        releases_dir=built.releases,
        today="2026-01-31",
    )
    warehouse = settings.warehouse
    build_seconds = demo_warehouse.seconds
    before = water_subscribers(warehouse)
    assert before[CORRECTED_COMMUNE] == SUBSCRIBERS_BEFORE

    sensor, repo, defs = sensor_and_repo(settings)
    instance = DagsterInstance.get()  # DAGSTER_HOME of isolated_env
    try:
        # the sensor has been running: its cursor knows every delivery already ingested
        first = build_sensor_context(instance=instance, repository_def=repo)
        sensor(first)
        cursor = first.cursor

        # a department drops a corrected workbook next to the first one
        dropped = time.perf_counter()
        original = sources / "2025" / "water" / "eau_reseau_2025.xlsx"
        write_corrected_reseau(original, original.with_name("eau_reseau_2025_v2.xlsx"))
        context = build_sensor_context(instance=instance, repository_def=repo, cursor=cursor)
        request = sensor(context)
        evaluated = time.perf_counter()
        assert isinstance(request, RunRequest)
        assert request.tags["kpi/sources"] == "eau_reseau"

        job = defs.resolve_job_def("kpi_run")
        result = job.execute_in_process(
            instance=instance,
            asset_selection=list(request.asset_selection),
            tags=request.tags,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
        finished = time.perf_counter()
    finally:
        instance.dispose()
    assert result.success

    rerun = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"raw/eau_reseau", "marts/fct_indicator_values", "marts/p2_indicators"} <= rerun
    assert "raw/eau_volumes" not in rerun and "raw/dechets_collecte" not in rerun
    delta = SUBSCRIBERS_AFTER - SUBSCRIBERS_BEFORE
    built = water_subscribers(settings.build_warehouse)  # what the run wrote
    assert built[CORRECTED_COMMUNE] == SUBSCRIBERS_AFTER
    assert built[None] == before[None] + delta

    # analysts read the published copy: `kpi run` publishes after a successful run
    from dagster_project.warehouse.publication import publish

    publish(settings, run_id=result.run_id, note="test: livraison corrigée")
    published = time.perf_counter()
    after = water_subscribers(warehouse)
    assert after[CORRECTED_COMMUNE] == SUBSCRIBERS_AFTER
    assert after[None] == before[None] + delta

    total_assets = len(job.asset_layer.selected_asset_keys)  # what `kpi run` rebuilds
    checks = len(result.get_asset_check_evaluations())
    selected = len(request.asset_selection)
    print(
        f"\n[sensor latency] corrected eau_reseau 2025 → marts: {len(rerun)} of the "
        f"{total_assets} assets of kpi_run re-ran ({selected} selected, {checks} checks "
        f"evaluated); drop + sensor evaluation {evaluated - dropped:.2f} s, "
        f"run {finished - evaluated:.1f} s, publication {published - finished:.1f} s; "
        f"drop → figure in the build marts {finished - dropped:.1f} s, in the published copy "
        f"{published - dropped:.1f} s (full build of the demo {build_seconds:.1f} s; add up to "
        f"the sensor's polling interval when the daemon runs it)"
    )
