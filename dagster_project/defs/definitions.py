"""The project's Dagster definitions: ingestion assets, dbt assets, checks, jobs, sensors,
schedules, built by ``build_definitions`` (the code location ``dagster_project.definitions``
calls it when Dagster loads it; importing this module builds nothing).

Every run executes its steps one after the other in one process (Dagster's in-process
executor): the build database accepts one writer at a time, so the multiprocess executor
would only add a process start per step (about 3 s each on 2 cores) to steps that wait for
one another anyway. The instance the project writes (``dagster_project.defs.instance``) runs one
run at a time, and every asset or check that opens the database is in the ``duckdb``
concurrency pool: an operator who configures another executor keeps steps serialised.
"""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from dagster_project.contracts.model import default_contracts
from dagster_project.defs.assets.dbt import build_dbt_assets
from dagster_project.defs.assets.ingestion import (
    DELIVERY_LOG_SPEC,
    INGESTION_GROUP,
    build_ingestion_assets,
    ingestion_owners,
)
from dagster_project.defs.assets.quality import atypical_values
from dagster_project.defs.checks import build_mart_checks, build_raw_checks
from dagster_project.defs.resources import build_resources
from dagster_project.defs.schedules import (
    CAMPAIGN_GROUP,
    campaign_status_asset,
    campaign_status_daily,
    campaign_status_job,
)
from dagster_project.defs.sensors import (
    build_delivery_sensor,
    build_interrupted_runs_sensor,
    build_publication_sensor,
)
from dagster_project.settings import Settings

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


def build_definitions(settings: Settings | None = None, *, in_process: bool = False) -> Definitions:
    """Definitions bound to one warehouse and delivery folder (the CLI's options);
    ``in_process``: for a run about to start in this process (``kpi run``): its ingestion
    steps get priorities for the files there now (the code location, loaded once, does not
    look at the files)."""
    settings = settings or Settings.from_env()
    # before the dbt project is parsed (build_dbt_assets): dbt's parse records the profile (the
    # build database, the target), and a run's dbt parse with another one starts over entirely
    settings.export()
    contracts = default_contracts()
    # the departments' contacts of the campaign file (team:<department> without one)
    owners = ingestion_owners(contracts, settings.sources_dir, settings.today)
    order = None
    if in_process:  # a run about to start: its ingestion steps in the order for the files there
        from dagster_project.ingest.discovery import discover, ingestion_order

        order = ingestion_order(contracts, discover(settings.sources_dir, contracts))
    assets = build_ingestion_assets(contracts, order, owners)
    return Definitions(
        assets=[
            *assets,
            DELIVERY_LOG_SPEC,
            build_dbt_assets(),
            atypical_values,
            campaign_status_asset,
        ],
        asset_checks=[*build_raw_checks(), *build_mart_checks()],
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
