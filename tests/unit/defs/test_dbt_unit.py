"""dbt's unit tests stay out of `kpi run`'s `dbt build` (``DBT_BUILD_ARGS`` in
dagster_project/defs/assets/dbt.py); tests/integration/test_dbt_unit.py runs them."""

from __future__ import annotations

from dagster_project.defs.assets.dbt import DBT_BUILD_ARGS


def test_production_build_leaves_unit_tests_out():
    assert DBT_BUILD_ARGS[0] == "build"
    assert DBT_BUILD_ARGS[DBT_BUILD_ARGS.index("--exclude-resource-type") + 1] == "unit_test"
