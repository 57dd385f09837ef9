"""Reading ahead (ingest/readers/readahead.py) in a whole Dagster run: the first ingestion
step schedules the workbooks of the run's other sources."""

from __future__ import annotations

from pathlib import Path


# a Dagster run (11 s)
def test_a_whole_run_reads_ahead_the_other_sources(tmp_path, monkeypatch):
    """In ``kpi run`` (every step in one process) the first ingestion step schedules the
    workbooks of the run's other sources. Dagster gives a run of the whole job an empty
    asset selection, not None: read as « everything » (it was read as « nothing », and the
    read ahead never began in ``kpi run``)."""
    import shutil

    from dagster import DagsterInstance

    from dagster_project.defs.definitions import build_definitions
    from dagster_project.ingest.readers import readahead
    from dagster_project.settings import PROJECT_ROOT, Settings

    sources = tmp_path / "sources"
    (sources / "2025" / "water").mkdir(parents=True)
    for name in ("eau_udi_2025.xlsx", "eau_reseau_2025.xlsx"):
        shutil.copy2(PROJECT_ROOT / "sources" / "2025" / "water" / name, sources / "2025" / "water")
    scheduled: list[list[str]] = []
    monkeypatch.setattr(
        readahead.READ_AHEAD,
        "schedule",
        lambda paths: scheduled.append(sorted(Path(p).name for p in paths)),
    )
    settings = Settings(
        sources_dir=sources, warehouse=tmp_path / "warehouse.duckdb", releases_dir=tmp_path / "r"
    )
    job = build_definitions(settings, in_process=True).resolve_job_def("ingestion")
    instance = DagsterInstance.ephemeral()
    try:
        result = job.execute_in_process(
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
        )
    finally:
        instance.dispose()
    assert result.success
    assert scheduled[0] == ["eau_reseau_2025.xlsx", "eau_udi_2025.xlsx"]
