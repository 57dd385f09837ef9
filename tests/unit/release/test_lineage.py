"""`kpi trace`: release, dbt model, deliveries and source rows of one value (on the demo
campaign: tests/integration/test_lineage.py)."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest
from support.warehouses import (
    D_DECL_24,
    D_DECL_25,
    D_HR_25,
    D_NET_25,
    PSEUDONYM,
    build_warehouse,
)

from dagster_project.cli import main
from dagster_project.contracts.model import default_contracts
from dagster_project.release import freeze as freeze_module
from dagster_project.release.freeze import freeze
from dagster_project.release.lineage import filters as filters_module
from dagster_project.release.lineage.filters import (
    RowFilterError,
    SourceFilter,
    parse_row_filters,
    row_filters,
    source_rows_query,
)
from dagster_project.release.lineage.model import computing_model
from dagster_project.release.lineage.recompute import recompute_value
from dagster_project.release.lineage.report import format_trace, trace_json
from dagster_project.release.lineage.trace import DELIVERIES_SQL, TraceError, row_ranges, trace
from dagster_project.settings import CATALOGUE_CSV, PROJECT_ROOT

AUDIT_DOC = PROJECT_ROOT / "docs" / "audit.md"

# raw.eau_reseau of the 2025 delivery: the drinking-water rows (eau_potable) give the values
# of water_network_length (30.5 = 20.0 for 62119 + 10.5 for 62126); the sewer rows
# (assainissement) of the same delivery and communes feed other indicators, not this one.
NETWORK_ROWS = [  # row number, commune, network, km
    (2, "62119", "eau_potable", 12.0),
    (3, "62119", "eau_potable", 8.0),
    (4, "62126", "eau_potable", 10.5),
    (5, "62119", "assainissement", 7.0),
    (6, "62126", "assainissement", 3.0),
]
NON_PERMANENT_ROW = 9  # of rh_effectifs rows 3-14: the one agent not in permanent_staff


def realistic_rows(con: duckdb.DuckDBPyConnection) -> None:
    """test_release's tiny warehouse with raw rows the computations' filters can tell apart:
    both networks in raw.eau_reseau, a status per agent (permanent_staff = 11)."""
    con.execute("delete from raw.eau_reseau")
    for row, code, network, km in NETWORK_ROWS:
        con.execute(
            "insert into raw.eau_reseau values (?, ?, ?, ?, 'x', 'Réseaux', ?, 2025, 'water')",
            [code, network, km, D_NET_25, row],
        )
    con.execute("alter table raw_restricted.rh_effectifs add column statut varchar")
    con.execute(
        "update raw_restricted.rh_effectifs set statut = case when _row_number = ? "
        "then 'NON_PERMANENT' else 'TITULAIRE' end",
        [NON_PERMANENT_ROW],
    )
    con.execute(
        "update marts.fct_indicator_values set value = 11 where indicator_id = 'permanent_staff'"
    )


@pytest.fixture(autouse=True)
def _no_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", lambda *args: [])


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    realistic_rows(connection)
    freeze(connection, 2025, tmp_path / "releases")
    yield connection
    connection.close()


@pytest.fixture
def manifest(tmp_path) -> Path:
    """A minimal dbt manifest: the water model names its indicators in a project macro."""
    nodes = {
        "model.kpi.int_water__indicator_values": {
            "resource_type": "model",
            "name": "int_water__indicator_values",
            "unique_id": "model.kpi.int_water__indicator_values",
            "package_name": "kpi",
            "original_file_path": "models/intermediate/water/int_water__indicator_values.sql",
            "raw_code": "{{ unpivot_indicator_groups(water_indicator_groups()) }}",
            "depends_on": {
                "macros": [
                    "macro.kpi.water_indicator_groups",
                    "macro.kpi.unpivot_indicator_groups",
                ],
                "nodes": ["model.kpi.int_water__network_by_commune"],
            },
        },
        "model.kpi.int_water__network_by_commune": {
            "resource_type": "model",
            "name": "int_water__network_by_commune",
            "unique_id": "model.kpi.int_water__network_by_commune",
            "package_name": "kpi",
            "columns": {"year": {}, "water_network_length": {}},
            "depends_on": {"macros": [], "nodes": []},
        },
        "model.kpi.int_declared__indicator_values": {
            "resource_type": "model",
            "name": "int_declared__indicator_values",
            "unique_id": "model.kpi.int_declared__indicator_values",
            "package_name": "kpi",
            "original_file_path": "models/intermediate/declared/int_declared__indicator_values.sql",
            "raw_code": "select * from {{ ref('stg_indicateurs_declares') }}",
            "depends_on": {"macros": [], "nodes": []},
        },
        "model.kpi.int_misc__indicator_values": {
            "resource_type": "model",
            "name": "int_misc__indicator_values",
            "unique_id": "model.kpi.int_misc__indicator_values",
            "package_name": "kpi",
            "original_file_path": "models/intermediate/misc/int_misc__indicator_values.sql",
            "raw_code": "select 'permanent_staff' as indicator_id",
            "depends_on": {"macros": [], "nodes": []},
        },
    }
    macros = {
        "macro.kpi.water_indicator_groups": {
            "macro_sql": "{% macro water_indicator_groups() %}['water_network_length']{% endmacro %}"
        },
        "macro.kpi.unpivot_indicator_groups": {
            "macro_sql": "{% macro unpivot_indicator_groups(g) %}"
        },
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"nodes": nodes, "macros": macros}), encoding="utf-8")
    return path


def test_declared_value_traces_to_its_exact_declared_row(con, manifest):
    t = trace(con, "declared_budget", 2025, manifest_path=manifest)
    assert t.release["release_id"] == "RA-2025-v1" and t.release["version"] == 1
    assert t.value["value"] == 1000.0
    assert t.model["unique_id"] == "model.kpi.int_declared__indicator_values"
    assert [d["delivery_id"] for d in t.deliveries] == [D_DECL_25]
    assert t.deliveries[0]["file_name"] == "indicateurs_declares_2025.xlsx"
    assert len(t.deliveries[0]["file_sha256"]) == 64
    assert [(s.table, s.sheet, s.ranges, s.row_count) for s in t.source_rows] == [
        ("raw.indicateurs_declares", "Indicateurs", ["5"], 1)
    ]  # not row 4 (another indicator), not the 2024 delivery's row 5
    text = format_trace(t)
    assert "Publication : RA-2025-v1 (version 1, figée le" in text
    assert "indicateurs_declares_2025.xlsx" in text and "feuille « Indicateurs »" in text
    assert "valeur déclarée 1\u202f000" in text


def test_derived_agglomeration_value_lists_only_the_rows_its_computation_reads(con, manifest):
    t = trace(con, "water_network_length", 2025, manifest_path=manifest)
    [rows] = t.source_rows  # the drinking-water rows 2-4, not the sewer rows 5-6
    assert (rows.table, rows.ranges, rows.row_count, rows.commune_filtered) == (
        "raw.eau_reseau",
        ["2–4"],
        3,
        False,
    )
    [selection] = t.row_selection
    assert (selection.source_id, selection.row_filter, selection.filter_declared) == (
        "eau_reseau",
        "reseau = eau_potable",
        True,
    )
    assert (selection.row_count, selection.delivered_row_count) == (3, 5)
    text = format_trace(t)
    assert "Lignes sources (3) :" in text
    assert (
        "3 lignes de eau_reseau (reseau = eau_potable) entrent dans le calcul, "
        "sur 5 lignes livrées" in text
    )
    assert "feuille « Réseaux » : 3 ligne(s) — ligne(s) 2–4 (livraison" in text
    data = json.loads(trace_json(t))
    assert data["source_rows"][0]["ranges"] == ["2–4"] and data["source_rows"][0]["row_count"] == 3
    assert data["row_selection"][0]["row_filter"] == "reseau = eau_potable"
    assert t.notes == []


def test_derived_commune_value_lists_the_commune_rows_as_ranges(con, manifest):
    t = trace(con, "water_network_length", 2025, "62119", manifest_path=manifest)
    assert t.commune == "Béthune"
    assert t.model["unique_id"] == "model.kpi.int_water__indicator_values"
    assert t.model["wide_model"] == "model.kpi.int_water__network_by_commune"
    assert t.model["origin"].startswith("manifeste dbt")
    assert [d["delivery_id"] for d in t.deliveries] == [D_NET_25]
    [rows] = t.source_rows  # Béthune's drinking-water rows; not its sewer row 5, not Beuvry's
    assert (rows.table, rows.row_count, rows.ranges, rows.commune_filtered) == (
        "raw.eau_reseau",
        2,
        ["2–3"],
        True,
    )
    [selection] = t.row_selection
    assert selection.row_filter == "commune 62119, reseau = eau_potable"
    assert (selection.row_count, selection.delivered_row_count) == (2, 3)
    assert (
        "2 lignes de eau_reseau (commune 62119, reseau = eau_potable) entrent dans le calcul, "
        "sur 3 lignes livrées pour cette commune" in format_trace(t)
    )
    beuvry = trace(con, "water_network_length", 2025, "62126", manifest_path=manifest)
    assert [(s.ranges, s.row_count) for s in beuvry.source_rows] == [(["4"], 1)]


def test_filtered_rows_give_back_the_value(con):
    """The rows kpi trace lists are the ones that sum to the value (recompute_value)."""
    for code, expected in ((None, 30.5), ("62119", 20.0), ("62126", 10.5)):
        assert recompute_value(con, "water_network_length", 2025, code, D_NET_25) == expected
    # every delivered row, the old listing, would not: 30.5 + 7 + 3
    everything = replace(
        row_filters()["water_network_length"],
        sources={"eau_reseau": SourceFilter("eau_reseau", (), "sum(lineaire_km)")},
    )
    filters = {"water_network_length": everything}
    assert recompute_value(con, "water_network_length", 2025, None, D_NET_25, filters) == 40.5


def test_hr_rows_show_only_sheet_and_row_numbers(con, manifest):
    t = trace(con, "permanent_staff", 2025, manifest_path=manifest)
    [rows] = t.source_rows
    assert rows.table == "raw_restricted.rh_effectifs" and rows.restricted
    assert rows.ranges == ["3–8", "10–14"] and rows.row_count == 11  # not the non-permanent 9
    text = format_trace(t) + trace_json(t)
    assert "11 lignes de rh_effectifs (statut autre que NON_PERMANENT) entrent dans le calcul" in (
        text
    )
    assert PSEUDONYM[:10] not in text
    # no age_months value (in the text, not in the test's temporary paths: « pytest-483 »)
    assert not re.search(r"\b4(8[3-9]|9[0-4])\b", text.replace(str(manifest.parent), ""))
    assert "données personnelles" in text
    assert "TITULAIRE" not in text  # the filter is shown, never a row's own value
    # found through the model's code in the manifest, not the catalogue's department
    assert t.model["name"] == "int_misc__indicator_values"


def test_without_a_usable_filter_every_delivered_row_is_listed_and_said(
    tmp_path, manifest, monkeypatch
):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    try:
        # rh_effectifs without its statut column: the filter cannot be applied
        t = trace(connection, "permanent_staff", 2025, manifest_path=manifest)
        assert [(s.ranges, s.row_count) for s in t.source_rows] == [(["3–14"], 12)]
        assert not t.row_selection[0].filter_declared
        assert any("colonne(s) statut absente(s)" in n for n in t.notes)
        assert "les lignes du calcul ne sont pas connues" in format_trace(t)
        # an indicator the file does not describe
        empty = tmp_path / "rows.yml"
        empty.write_text("version: 1\nindicators: {}\n", encoding="utf-8")
        monkeypatch.setattr(filters_module, "ROW_FILTERS_YML", empty)
        t = trace(connection, "water_network_length", 2025, manifest_path=manifest)
        assert t.source_rows[0].row_count == 4
        assert any("aucun filtre de lignes déclaré" in n for n in t.notes)
    finally:
        connection.close()


def test_model_falls_back_to_the_catalogue_without_a_manifest(tmp_path):
    missing = tmp_path / "absent.json"
    model = computing_model("water_network_length", "derived", "water", missing)
    assert model["name"] == "int_water__indicator_values" and model["unique_id"] is None
    assert model["origin"].startswith("catalogue")
    declared = computing_model("x", "declared", "housing", missing)
    assert declared["name"] == "int_declared__indicator_values"


def test_trace_reads_the_named_release_and_refuses_unknown_values(con, tmp_path, manifest):
    con.execute(
        "update marts.fct_indicator_values set value = 1100, delivery_ids = ? "
        "where year = 2025 and indicator_id = 'declared_budget'",
        [D_DECL_24],
    )
    freeze(con, 2025, tmp_path / "releases", reason="Budget rectifié")
    latest = trace(con, "declared_budget", 2025, manifest_path=manifest)
    assert latest.release["release_id"] == "RA-2025-v2" and latest.value["value"] == 1100
    first = trace(con, "declared_budget", 2025, release_id="RA-2025-v1", manifest_path=manifest)
    assert first.value["value"] == 1000 and first.deliveries[0]["delivery_id"] == D_DECL_25
    with pytest.raises(
        TraceError, match="aucune valeur de « declared_budget » pour la commune 62119"
    ):
        trace(con, "declared_budget", 2025, "62119")
    with pytest.raises(TraceError, match="publication inconnue"):
        trace(con, "declared_budget", 2025, release_id="RA-2025-v9")


def test_unreleased_year_traces_the_current_values(tmp_path, manifest):
    con = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    t = trace(con, "declared_budget", 2024, manifest_path=manifest)
    con.close()
    assert t.release is None and t.value["value"] == 900.0
    assert [d["delivery_id"] for d in t.deliveries] == [D_DECL_24]
    assert any("aucune publication de 2024" in n for n in t.notes)


def test_documented_sql_is_the_one_the_code_runs(con):
    doc = AUDIT_DOC.read_text(encoding="utf-8")
    assert DELIVERIES_SQL in doc
    params = {"release_id": "RA-2025-v1", "indicator_id": "permanent_staff", "code_insee": None}
    rows = con.execute(DELIVERIES_SQL, params).fetchall()
    assert [(r[0], r[4]) for r in rows] == [(D_HR_25, "rh_effectifs_2025.xlsx")]


def test_documented_source_rows_sql_is_the_one_the_code_runs():
    doc = AUDIT_DOC.read_text(encoding="utf-8")
    water = row_filters()["water_network_length"].sources["eau_reseau"]
    query, params = source_rows_query("raw.eau_reseau", water, "62119")
    assert query in doc
    assert params == {"rf0_0": "eau_potable", "code_insee": "62119"}


def test_every_derived_indicator_of_the_catalogue_has_its_row_filter():
    """One filter per derived indicator, over its catalogue sources, naming columns of the
    sources' contracts and values they allow."""
    with CATALOGUE_CSV.open(encoding="utf-8") as handle:
        derived = {
            e["indicator_id"]: e["source"].split(",")
            for e in csv.DictReader(handle)
            if e["computation"] != "declared"
        }
    filters = row_filters()
    assert len(derived) == 61 and set(filters) == set(derived)
    contracts = default_contracts()
    for indicator_id, entry in filters.items():
        assert list(entry.sources) == derived[indicator_id], indicator_id
        for source_id, source_filter in entry.sources.items():
            columns = {c.stored_name: c for c in contracts[source_id].columns if c.stored_name}
            for condition in source_filter.conditions:
                column = columns.get(condition.column)
                assert column is not None, (indicator_id, source_id, condition.column)
                if column.allowed and condition.kind in ("equals", "one_of", "not_one_of"):
                    assert set(condition.values) <= set(column.allowed), (indicator_id, condition)


