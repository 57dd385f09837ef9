"""No file can stop a run, through Dagster: the ingestion job's step succeeds whatever the
files (a delivery that crashes the engine, a number too large, a link), each recorded as
rejected with its French reason. The rest of issue 15 is
tests/unit/ingest/test_ingest_safety.py.
"""

from __future__ import annotations

import duckdb
from support.deliveries import ACTIVITY, GOOD, MIDDLE, UNREADABLE_START, crash_on, deliver, logged

from dagster_project.ingest import pipeline


# a Dagster run (about 20 s)
def test_the_ingestion_step_succeeds_whatever_the_files(tmp_path, workbook, monkeypatch):
    from dagster import DagsterInstance

    from dagster_project.defs.definitions import build_definitions
    from dagster_project.settings import Settings

    sources = tmp_path / "sources"
    water = sources / "2025" / "water"
    good = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    crashing = deliver(workbook, water, f"{ACTIVITY}_2025_b.xlsx", MIDDLE, 1_700_001_000)
    huge = deliver(
        workbook, water, f"{ACTIVITY}_2025_c.xlsx", [[*GOOD[0][:2], 1e300, 0, 1]], 1_700_002_000
    )
    (water / f"{ACTIVITY}_2025_d.xlsx").symlink_to(tmp_path / "absent.xlsx")
    planted = crash_on(crashing.name, OverflowError("int too large"), pipeline.validate_delivery)
    monkeypatch.setattr(pipeline, "validate_delivery", planted)
    settings = Settings(
        sources_dir=sources, warehouse=tmp_path / "warehouse.duckdb", releases_dir=tmp_path / "r"
    )
    job = build_definitions(settings, in_process=True).resolve_job_def("ingestion")
    instance = DagsterInstance.ephemeral()
    try:
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            raise_on_error=False,
        )
    finally:
        instance.dispose()
    assert result.success
    step = "ingest_sources"  # every source that references no other, in one step
    assert any(
        e.step_key == step and e.event_type_value == "STEP_SUCCESS" for e in result.all_node_events
    )
    with duckdb.connect(str(settings.build_warehouse), read_only=True) as con:
        assert logged(con, good.name)["in_force"]
        assert logged(con, crashing.name)["reasons"][0].startswith(UNREADABLE_START)
        assert logged(con, huge.name)["reasons"][0].startswith("nombre trop grand")
        assert logged(con, f"{ACTIVITY}_2025_d.xlsx")["outcome"] == "rejected"
