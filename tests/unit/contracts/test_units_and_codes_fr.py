"""The catalogue's codes in French, from one source (issue 18, points 1 and 2): the units'
labels of the seed ``dbt/seeds/units.csv`` (joined by dbt into the marts' ``unit_label`` and
read by every writer through ``contracts.reference``), and the published periods."""

from __future__ import annotations

import csv
import re

import pytest
import yaml

from dagster_project.contracts.reference import (
    UNITS_CSV,
    amount_fr,
    computation_fr,
    direction_fr,
    kind_fr,
    period_fr,
    unit_label,
    units_fr,
)
from dagster_project.settings import CATALOGUE_CSV, DBT_PROJECT_DIR

MARTS = DBT_PROJECT_DIR / "models" / "marts"
ENGLISH_WORDS = re.compile(
    r"\b(?:before|project|cumulative|target|season|school|year|summer|vs|"
    r"forecast|planned|remaining|mid-term|evaluation)\b",
    re.IGNORECASE,
)


def _catalogue() -> list[dict[str, str]]:
    with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_units_seed_has_one_label_per_code_and_every_catalogue_unit():
    with UNITS_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    codes = [r["unit"] for r in rows]
    assert len(codes) == len(set(codes))
    assert all(r["unit_label"].strip() for r in rows)
    assert {r["unit"] for r in _catalogue()} <= set(codes)
    assert units_fr() == {r["unit"]: r["unit_label"] for r in rows}


def test_units_seed_is_documented_and_tested_in_dbt():
    doc = yaml.safe_load((UNITS_CSV.with_suffix(".yml")).read_text(encoding="utf-8"))
    [seed] = doc["seeds"]
    columns = {c["name"]: c for c in seed["columns"]}
    assert {"unique", "not_null"} <= set(columns["unit"]["data_tests"])
    assert "not_null" in columns["unit_label"]["data_tests"]
    catalogue = yaml.safe_load(CATALOGUE_CSV.with_suffix(".yml").read_text(encoding="utf-8"))[
        "seeds"
    ][0]
    [unit] = [c for c in catalogue["columns"] if c["name"] == "unit"]
    [test] = unit["data_tests"]
    assert test["relationships"]["arguments"] == {"to": "ref('units')", "field": "unit"}


def test_every_mart_with_a_unit_has_its_french_label_beside_it():
    checked = []
    for path in sorted(MARTS.rglob("*.yml")):
        for model in yaml.safe_load(path.read_text(encoding="utf-8")).get("models", []):
            names = [c["name"] for c in model["columns"]]
            if "unit" not in names:
                continue
            checked.append(model["name"])
            assert names[names.index("unit") + 1] == "unit_label", model["name"]
            column = model["columns"][names.index("unit_label")]
            assert column["data_type"] == "varchar" and column["description"]
            assert {"type": "not_null"} in column["constraints"]
            sql = path.with_suffix(".sql").read_text(encoding="utf-8")
            # fct_indicator_values and the priority tables compute it in shared macros
            assert any(
                part in sql for part in ("unit_label", "priority_indicators(", "indicator_values(")
            ), model["name"]
    assert {"fct_indicator_values", "dim_indicators", "p1_indicators"} <= set(checked)
    assert len(checked) == 8


@pytest.mark.parametrize(
    ("unit", "label"),
    [
        ("count", "nombre"),
        ("pct", "%"),
        ("persons", "personnes"),
        ("eur", "€"),
        ("km", "km"),
        ("m3", "m³"),
        ("kg_per_inhabitant", "kg par habitant"),
        ("new_unit", "new unit"),
    ],
)
def test_unit_label(unit, label):
    assert unit_label(unit) == label


def test_amounts_natures_computations_directions_in_french():
    assert amount_fr(1200, "eur") == "1\u202f200 €"
    assert amount_fr(12.5, "pct") == "12,5 %"
    assert amount_fr(15, "count") == "15"
    assert amount_fr(3, "count_per_year") == "3 par an"
    assert amount_fr(38, "communes") == "38 communes"
    assert (kind_fr("value"), kind_fr("target"), kind_fr("forecast")) == (
        "valeur constatée",
        "objectif",
        "prévision",
    )
    assert computation_fr("derived") == "calculée par l'entrepôt"
    assert computation_fr("declared") == "déclarée par la direction"
    assert direction_fr("finance") == "Direction des Finances"
    assert direction_fr("nouvelle") == "Direction « nouvelle »"


@pytest.mark.parametrize(
    ("period", "french"),
    [
        ("before extension", "avant extension"),
        ("target", "objectif"),
        ("target:2030 (base 2010)", "objectif 2030 (base 2010)"),
        ("project", "projet"),
        ("2025", "2025"),
        ("2025-09-30", "30/09/2025"),
        ("2025-10", "octobre 2025"),
        ("2025-H1", "1er semestre 2025"),
        ("2025-Q1", "1er trimestre 2025"),
        ("2024-2025 season", "saison 2024-2025"),
        ("cumulative:2022-2025", "cumul 2022-2025"),
        ("2024-06/2025-09", "juin 2024 – septembre 2025"),
        ("2025 vs 2024-12", "2025 par rapport à décembre 2024"),
        ("2026-01-01 (forecast)", "01/01/2026 (prévision)"),
        ("2023-2032", "2023-2032"),
        ("", ""),
    ],
)
def test_period_fr(period, french):
    assert period_fr(period) == french


def test_no_catalogue_period_stays_in_english():
    for period in {r["published_period"] for r in _catalogue()}:
        assert not ENGLISH_WORDS.search(period_fr(period)), (period, period_fr(period))
