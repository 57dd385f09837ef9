"""Automation: the `new_deliveries` sensor and the daily campaign schedule.

The sensor's pure logic (snapshot, changed sources), its evaluation against the real asset
graph, the schedule's open/closed decision and the `campaign/status` asset on a small
warehouse. A corrected workbook reaching the marts through the sensor, on the built demo
warehouse, is tests/integration/test_sensor.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    materialize,
)
from support.sensors import sensor_and_repo

from dagster_project.defs.resources import SourcesResource, WarehouseResource
from dagster_project.defs.sensors import changed_sources, snapshot
from dagster_project.settings import PROJECT_ROOT, Settings


def _touch(path: Path, content: bytes = b"x", mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _settings(root: Path, sources: Path, today: str | None = None) -> Settings:
    return Settings(
        sources_dir=sources,
        warehouse=root / "warehouse.duckdb",
        releases_dir=root / "releases",
        today=today,
    )


# --- sensor: pure logic ----------------------------------------------------------------------


def test_snapshot_lists_delivery_files_with_their_source(tmp_path):
    sources = tmp_path / "sources"
    reseau = _touch(sources / "2025" / "water" / "eau_reseau_2025.xlsx", b"abc", 1_700_000_000)
    _touch(sources / "2025" / "water" / "eau_reseau_2025.xlsx.rejet.csv")  # a report
    _touch(sources / "2025" / "water" / "notes.txt")  # not a delivery
    _touch(sources / "2025" / "water" / "~$eau_volumes_2025.xlsx")  # Excel lock file
    _touch(sources / "2025" / "waste" / "inconnu_2025.xlsx")  # matches no contract
    volumes = _touch(sources / "2024" / "water" / "eau_volumes_2024.csv", b"a;b\n")

    snap = snapshot(sources)

    assert set(snap) == {str(reseau), str(volumes)}
    assert snap[str(reseau)] == [reseau.stat().st_mtime_ns, 3, "eau_reseau"]
    assert snap[str(volumes)][2] == "eau_volumes"
    assert json.loads(json.dumps(snap)) == snap  # the sensor keeps it as its cursor


def test_snapshot_of_a_missing_folder_is_empty(tmp_path):
    assert snapshot(tmp_path / "absent") == {}


def test_changed_sources_new_modified_unchanged_removed():
    previous = {
        "a/eau_reseau_2025.xlsx": [1, 10, "eau_reseau"],
        "a/eau_volumes_2025.xlsx": [1, 10, "eau_volumes"],
        "a/dechets_collecte_2025.xlsx": [1, 10, "dechets_collecte"],
    }
    current = {
        "a/eau_reseau_2025.xlsx": [2, 10, "eau_reseau"],  # touched (new mtime)
        "a/eau_volumes_2025.xlsx": [1, 10, "eau_volumes"],  # unchanged
        "a/eau_qualite_2025.xlsx": [5, 7, "eau_qualite"],  # new
        "a/eau_udi_2025.xlsx": [5, 7, "eau_udi"],  # new
        # dechets_collecte removed: its delivery is withdrawn, the source runs again
    }
    assert changed_sources(previous, current) == [
        "dechets_collecte",
        "eau_qualite",
        "eau_reseau",
        "eau_udi",
    ]
    assert changed_sources(current, current) == []
    assert changed_sources({}, current) == sorted({e[2] for e in current.values()})
    size_only = {**current, "a/eau_volumes_2025.xlsx": [1, 11, "eau_volumes"]}
    assert changed_sources(current, size_only) == ["eau_volumes"]


# --- sensor: evaluation against the real asset graph ------------------------------------------


def test_sensor_requests_the_changed_source_and_its_downstream_only(tmp_path, isolated_env):
    sources = tmp_path / "sources"
    _touch(sources / "2025" / "water" / "eau_reseau_2025.xlsx", b"v1", 1_700_000_000)
    _touch(sources / "2025" / "water" / "eau_volumes_2025.xlsx", b"v1", 1_700_000_000)
    sensor, repo, _ = sensor_and_repo(_settings(tmp_path, sources))

    with DagsterInstance.ephemeral() as instance:
        first = build_sensor_context(instance=instance, repository_def=repo)
        request = sensor(first)  # no cursor yet: every delivery present is new
        assert isinstance(request, RunRequest)
        assert request.tags["kpi/sources"] == "eau_reseau,eau_volumes"
        cursor = first.cursor

        quiet = build_sensor_context(instance=instance, repository_def=repo, cursor=cursor)
        assert isinstance(sensor(quiet), SkipReason)

        corrected = sources / "2025" / "water" / "eau_reseau_2025_v2.xlsx"
        _touch(corrected, b"v2", 1_700_000_100)
        context = build_sensor_context(instance=instance, repository_def=repo, cursor=cursor)
        request = sensor(context)

    assert isinstance(request, RunRequest)
    assert request.tags == {"kpi/trigger": "sensor", "kpi/sources": "eau_reseau"}
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {
        "raw/eau_reseau",
        "staging/stg_eau_reseau",
        "marts/fct_indicator_values",
        "marts/p2_indicators",
    } <= selected
    assert "raw/eau_volumes" not in selected and "raw/eau_udi" not in selected
    assert not any(k.startswith(("raw_restricted/", "restricted/", "campaign/")) for k in selected)
    assert json.loads(context.cursor)[str(corrected)][2] == "eau_reseau"
    # the same state again gives the same run key: a tick replayed does not run twice
    again = build_sensor_context(
        instance=DagsterInstance.ephemeral(), repository_def=repo, cursor=cursor
    )
    assert sensor(again).run_key == request.run_key


def test_first_evaluation_takes_the_files_the_warehouse_recorded_as_seen(tmp_path, isolated_env):
    """Switching the sensor on does not rebuild what is already ingested: files recorded in
    ingest.deliveries (same year/department/name, size and modification time, even from a
    sources folder that moved) count as seen; a file the log does not know triggers its source."""
    import datetime as dt

    import duckdb

    from dagster_project.ingest.store import ensure_ingest_tables

    sources = tmp_path / "sources"
    reseau = _touch(sources / "2025" / "water" / "eau_reseau_2025.xlsx", b"v1", 1_700_000_000)
    _touch(sources / "2025" / "water" / "eau_volumes_2025.xlsx", b"v1", 1_700_000_000)
    settings = _settings(tmp_path, sources)
    settings.build_warehouse.parent.mkdir(parents=True)
    con = duckdb.connect(str(settings.build_warehouse))
    ensure_ingest_tables(con)
    con.execute(
        "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
        "file_path, file_name, file_sha256, file_size, received_at, processed_at, outcome, "
        "row_count, problem_count, warning_count, in_force) values ('d1', 2025, 'water', "
        "'eau_reseau', ?, 'eau_reseau_2025.xlsx', 'x', 2, ?, now(), 'accepted', 1, 0, 0, true)",
        [
            "/elsewhere/sources/2025/water/eau_reseau_2025.xlsx",
            dt.datetime.fromtimestamp(reseau.stat().st_mtime).replace(microsecond=0),
        ],
    )
    con.close()
    sensor, repo, _ = sensor_and_repo(settings)
    with DagsterInstance.ephemeral() as instance:
        first = build_sensor_context(instance=instance, repository_def=repo)
        request = sensor(first)
    assert isinstance(request, RunRequest)
    assert request.tags["kpi/sources"] == "eau_volumes"  # eau_reseau is in the log already


# --- schedule and campaign/status -------------------------------------------------------------

CAMPAIGN_2025 = PROJECT_ROOT / "sources" / "2025" / "campagne.yml"


@pytest.fixture
def campaign_sources(tmp_path):
    sources = tmp_path / "sources"
    (sources / "2025").mkdir(parents=True)
    shutil.copy(CAMPAIGN_2025, sources / "2025" / "campagne.yml")
    return sources


def _evaluate_schedule(sources: Path, today: str):
    from dagster_project.defs.schedules import campaign_status_daily

    resources = {"sources": SourcesResource(path=str(sources), today=today)}
    with (
        DagsterInstance.ephemeral() as instance,
        build_schedule_context(instance=instance, resources=resources) as context,
    ):
        return campaign_status_daily(context)


def test_schedule_runs_only_while_a_campaign_is_open(campaign_sources):
    from dagster_project.campaign.plan import load_campaign
    from dagster_project.defs.schedules import GRACE_DAYS, closing_date, last_due_date

    campaign = load_campaign(campaign_sources, 2025)
    opening, closing = campaign.opening_date, closing_date(campaign)
    assert closing == last_due_date(campaign) + dt.timedelta(days=GRACE_DAYS)
    day = dt.timedelta(days=1)

    before = _evaluate_schedule(campaign_sources, (opening - day).isoformat())
    assert isinstance(before, SkipReason) and "aucune campagne ouverte" in before.skip_message
    for today in (opening, opening + 90 * day, closing):
        request = _evaluate_schedule(campaign_sources, today.isoformat())
        assert isinstance(request, RunRequest), today
        assert request.tags == {"kpi/trigger": "schedule", "kpi/campaigns": "2025"}
    assert isinstance(_evaluate_schedule(campaign_sources, (closing + day).isoformat()), SkipReason)


def test_schedule_names_an_invalid_campaign_file(campaign_sources):
    (campaign_sources / "2024").mkdir()
    (campaign_sources / "2024" / "campagne.yml").write_text("campaign_year: [", encoding="utf-8")
    skip = _evaluate_schedule(campaign_sources, "2025-06-01")
    assert isinstance(skip, SkipReason)
    assert "invalide" in skip.skip_message and "2024" in skip.skip_message
    assert isinstance(_evaluate_schedule(campaign_sources, "2026-02-20"), RunRequest)


def test_status_asset_writes_the_table_and_warns_about_late_deliveries(campaign_sources, tmp_path):
    from dagster_project.defs.schedules import (
        LATE_CHECK_NAME,
        STATUS_ASSET_KEY,
        campaign_status_asset,
    )

    warehouse = tmp_path / "warehouse.duckdb"
    resources = {
        "sources": SourcesResource(path=str(campaign_sources), today="2026-02-20"),
        "warehouse": WarehouseResource(path=str(warehouse)),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize([campaign_status_asset], resources=resources, instance=instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node("campaign__status")
    assert materialization.asset_key == STATUS_ASSET_KEY
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["campagnes_ouvertes"] == "2025"
    assert metadata["en_retard"] > 0 and metadata["rejetées"] == 0
    assert "| eau_udi |" in metadata["retards_et_rejets"]  # due 31/01/2026, nothing delivered

    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == LATE_CHECK_NAME and not check.passed
    assert check.severity == AssetCheckSeverity.WARN
    assert "water/eau_udi (en retard de 20 jours)" in check.description

    con = duckdb.connect(str(warehouse), read_only=True)
    late = con.execute(
        "select count(*) from campaign.status where year = 2025 and days_late > 0"
    ).fetchone()[0]
    con.close()
    assert late == metadata["en_retard"]


def test_status_asset_outside_campaigns_writes_nothing_and_passes(campaign_sources, tmp_path):
    from dagster_project.defs.schedules import campaign_status_asset

    warehouse = tmp_path / "warehouse.duckdb"
    resources = {
        "sources": SourcesResource(path=str(campaign_sources), today="2025-09-01"),
        "warehouse": WarehouseResource(path=str(warehouse)),
    }
    with DagsterInstance.ephemeral() as instance:
        result = materialize([campaign_status_asset], resources=resources, instance=instance)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    (materialization,) = result.asset_materializations_for_node("campaign__status")
    assert materialization.metadata["campagnes_ouvertes"].value == "aucune"


def test_definitions_wire_the_schedule_and_keep_kpi_run_unchanged():
    from dagster_project.defs.definitions import build_definitions

    defs = build_definitions()
    from dagster_project.defs.schedules import JOB_NAME, SCHEDULE_NAME, STATUS_ASSET_KEY

    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    assert schedule.job_name == JOB_NAME and schedule.cron_schedule == "0 7 * * *"
    assert defs.resolve_job_def(JOB_NAME).asset_layer.selected_asset_keys == {STATUS_ASSET_KEY}
    kpi_run = defs.resolve_job_def("kpi_run").asset_layer.selected_asset_keys
    assert STATUS_ASSET_KEY not in kpi_run and AssetKey(["raw", "eau_reseau"]) in kpi_run
