"""Sensors: a new or changed delivery under ``sources/`` triggers the ingestion of its source
and what depends on it (staging, indicators, marts), not a rebuild of unrelated sources
(``new_deliveries``); a successful run launched through Dagster publishes the analysts' copy
unless a blocking check of that run failed (``publish_after_run``, with
``warehouse.publication``); a ``kpi run`` killed before it recorded its end is marked failed
(``interrupted_kpi_runs``)."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)

from dagster_project.contracts.model import default_contracts
from dagster_project.defs.assets.ingestion import raw_asset_key
from dagster_project.defs.instance import CLI_TRIGGER
from dagster_project.ingest.discovery import discover, printable
from dagster_project.lib.hashing import sha256_text
from dagster_project.release.gate import blocking_failures
from dagster_project.settings import Settings
from dagster_project.warehouse.access import access
from dagster_project.warehouse.build import connect_build, quote_ident
from dagster_project.warehouse.publication import publish

SENSOR_INTERVAL_SECONDS = 30
PUBLICATION_SENSOR_INTERVAL_SECONDS = 5


def snapshot(sources_dir: Path) -> dict[str, list]:
    """path -> [mtime_ns, size, source_id] of every delivery file (a link's own, never what
    it points to: a link is a delivery refused with a report, ``discovery.refusal_of``)."""
    found = {}
    for d in discover(sources_dir, default_contracts()):
        try:
            stat = d.path.lstat()
        except FileNotFoundError:  # removed since discover listed it
            continue
        found[str(d.path)] = [stat.st_mtime_ns, stat.st_size, d.source_id]
    return found


def recorded_entries(build: Path, sources_dir: Path, current: dict[str, list]) -> dict[str, list]:
    """The entries of ``current`` whose file the warehouse already recorded (same
    ``<year>/<department>/<name>``, size and modification time in ``ingest.deliveries``: the
    test ``Ingestor.read_ahead`` uses, robust to a sources folder moved elsewhere): on
    its first evaluation the sensor takes them as seen, so switching it on does not rebuild
    everything. Raises ``WarehouseBusy`` when a run holds the database for 10 s."""
    from dagster_project.warehouse.access import connect

    if not build.exists():
        return {}
    with connect(build, read_only=True, purpose="le capteur new_deliveries", wait=10) as con:
        if not con.execute(
            "select count(*) from duckdb_tables() where schema_name = 'ingest' "
            "and table_name = 'deliveries'"
        ).fetchone()[0]:
            return {}
        recorded = {
            (_tail(path), size, received)
            for path, size, received in con.execute(
                "select file_path, file_size, received_at from ingest.deliveries"
            ).fetchall()
        }
    files = {str(d.path): d for d in discover(sources_dir, default_contracts())}
    return {
        path: entry
        for path, entry in current.items()
        if path in files and (_tail(path), entry[1], files[path].received_at) in recorded
    }


def _tail(path: str) -> tuple[str, ...]:
    return Path(printable(path)).parts[-3:]  # (a name that is not text is recorded printable)


def changed_sources(previous: dict[str, list], current: dict[str, list]) -> list[str]:
    """Sources with a file new, modified or removed: a removed file withdraws its delivery
    (the previous file present takes over, docs/ingestion.md), which needs a run too."""
    changed = {
        entry[2]
        for path, entry in current.items()
        if previous.get(path, [None, None])[:2] != entry[:2]
    }
    changed |= {entry[2] for path, entry in previous.items() if path not in current}
    return sorted(changed)


def build_delivery_sensor(job, sources_path: str, build_path: str | None = None):
    """``build_path``: the build database, whose delivery log the first evaluation reads."""

    @sensor(
        name="new_deliveries",
        job=job,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.STOPPED,
        description="Surveille sources/ : une livraison nouvelle ou modifiée déclenche l'ingestion "
        "de sa source et la reconstruction de ce qui en dépend.",
    )
    def new_deliveries(context: SensorEvaluationContext):
        from dagster_project.warehouse.access import WarehouseBusy

        current = snapshot(Path(sources_path))
        if context.cursor:
            previous = json.loads(context.cursor)
        elif build_path:
            try:
                previous = recorded_entries(Path(build_path), Path(sources_path), current)
            except WarehouseBusy:
                return SkipReason(
                    "entrepôt occupé par une exécution : nouvel essai au prochain passage"
                )
        else:
            previous = {}
        sources = changed_sources(previous, current)
        if not sources:
            context.update_cursor(json.dumps(current, sort_keys=True))
            return SkipReason("aucune livraison nouvelle ou modifiée")
        contracts = default_contracts()
        graph = context.repository_def.asset_graph
        keys = AssetSelection.assets(*(raw_asset_key(contracts[s]) for s in sources)).downstream()
        selection = sorted(keys.resolve(graph), key=lambda k: k.to_user_string())
        state = json.dumps(current, sort_keys=True)
        fingerprint = ",".join(sources) + ":" + sha256_text(state)[:16]
        context.update_cursor(state)
        return RunRequest(
            run_key=fingerprint,
            asset_selection=selection,
            tags={"kpi/trigger": "sensor", "kpi/sources": ",".join(sources)},
        )

    return new_deliveries


def blocking_failures_of(settings: Settings, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed in the run, read from the build."""
    build = settings.build_warehouse
    if not build.exists():
        return []
    with access(build, "read", "la vérification des contrôles avant publication"):
        con, alias = connect_build(build)
        try:
            con.execute(f"use {quote_ident(alias)}")
            return blocking_failures(con, run_id)
        finally:
            con.close()


