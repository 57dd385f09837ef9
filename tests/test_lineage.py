"""`kpi trace`: release, dbt model, deliveries and source rows of one value."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from test_release import (
    D_DECL_24,
    D_DECL_25,
    D_HR_25,
    D_NET_25,
    PSEUDONYM,
    build_warehouse,
)

from dagster_project import lineage
from dagster_project import release as rel
from dagster_project.cli import main
from dagster_project.lineage import TraceError, computing_model, format_trace, trace
from dagster_project.release import freeze
from dagster_project.settings import PROJECT_ROOT

AUDIT_DOC = PROJECT_ROOT / "docs" / "audit.md"


@pytest.fixture(autouse=True)
def _no_exports(monkeypatch):
    monkeypatch.setattr(rel, "_write_exports", lambda *args: [])


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
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


def test_derived_commune_value_lists_the_commune_rows_as_ranges(con, manifest):
    t = trace(con, "water_network_length", 2025, "62119", manifest_path=manifest)
    assert t.commune == "Béthune"
    assert t.model["unique_id"] == "model.kpi.int_water__indicator_values"
    assert t.model["wide_model"] == "model.kpi.int_water__network_by_commune"
    assert t.model["origin"].startswith("manifeste dbt")
    assert [d["delivery_id"] for d in t.deliveries] == [D_NET_25]
    [rows] = t.source_rows
    assert (rows.table, rows.row_count, rows.ranges, rows.commune_filtered) == (
        "raw.eau_reseau",
        3,
        ["2–3", "5"],
        True,
    )
    agglomeration = trace(con, "water_network_length", 2025, manifest_path=manifest)
    assert agglomeration.source_rows[0].ranges == ["2–5"]
    assert agglomeration.source_rows[0].row_count == 4


def test_hr_rows_show_only_sheet_and_row_numbers(con, manifest):
    t = trace(con, "permanent_staff", 2025, manifest_path=manifest)
    [rows] = t.source_rows
    assert rows.table == "raw_restricted.rh_effectifs" and rows.restricted
    assert rows.ranges == ["3–14"] and rows.row_count == 12
    text = format_trace(t) + lineage.trace_json(t)
    assert PSEUDONYM[:10] not in text
    assert not re.search(r"\b4(8[3-9]|9[0-4])\b", text)  # no age_months value
    assert "données personnelles" in text
    # found through the model's code in the manifest, not the catalogue's department
    assert t.model["name"] == "int_misc__indicator_values"


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
    assert lineage.DELIVERIES_SQL in doc
    params = {"release_id": "RA-2025-v1", "indicator_id": "permanent_staff", "code_insee": None}
    rows = con.execute(lineage.DELIVERIES_SQL, params).fetchall()
    assert [(r[0], r[4]) for r in rows] == [(D_HR_25, "rh_effectifs_2025.xlsx")]


def test_row_ranges():
    assert lineage.row_ranges([2, 3, 4, 7, 9, 10, 3]) == ["2–4", "7", "9–10"]
    assert lineage.row_ranges([]) == []


def test_kpi_trace_command(tmp_path, capsys):
    build_warehouse(tmp_path / ".build" / "w.duckdb")
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
    assert "feuille « Réseaux », commune 62126 : 1 ligne(s) — ligne(s) 4" in out
    assert main(["trace", "water_network_length", "--year", "2025", "--json", *common]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["release"]["release_id"] == "RA-2025-v1"
    assert main(["trace", "inconnu", "--year", "2025", *common]) == 1
    assert "kpi trace : aucune valeur de « inconnu »" in capsys.readouterr().err
