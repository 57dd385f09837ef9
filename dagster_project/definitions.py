"""The Dagster code location: ingestion assets, dbt assets, checks, jobs, sensors, schedules.

Every run executes its steps one after the other in one process (Dagster's in-process
executor): the build database accepts one writer at a time, so the multiprocess executor
would only add a process start per step (about 3 s each on 2 cores) to steps that wait for
one another anyway. The instance the project writes (``dagster_project.instance``) runs one
run at a time, and every asset or check that opens the database is in the ``duckdb``
concurrency pool: an operator who configures another executor keeps steps serialised.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from dagster_project.assets.dbt import dbt_models
from dagster_project.assets.ingestion import INGESTION_GROUP, build_ingestion_assets
from dagster_project.assets.quality import atypical_values
from dagster_project.publish import build_publication_sensor
from dagster_project.resources import build_resources
from dagster_project.schedules import (
    CAMPAIGN_GROUP,
    campaign_status_asset,
    campaign_status_daily,
    campaign_status_job,
)
from dagster_project.sensors import build_delivery_sensor, build_interrupted_runs_sensor
from dagster_project.settings import Settings
from dagster_project.validation.asset_checks import build_mart_checks, build_raw_checks

ingestion_assets = build_ingestion_assets()

kpi_run_job = define_asset_job(
    "kpi_run",
    selection=AssetSelection.all() - AssetSelection.groups(CAMPAIGN_GROUP),
    description="Ingestion des livraisons, dbt build (modèles et tests), contrôles de qualité.",
)
ingestion_job = define_asset_job(
    "ingestion",
    selection=AssetSelection.groups(INGESTION_GROUP),
    description="Ingestion seule des livraisons nouvelles ou modifiées.",
)


asset_checks = [*build_raw_checks(), *build_mart_checks()]


def build_definitions(settings: Settings | None = None, *, in_process: bool = False) -> Definitions:
    """Definitions bound to one warehouse and delivery folder (the CLI's options);
    ``in_process``: for a run about to start in this process (``kpi run``): its ingestion
    steps get priorities for the files there now (the code location, loaded once, does not
    look at the files)."""
    settings = settings or Settings.from_env()
    assets = ingestion_assets
    if in_process:  # a run about to start: its ingestion steps in the order for the files there
        from dagster_project.contracts import default_contracts
        from dagster_project.ingest.pipeline import discover, ingestion_order

        contracts = default_contracts()
        files = discover(settings.sources_dir, contracts)
        assets = build_ingestion_assets(contracts, ingestion_order(contracts, files))
    return Definitions(
        assets=[*assets, dbt_models, atypical_values, campaign_status_asset],
        asset_checks=asset_checks,
        jobs=[kpi_run_job, ingestion_job, campaign_status_job],
        sensors=[
            build_delivery_sensor(
                kpi_run_job, str(settings.sources_dir), str(settings.build_warehouse)
            ),
            build_publication_sensor(settings),
            build_interrupted_runs_sensor(),
        ],
        schedules=[campaign_status_daily],
        resources=build_resources(settings),
        executor=in_process_executor,
    )


defs = build_definitions()
