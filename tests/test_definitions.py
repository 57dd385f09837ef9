"""The Dagster code location loads and wires ingestion to dbt as the contracts say."""

from __future__ import annotations

import pytest
from dagster import AssetKey


@pytest.fixture(scope="module")
def graph():
    from dagster_project.definitions import defs

    return defs.resolve_asset_graph()


def test_one_ingestion_asset_per_contract(graph, contracts):
    from dagster_project.assets.ingestion import raw_asset_key

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
