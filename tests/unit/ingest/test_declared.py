"""Declared figures (`indicateurs_declares`): only the delivering department's declared
indicators, sign as the catalogue allows, and a newer file replaces the previous one."""

from __future__ import annotations

import datetime as dt
import os

import duckdb
import pytest

from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.reference_data import load_catalogue
from dagster_project.ingest.validation.driver import validate_delivery

HEADER = ["indicator_id", "code_insee", "valeur", "date_valeur", "commentaire", "source"]


def declared(rows):
    return {"Indicateurs": [HEADER, *rows]}


def row(indicator, value=1, commune=None, comment=None):
    return [indicator, commune, value, "30/09/2025", comment, "Direction de la Culture"]


@pytest.fixture(scope="module")
def culture_ids():
    catalogue = load_catalogue()
    ids = sorted(
        i for i, e in catalogue.items() if e.department == "culture" and e.computation == "declared"
    )
    assert len(ids) > 2
    return ids


def validate(contracts, make_context, path, department="culture"):
    return validate_delivery(
        contracts["indicateurs_declares"], path, make_context(department=department)
    )


def test_department_declared_ids_are_accepted(contracts, make_context, workbook, culture_ids):
    path = workbook(declared([row(culture_ids[0], 12), row(culture_ids[1], "1 250", "62119")]))
    result = validate(contracts, make_context, path)
    assert result.accepted, result.problems
    assert [r["code_insee"] for r in result.records] == [None, "62119"]


@pytest.mark.parametrize(
    "indicator, reason",
    [
        ("indicateur_inexistant", "inconnu du catalogue"),
        ("water_network_length", "calculé à partir d'une source détaillée"),
        ("council_members_total", "governance"),
    ],
)
def test_foreign_or_derived_ids_are_rejected(
    contracts, make_context, workbook, culture_ids, indicator, reason
):
    path = workbook(declared([row(culture_ids[0]), row(indicator)]))
    result = validate(contracts, make_context, path)
    assert [(p.row, p.column, p.value) for p in result.problems] == [(3, "indicator_id", indicator)]
    assert reason in result.problems[0].reason


def test_negative_value_only_where_the_catalogue_allows(contracts, make_context, workbook):
    catalogue = load_catalogue()
    allowed = next(
        i for i, e in catalogue.items() if e.allow_negative and e.department == "territory"
    )
    employment = sorted(
        i
        for i, e in catalogue.items()
        if e.department == "territory" and e.computation == "declared" and not e.allow_negative
    )
    ok = workbook(declared([row(allowed, "-0,5")]))
    assert validate(contracts, make_context, ok, department="territory").accepted
    bad = workbook(declared([row(employment[0], -3)]))
    result = validate(contracts, make_context, bad, department="territory")
    assert [(p.row, p.column) for p in result.problems] == [(2, "valeur")]


def test_duplicate_indicator_and_commune_rejected(contracts, make_context, workbook, culture_ids):
    path = workbook(declared([row(culture_ids[0]), row(culture_ids[0], 3)]))
    result = validate(contracts, make_context, path)
    assert [p.row for p in result.problems] == [3]


def test_newer_declared_file_replaces_the_previous_one(tmp_path, workbook, contracts, culture_ids):
    folder = tmp_path / "sources" / "2025" / "culture"
    folder.mkdir(parents=True)
    first = workbook(
        declared([row(culture_ids[0], 10), row(culture_ids[1], 20)]),
        name="indicateurs_declares_2025.xlsx",
    )
    first = first.replace(folder / first.name)
    os.utime(first, (1_700_000_000, 1_700_000_000))
    second = workbook(declared([row(culture_ids[0], 11)]), name="indicateurs_declares_2025_v2.xlsx")
    second = second.replace(folder / second.name)
    os.utime(second, (1_700_100_000, 1_700_100_000))
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    Ingestor(con, contracts, today=dt.date(2026, 1, 15)).ingest_source(
        "indicateurs_declares", discover(tmp_path / "sources", contracts)
    )
    in_force = con.execute(
        "select r.indicator_id, r.valeur from raw.indicateurs_declares r join ingest.deliveries d "
        "on d.delivery_id = r._delivery_id where d.in_force order by 1"
    ).fetchall()
    assert in_force == [(culture_ids[0], 11.0)]  # replaced as a whole: the second id is gone


def test_commune_given_by_code_and_by_name(contracts, make_context, workbook, culture_ids):
    """Both commune columns: they must agree where both are filled; a row whose code is blank
    is an agglomeration row (the name beside it is not read), as with the code column alone."""
    header = [*HEADER, "commune"]
    first, second = culture_ids[0], culture_ids[1]
    agreeing = [
        [*row(first, 3, "62119"), "Béthune"],
        [*row(second, 4, None), "Béthune"],
    ]
    path = workbook({"Indicateurs": [header, *agreeing]})
    result = validate(contracts, make_context, path)
    assert result.accepted, result.problems
    assert [r["code_insee"] for r in result.records] == ["62119", None]

    path = workbook({"Indicateurs": [header, [*row(first, 3, "62119"), "Lillers"]]})
    result = validate(contracts, make_context, path)
    assert [(p.row, p.column) for p in result.problems] == [(2, "commune")]
    assert "ne désignent pas la même commune" in result.problems[0].reason
