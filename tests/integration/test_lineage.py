"""`kpi trace` on the demo campaign: the rows a trace lists are the rows its value was
computed from, and every derived value of the demo is given back by its row filter."""

from __future__ import annotations

import math
from dataclasses import replace

import duckdb
import pytest

from dagster_project.release.lineage.filters import Condition, SourceFilter, row_filters
from dagster_project.release.lineage.recompute import recompute_value, recompute_values
from dagster_project.release.lineage.report import format_trace
from dagster_project.release.lineage.trace import row_ranges, trace


@pytest.fixture(scope="module")
def demo(demo_warehouse):
    """The session's built demo campaign (conftest.demo_warehouse), read only."""
    assert demo_warehouse.returncode in (0, 3), demo_warehouse.stderr[-3000:]
    build = demo_warehouse.root / ".build" / demo_warehouse.warehouse.name
    connection = duckdb.connect(str(build), read_only=True)
    yield connection
    connection.close()


def test_demo_water_network_trace_lists_the_drinking_water_rows_only(demo, tmp_path):
    absent = tmp_path / "manifest.json"
    t = trace(demo, "water_network_length", 2025, manifest_path=absent)
    [selection] = t.row_selection
    assert (selection.row_count, selection.delivered_row_count) == (100, 200)
    assert sum(s.row_count for s in t.source_rows) == 100
    listed = {
        (s.delivery_id, s.sheet, n)
        for s in t.source_rows
        for part in s.ranges
        for n in range(int(part.split("–")[0]), int(part.split("–")[-1]) + 1)
    }
    fed = set(
        demo.execute(
            "select _delivery_id, _sheet, _row_number from raw.eau_reseau "
            "where _delivery_id = ? and reseau = 'eau_potable'",
            [t.value["delivery_ids"]],
        ).fetchall()
    )
    assert listed == fed and len(fed) == 100
    assert "100 lignes de eau_reseau (reseau = eau_potable) entrent dans le calcul" in (
        format_trace(t)
    )
    commune = trace(demo, "water_network_length", 2025, "62119", manifest_path=absent)
    numbers = demo.execute(
        "select list(_row_number order by _row_number) from raw.eau_reseau "
        "where _delivery_id = ? and reseau = 'eau_potable' and code_insee = '62119'",
        [t.value["delivery_ids"]],
    ).fetchone()[0]
    assert [s.ranges for s in commune.source_rows] == [row_ranges(numbers)]
    assert commune.row_selection[0].row_count == len(numbers) >= 1


def test_row_filters_reproduce_every_derived_value(demo):
    """Every derived value of the demo (each indicator, year, commune and agglomeration) is
    given back by the rows its filter selects: the filters cannot drift from dbt's SQL."""
    values = demo.execute(
        "select indicator_id, year, code_insee, delivery_ids, value "
        "from marts.fct_indicator_values where computation = 'derived' order by all"
    ).fetchall()
    assert {v[0] for v in values} == set(row_filters())  # all 61 derived indicators
    recomputed = recompute_values(demo, [v[:4] for v in values])
    wrong = [
        (v[:3], v[4], r)
        for v, r in zip(values, recomputed, strict=True)
        if not math.isclose(r or 0.0, v[4], rel_tol=1e-9, abs_tol=1e-6)
    ]
    assert not wrong, wrong[:20]
    # and the check has teeth: the sewer rows do not give the drinking-water length
    entry = row_filters()["water_network_length"]
    sewer = SourceFilter(
        "eau_reseau",
        (Condition("reseau", "equals", ("assainissement",)),),
        "sum(lineaire_km)",
    )
    filters = {"water_network_length": replace(entry, sources={"eau_reseau": sewer})}
    indicator, year, code, deliveries, value = next(
        v for v in values if v[0] == "water_network_length" and v[2] is None
    )
    assert recompute_value(demo, indicator, year, code, deliveries, filters) != value