def test_row_filter_conditions_in_sql_and_in_french():
    parsed = parse_row_filters(
        {
            "version": 1,
            "indicators": {
                "x": {
                    "rows": {
                        "s": {
                            "where": {
                                "flux": ["OMR", "VERRE"],
                                "statut": {"not": "NON_PERMANENT"},
                                "udi": {"ignore_case": "UDI-A"},
                                "date_adhesion": {"year": "campaign"},
                                "date_engagement": {"years": [2022, "campaign"]},
                                "code_insee": {"present": True},
                            },
                            "measure": "count(*)",
                        }
                    }
                }
            },
        }
    )
    source_filter = parsed["x"].sources["s"]
    assert parsed["x"].value == "s"
    sql, params = source_filter.sql()
    assert sql.splitlines()[1:] == [
        '  and r."flux" in ($rf0_0, $rf0_1)',
        '  and r."statut" not in ($rf1_0)',
        '  and upper(r."udi") = upper($rf2_0)',
        '  and extract(year from r."date_adhesion") = r._campaign_year',
        '  and extract(year from r."date_engagement") between $rf4_0 and r._campaign_year',
        '  and r."code_insee" is not null',
    ]
    assert params == {
        "rf0_0": "OMR",
        "rf0_1": "VERRE",
        "rf1_0": "NON_PERMANENT",
        "rf2_0": "UDI-A",
        "rf4_0": 2022,
    }
    assert source_filter.describe(2025) == (
        "flux = OMR ou VERRE et statut autre que NON_PERMANENT et udi = UDI-A sans distinguer "
        "majuscules et minuscules et date_adhesion en 2025 et date_engagement de 2022 à 2025 "
        "et code_insee renseigné"
    )
    for bad in (
        {"rows": {"s": {"where": {"c": {"like": "x%"}}, "measure": "count(*)"}}},
        {"rows": {"s": {"measure": "count(*)"}, "t": {"measure": "count(*)"}}},
        {"rows": {"s": {"where": {"c; drop": 1}, "measure": "count(*)"}}},
        {"rows": {"s": {"where": {"c": "x"}}}},
    ):
        with pytest.raises(RowFilterError):
            parse_row_filters({"version": 1, "indicators": {"x": bad}})


