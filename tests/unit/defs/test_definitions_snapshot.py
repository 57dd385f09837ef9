"""Snapshot of the Dagster definitions: every asset key with its group, asset check, job, sensor
(with its default state) and schedule (with its cron).

Dagster keys its run history, materialisations and sensor states by these names: a renamed
asset key orphans the history of the old one without any error. This test makes every such
change visible in review. When a change is intended, rewrite the snapshot
(tests/snapshots/definitions.json) with
``KPI_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/unit/defs/test_definitions_snapshot.py`` and
say in docs/cli.md (« Changements ») what users lose or must do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).resolve().parents[2] / "snapshots" / "definitions.json"


def definitions_snapshot(defs) -> dict:
    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): graph.get(key).group_name
        for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string())
    }
    checks = sorted(f"{c.asset_key.to_user_string()}:{c.name}" for c in graph.asset_check_keys)
    jobs = sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__"))
    sensors = {s.name: str(s.default_status.value) for s in defs.sensors or []}
    schedules = {s.name: s.cron_schedule for s in defs.schedules or []}
    return {
        "assets": assets,
        "asset_checks": checks,
        "jobs": jobs,
        "sensors": dict(sorted(sensors.items())),
        "schedules": dict(sorted(schedules.items())),
    }


def test_definitions_match_the_snapshot():
    from dagster_project.definitions import defs

    current = definitions_snapshot(defs())
    if os.environ.get("KPI_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n", "utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    for part in expected:
        added = sorted(set(current[part]) - set(expected[part]))
        removed = sorted(set(expected[part]) - set(current[part]))
        assert not (added or removed), (
            f"{part}: added {added}, removed {removed}. A renamed key orphans its history; "
            "if intended, see this module's docstring."
        )
    assert current == expected, "a group, a sensor's default state or a cron changed"
