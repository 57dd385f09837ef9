"""Sensor: a new or changed delivery under ``sources/`` triggers the ingestion of its source
and what depends on it (staging, indicators, marts), not a rebuild of unrelated sources."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from dagster import (
    AssetSelection,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from dagster_project.assets.ingestion import raw_asset_key
from dagster_project.contracts import default_contracts
from dagster_project.ingest.pipeline import discover

SENSOR_INTERVAL_SECONDS = 30


def snapshot(sources_dir: Path) -> dict[str, list]:
    """path -> [mtime_ns, size, source_id] of every delivery file."""
    return {
        str(d.path): [d.path.stat().st_mtime_ns, d.path.stat().st_size, d.source_id]
        for d in discover(sources_dir, default_contracts())
    }


def changed_sources(previous: dict[str, list], current: dict[str, list]) -> list[str]:
    changed = {
        entry[2]
        for path, entry in current.items()
        if previous.get(path, [None, None])[:2] != entry[:2]
    }
    return sorted(changed)


def build_delivery_sensor(job, sources_path: str):
    @sensor(
        name="new_deliveries",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.STOPPED,
        description="Surveille sources/ : une livraison nouvelle ou modifiée déclenche l'ingestion "
        "de sa source et la reconstruction de ce qui en dépend.",
    )
    def new_deliveries(context: SensorEvaluationContext):
        from dagster_project.instance import fail_dead_cli_runs

        fail_dead_cli_runs(context.instance)  # a killed `kpi run` must not hold the queue
        previous = json.loads(context.cursor) if context.cursor else {}
        current = snapshot(Path(sources_path))
        sources = changed_sources(previous, current)
        if not sources:
            context.update_cursor(json.dumps(current, sort_keys=True))
            return SkipReason("aucune livraison nouvelle ou modifiée")
        contracts = default_contracts()
        graph = context.repository_def.asset_graph
        keys = AssetSelection.assets(*(raw_asset_key(contracts[s]) for s in sources)).downstream()
        selection = sorted(keys.resolve(graph), key=lambda k: k.to_user_string())
        state = json.dumps(current, sort_keys=True)
        fingerprint = ",".join(sources) + ":" + hashlib.sha256(state.encode()).hexdigest()[:16]
        context.update_cursor(state)
        return RunRequest(
            run_key=fingerprint,
            asset_selection=selection,
            tags={"kpi/trigger": "sensor", "kpi/sources": ",".join(sources)},
        )

    return new_deliveries
