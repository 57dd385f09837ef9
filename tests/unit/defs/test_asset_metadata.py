"""What the Dagster UI shows of the assets before and after a run (issue 18): the ingestion
assets' column schema, owners and row count; the one check that summarises dbt's tests; the
dbt step's progress lines."""

from __future__ import annotations

import datetime as dt

from dagster import AssetCheckSeverity, AssetKey

from dagster_project.defs.assets.dbt import (
    DBT_TESTS_CHECK,
    DbtProgress,
    dbt_tests_result,
    record_dbt_results,
)
from dagster_project.defs.assets.ingestion import (
    build_ingestion_assets,
    column_schema,
    ingestion_owners,
    raw_asset_key,
)
from dagster_project.defs.resources import WarehouseResource
from dagster_project.settings import PROJECT_ROOT


def test_an_ingestion_asset_shows_its_contract_columns_before_any_run(contracts):
    from dagster._core.definitions.metadata import TableMetadataSet

    contract = contracts["rh_effectifs"]
    key = raw_asset_key(contract)
    [spec] = [s for a in build_ingestion_assets(contracts) for s in a.specs if s.key == key]
    schema = TableMetadataSet.extract(spec.metadata).column_schema
    columns = {c.name: c for c in schema.columns}
    # the birth date never reaches the warehouse: its age in months does
    assert "date_naissance" not in columns and columns["age_months"].type == "BIGINT"
    assert columns["matricule"].constraints.nullable is False
    assert any("pseudonymisé" in o for o in columns["matricule"].constraints.other)
    assert columns["categorie"].constraints.nullable is True
    assert "valeurs : A, B, C" in columns["categorie"].constraints.other
    assert columns["sexe"].description == "Sexe de l'agent : F ou M."
    assert list(columns)[-1] == "_department"  # then the lineage columns
    assert schema == column_schema(contract)


def test_owners_come_from_the_campaign_file_else_the_department(contracts, tmp_path):
    owners = ingestion_owners(contracts, PROJECT_ROOT / "sources", dt.date(2026, 1, 15))
    assert owners["eau_qualite"] == ["marc.hennebelle@bethunebruay.fr"]  # the source's contact
    assert owners["eau_volumes"] == ["sophie.delattre@bethunebruay.fr"]  # the department's
    assert owners["indicateurs_declares"] == ["pilotage@bethunebruay.fr"]  # every department
    # no campaign file, or one that does not load: the definitions still load
    assert ingestion_owners(contracts, tmp_path / "absent")["eau_udi"] == ["team:water"]
    (tmp_path / "2025").mkdir()
    (tmp_path / "2025" / "campagne.yml").write_text("campaign_year: [", encoding="utf-8")
    fallback = ingestion_owners(contracts, tmp_path, "2026-01-15")
    assert fallback["rh_effectifs"] == ["team:hr"]
    assert fallback["indicateurs_declares"] == ["team:pilotage"]
    [assets_def, *_] = build_ingestion_assets(contracts, owners=fallback)
    assert all(o.startswith("team:") for s in assets_def.specs for o in s.owners)


def _run_results(*results):
    return {
        "results": [
            {"unique_id": uid, "status": status, "failures": failures, "message": message}
            for uid, status, failures, message in results
        ]
    }


def test_the_dbt_tests_check_summarises_the_recorded_results(tmp_path):
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    record_dbt_results(
        warehouse,
        "run-1",
        _run_results(
            ("model.kpi_warehouse.fct_indicator_values", "success", None, ""),
            ("test.kpi_warehouse.not_null_x.abc", "pass", 0, ""),
            ("test.kpi_warehouse.unique_y.def", "fail", 3, "Got 3 results"),
            ("test.kpi_warehouse.plausible_z.123", "warn", 1, "Got 1 result"),
        ),
    )
    result = dbt_tests_result(warehouse, "run-1")
    assert (result.asset_key, result.check_name) == (
        DBT_TESTS_CHECK.asset_key,
        DBT_TESTS_CHECK.name,
    )
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["réussis"].value == 1
    assert result.metadata["en_échec"].value == 1
    assert result.metadata["en_avertissement"].value == 1
    assert "unique_y (3 ligne(s))" in result.metadata["échecs"].value
    assert "plausible_z" in result.metadata["échecs"].value

    record_dbt_results(
        warehouse,
        "run-2",
        _run_results(
            ("test.kpi_warehouse.not_null_x.abc", "pass", 0, ""),
            ("test.kpi_warehouse.plausible_z.123", "warn", 1, ""),
        ),
    )
    warned = dbt_tests_result(warehouse, "run-2")
    assert not warned.passed and warned.severity == AssetCheckSeverity.WARN
    assert dbt_tests_result(warehouse, None).metadata["exécution"].value == "run-2"  # the last


