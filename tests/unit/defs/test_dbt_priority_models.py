"""The models each priority table reads (``priority_indicator_value_models`` in
dbt/dbt_project.yml) against the catalogue: a priority's table must read every model that can
give a value of its indicators or of their targets, else it would miss values (and the dbt test
``assert_priority_tables_match_fct_indicator_values`` would fail at the next build)."""

from __future__ import annotations

import csv
from collections import defaultdict

import yaml

from dagster_project.contracts.model import default_contracts
from dagster_project.settings import CATALOGUE_CSV, DBT_PROJECT_DIR

DECLARED_MODEL = "int_declared__indicator_values"


def _vars() -> dict:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]


def models_giving(indicator: dict[str, str], contracts) -> set[str]:
    """The int_<direction>__indicator_values model(s) an indicator's values come from: the
    declared figures' model, else the model of the direction of each of its sources."""
    if indicator["computation"] == "declared":
        return {DECLARED_MODEL}
    return {
        f"int_{contracts[source.strip()].department}__indicator_values"
        for source in indicator["source"].split(",")
    }


def expected_models_by_priority() -> dict[str, set[str]]:
    contracts = default_contracts()
    with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
        catalogue = {row["indicator_id"]: row for row in csv.DictReader(handle)}
    extensions = CATALOGUE_CSV.with_name("indicator_catalogue_extensions.csv")
    with extensions.open(encoding="utf-8", newline="") as handle:
        targets = defaultdict(set)  # indicator -> the indicators that are its targets
        for row in csv.DictReader(handle):
            if row.get("target_of"):
                targets[row["target_of"]].add(row["indicator_id"])
    expected: dict[str, set[str]] = defaultdict(set)
    for indicator_id, indicator in catalogue.items():
        for measured in (indicator_id, *targets[indicator_id]):
            expected[indicator["priority"]] |= models_giving(catalogue[measured], contracts)
    return dict(expected)


def test_each_priority_table_reads_the_models_of_its_indicators_and_targets():
    declared = {p: set(models) for p, models in _vars()["priority_indicator_value_models"].items()}
    assert declared == expected_models_by_priority()


def test_the_priority_models_are_models_of_the_list():
    variables = _vars()
    known = set(variables["indicator_value_models"])
    for models in variables["priority_indicator_value_models"].values():
        assert set(models) <= known
    for model in known:
        assert list(DBT_PROJECT_DIR.joinpath("models", "intermediate").rglob(f"{model}.sql"))


def test_a_derived_indicator_comes_from_its_sources_direction(contracts):
    indicator = {"computation": "derived", "source": "dechets_collecte,dechetteries_apports"}
    assert models_giving(indicator, contracts) == {"int_waste__indicator_values"}
    assert models_giving({"computation": "declared", "source": "x"}, contracts) == {DECLARED_MODEL}
