"""The Dagster code location loads and wires ingestion to dbt as the contracts say."""

from __future__ import annotations

import pytest
from dagster import AssetKey


@pytest.fixture(scope="module")
def graph():
    from dagster_project.defs.definitions import build_definitions

    defs = build_definitions()

    return defs.resolve_asset_graph()


def test_one_ingestion_asset_per_contract(graph, contracts):
    from dagster_project.defs.assets.ingestion import raw_asset_key

    keys = set(graph.get_all_asset_keys())
    for contract in contracts.values():
        assert raw_asset_key(contract) in keys


def test_staging_models_depend_on_their_ingestion_asset(graph, contracts):
    for contract in contracts.values():
        node = graph.get(AssetKey([contract.raw_schema, contract.source_id]))
        children = {k.path[-1] for k in node.child_keys}
        assert f"stg_{contract.source_id}" in children, contract.source_id


def test_references_order_ingestion(graph, contracts):
    volumes = graph.get(AssetKey(["raw", "eau_volumes"]))
    assert AssetKey(["raw", "eau_udi"]) in volumes.parent_keys


def test_public_marts_are_assets(graph):
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for name in [
        "fct_indicator_values",
        "p1_indicators",
        "p2_indicators",
        "p3_indicators",
        "p4_indicators",
        "appui_indicators",
        "territoire_indicators",
    ]:
        assert f"marts/{name}" in keys


def test_no_per_agent_model_outside_restricted_schemas(graph):
    """HR staging and per-agent models live in `restricted`, never in analysts' schemas."""
    for key in graph.get_all_asset_keys():
        if "rh_effectifs" in key.path[-1] or "rh_formation" in key.path[-1]:
            assert key.path[0] in ("raw_restricted", "restricted"), key


def test_a_run_orders_its_ingestion_steps(contracts, tmp_path):
    """``kpi run`` ingests in the ingestion order (ingest.discovery.ingestion_order): the source
    with the largest workbooks last, after what it references."""
    from dagster_project.defs.definitions import build_definitions
    from dagster_project.ingest.discovery import discover, ingestion_order
    from dagster_project.settings import Settings

    sources = tmp_path / "sources"
    for source_id, size in (("eau_udi", 10), ("eau_qualite", 5000), ("eau_reseau", 100)):
        folder = sources / "2025" / "water"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{source_id}_2025.xlsx").write_bytes(b"x" * size)
    order = ingestion_order(contracts, discover(sources, contracts))
    assert order[-1] == "eau_qualite" and order.index("eau_udi") < order.index("eau_reseau")
    settings = Settings(
        sources_dir=sources, warehouse=tmp_path / "w.duckdb", releases_dir=tmp_path / "r"
    )
    defs = build_definitions(settings, in_process=True)
    graph = defs.resolve_asset_graph()
    steps = {
        graph.assets_def_for_key(AssetKey([c.raw_schema, c.source_id])) for c in contracts.values()
    }
    assert sorted(a.op.name for a in steps) == ["ingest_sources", "ingest_sources_2"]
    for assets_def in steps:  # each step ingests its sources in the run's order
        ingested = [spec.key.path[-1] for spec in assets_def.specs]
        assert ingested == [s for s in order if s in ingested], assets_def.op.name


def test_every_step_that_opens_the_warehouse_is_in_the_duckdb_pool(graph):
    """Each asset (ingestion, dbt, campaign/status) and each check opens the build database:
    all in one pool, which the project's instance limits to one step at a time."""
    from dagster_project.defs.definitions import build_definitions

    defs = build_definitions()
    from dagster_project.defs.resources import WAREHOUSE_POOL

    assets_defs = {graph.assets_def_for_key(k) for k in graph.get_all_asset_keys()}
    assets_defs = {a for a in assets_defs if a.is_executable}
    assert assets_defs
    for assets_def in assets_defs:
        assert assets_def.op.pool == WAREHOUSE_POOL, assets_def.keys
    checks = list(defs.asset_checks or [])
    assert checks
    for check in checks:
        assert check.op.pool == WAREHOUSE_POOL, check.check_keys


def test_runs_execute_in_one_process_and_publication_follows_them():
    from dagster_project.defs.definitions import build_definitions

    defs = build_definitions()

    repo = defs.get_repository_def()
    job = repo.get_job("kpi_run")
    assert job.executor_def.name == "in_process"
    assert repo.get_job("__ASSET_JOB").executor_def.name == "in_process"
    sensors = {s.name: s for s in repo.sensor_defs}
    assert set(sensors) == {"new_deliveries", "publish_after_run", "interrupted_kpi_runs"}
    assert sensors["publish_after_run"].default_status.value == "RUNNING"
    assert sensors["interrupted_kpi_runs"].default_status.value == "RUNNING"
    assert sensors["new_deliveries"].default_status.value == "STOPPED"


def test_the_raw_checks_start_a_dbt_parse_only_for_a_run_with_a_dbt_step():
    """A run of the raw checks alone (from the UI) has no dbt step: no dbt parse is started
    for it. The whole job, or a re-delivery's subset, has one."""
    from dagster import AssetCheckKey

    from dagster_project.defs.assets.dbt import DBT_STEP
    from dagster_project.defs.checks import runs_dbt
    from dagster_project.defs.definitions import build_definitions

    class StepContext:  # what runs_dbt reads of a step's context
        def __init__(self, job_def):
            self.job_def = job_def

    job = build_definitions().resolve_job_def("kpi_run")
    assert DBT_STEP in {node.name for node in job.nodes}
    check = AssetCheckKey(AssetKey(["raw", "eau_reseau"]), "raw_eau_reseau")
    checks_alone = job.get_subset(asset_selection=set(), asset_check_selection={check})
    redelivery = job.get_subset(
        asset_selection={AssetKey(["raw", "eau_reseau"]), AssetKey(["marts", "p2_indicators"])},
        asset_check_selection={check},
    )
    assert runs_dbt(StepContext(job))
    assert runs_dbt(StepContext(redelivery))
    assert not runs_dbt(StepContext(checks_alone))
    assert runs_dbt(object())  # unknown: as before