def test_the_dbt_step_records_and_reads_back_on_one_connection(tmp_path):
    """The dbt step passes its write connection to both: what it records is what the check
    reads, before the connection is closed."""
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    results = _run_results(
        ("model.kpi_warehouse.fct_indicator_values", "success", None, ""),
        ("test.kpi_warehouse.unique_y.def", "fail", 3, "Got 3 results"),
    )
    with warehouse.connect(step="résultats de dbt build") as con:
        assert record_dbt_results(warehouse, "run-1", results, con=con) == 1
        together = dbt_tests_result(warehouse, "run-1", con=con)
    apart = dbt_tests_result(warehouse, "run-1")
    assert not together.passed and together.description == apart.description
    assert together.metadata["échecs"].value == apart.metadata["échecs"].value


def test_a_limited_dbt_build_carries_the_other_nodes_latest_results(tmp_path):
    """A run limited to some sources tests only what depends on them: the other nodes' latest
    results are carried into its rows, so the run's evidence covers the whole project; a node
    never run blocks; a node gone from the project is not carried."""
    warehouse = WarehouseResource(path=str(tmp_path / "w.duckdb"))
    a, b, gone = "test.kpi_warehouse.a.1", "test.kpi_warehouse.b.2", "test.kpi_warehouse.gone.3"
    model = "model.kpi_warehouse.m"
    record_dbt_results(
        warehouse,
        "run-1",
        _run_results(
            (model, "success", None, ""),
            (a, "pass", 0, ""),
            (b, "fail", 2, "Got 2 results"),
            (gone, "pass", 0, ""),
        ),
        [model, a, b, gone],
    )
    new = "test.kpi_warehouse.new.4"
    failures = record_dbt_results(
        warehouse, "run-2", _run_results((a, "pass", 0, "")), [model, a, b, new]
    )
    assert failures == 2  # b still fails (carried), new has never run
    with warehouse.connect(read_only=True) as con:
        rows = {
            r[0]: r[1:]
            for r in con.execute(
                "select unique_id, status, carried_from from audit.dbt_results "
                "where run_id = 'run-2'"
            ).fetchall()
        }
    assert rows == {
        a: ("pass", None),
        b: ("fail", "run-1"),
        model: ("success", "run-1"),
        new: ("not_run", None),
    }
    result = dbt_tests_result(warehouse, "run-2")
    assert not result.passed and result.severity == AssetCheckSeverity.ERROR
    assert result.metadata["repris"].value == 1
    assert result.metadata["jamais_exécutés"].value == 1
    assert "new" in result.metadata["échecs"].value
    # carried again by a third limited run: the origin stays the run that produced it
    record_dbt_results(warehouse, "run-3", _run_results((new, "pass", 0, "")), [model, a, b, new])
    with warehouse.connect(read_only=True) as con:
        assert con.execute(
            "select carried_from from audit.dbt_results where run_id = 'run-3' and unique_id = ?",
            [b],
        ).fetchone() == ("run-1",)


def test_the_dbt_assets_carry_one_summary_check_only():
    from dagster_project.defs.assets.dbt import build_dbt_assets

    dbt_assets = build_dbt_assets()
    assert set(dbt_assets.check_keys) == {DBT_TESTS_CHECK}
    assert AssetKey(["marts", "fct_indicator_values"]) in dbt_assets.keys


def test_the_dbt_step_says_how_far_it_is():
    counter = DbtProgress()
    assert counter.line() == "dbt : lecture et compilation du projet…"

    def event(name, index, status=None, node="stg_eau_udi", total=368):
        data = {"index": index, "total": total, "node_info": {"node_name": node}}
        return {"info": {"name": name}, "data": {**data, "status": status}}

    counter.see({"info": {"name": "MainReportVersion"}, "data": {"version": "1.11"}})
    counter.see(event("LogStartLine", 1))
    assert counter.line() == "dbt : 0/368 nœuds terminés… (en cours : stg_eau_udi)"
    counter.see(event("LogModelResult", 1, "success"))
    counter.see(event("LogStartLine", 2, node="not_null_x"))
    counter.see(
        {
            "info": {"name": "LogTestResult"},
            "data": {"index": 2, "num_models": 368, "status": "fail"},
        }
    )
    assert counter.line() == "dbt : 2/368 nœuds terminés, 1 en échec…"