def build_publication_sensor(settings: Settings | None = None):
    """``publish_after_run``, a run-status sensor (on by default): after every successful run
    of this code location launched through Dagster (the UI, the ``new_deliveries`` sensor, a
    schedule), publish the analysts' copy and the Parquet exports, unless a blocking check of
    that run failed (then the copy stays as it was, and the tick says why). A failed run
    triggers nothing. Runs of ``kpi run`` are left alone: it publishes by itself.
    """

    @run_status_sensor(
        name="publish_after_run",
        run_status=DagsterRunStatus.SUCCESS,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=PUBLICATION_SENSOR_INTERVAL_SECONDS,
        description="Après chaque exécution réussie lancée par Dagster (interface, capteur, "
        "planification) et sans contrôle bloquant en échec, publie la copie en lecture seule des "
        "analystes (warehouse.duckdb) et les exports Parquet.",
    )
    def publish_after_run(context):  # a RunStatusSensorContext
        run = context.dagster_run
        if run.tags.get("kpi/trigger") == CLI_TRIGGER:
            return SkipReason(f"exécution {run.run_id[:8]} lancée par kpi run, qui publie lui-même")
        current = settings or Settings.from_env()
        failures = blocking_failures_of(current, run.run_id)
        if failures:
            return SkipReason(
                f"exécution {run.run_id[:8]} : {len(failures)} contrôle(s) bloquant(s) en échec, "
                "la copie publiée ne change pas"
            )
        publication = publish(current, run_id=run.run_id)
        context.log.info(f"publication {publication.publication_id} en place")
        if publication.repaired:
            context.log.warning(
                "copie publiée modifiée depuis la publication précédente, tables réécrites "
                "depuis la base de construction : " + ", ".join(publication.repaired)
            )
        return SkipReason(
            f"exécution {run.run_id[:8]} publiée : {publication.publication_id} "
            f"({len(publication.tables)} tables, {publication.seconds:.1f} s)"
        )

    return publish_after_run


def build_interrupted_runs_sensor():
    """``interrupted_kpi_runs`` (on by default): a ``kpi run`` killed before it could record
    its end leaves its run « in progress », and the daemon's queue (one run at a time) would
    wait behind it for ever. Every 30 s, such runs whose process is gone are marked failed."""

    @sensor(
        name="interrupted_kpi_runs",
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description="Marque en échec les exécutions de « kpi run » interrompues (processus "
        "disparu) pour que la file d'attente des exécutions ne reste pas bloquée.",
    )
    def interrupted_kpi_runs(context: SensorEvaluationContext):
        from dagster_project.defs.instance import fail_dead_cli_runs

        failed = fail_dead_cli_runs(context.instance)
        if failed:
            return SkipReason(
                "exécution(s) de kpi run interrompue(s), marquée(s) en échec : "
                + ", ".join(r[:8] for r in failed)
            )
        return SkipReason("aucune exécution de kpi run interrompue")

    return interrupted_kpi_runs