def test_row_ranges():
    assert row_ranges([2, 3, 4, 7, 9, 10, 3]) == ["2–4", "7", "9–10"]
    assert row_ranges([]) == []


def test_kpi_trace_command(tmp_path, capsys):
    connection = duckdb.connect(str(build_warehouse(tmp_path / ".build" / "w.duckdb")))
    realistic_rows(connection)
    connection.close()
    common = ["--warehouse", str(tmp_path / "w.duckdb")]
    releases = ["--releases", str(tmp_path / "releases")]
    assert main(["freeze", "--year", "2025", "--no-publish", *common, *releases]) == 0
    capsys.readouterr()
    assert (
        main(["trace", "water_network_length", "--year", "2025", "--commune", "62126", *common])
        == 0
    )
    out = capsys.readouterr().out
    assert "Béthune" not in out and "Beuvry (62126)" in out
    assert "Livraisons (1)" in out and "eau_reseau_2025.xlsx" in out
    assert "feuille « Réseaux », commune 62126 : 1 ligne(s) — ligne(s) 4 (livraison" in out
    assert "1 ligne de eau_reseau (commune 62126, reseau = eau_potable) entre dans le calcul" in out
    assert main(["trace", "water_network_length", "--year", "2025", "--json", *common]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["release"]["release_id"] == "RA-2025-v1"
    assert [(s["ranges"], s["row_count"]) for s in data["source_rows"]] == [(["2–4"], 3)]
    assert main(["trace", "inconnu", "--year", "2025", *common]) == 1
    assert "kpi trace : aucune valeur de « inconnu »" in capsys.readouterr().err


def test_kpi_trace_json_writes_times_in_iso_8601(tmp_path, capsys):
    """`kpi trace --json` writes its dates and times as every `--json` of kpi (docs/cli.md):
    ISO 8601, a « T » between the date and the time."""
    connection = duckdb.connect(str(build_warehouse(tmp_path / ".build" / "w.duckdb")))
    realistic_rows(connection)
    connection.close()
    warehouse = ["--warehouse", str(tmp_path / "w.duckdb")]
    assert main(["trace", "water_network_length", "--year", "2025", "--json", *warehouse]) == 0
    text = capsys.readouterr().out
    data = json.loads(text)
    assert data["release"] is None  # not frozen yet: the warehouse's current value
    assert [d["received_at"] for d in data["deliveries"]] == ["2026-01-15T09:30:00"]
    assert data["value"]["as_of_date"] == "2025-12-31"
    assert not re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", text), text
