"""Great Expectations layer: suites generated from the contracts, run on a small warehouse.

GX costs seconds to import: it is loaded once per session (fixture ``gx``), every suite run
after that takes a tenth of a second.
"""

from __future__ import annotations

import csv
import gc
import json
import os
import re
import shutil

import duckdb
import pandas as pd
import pytest

from dagster_project.contracts.model import parse_contract
from dagster_project.ingest.store import ensure_tables
from dagster_project.quality import (
    mart_suites,
    record_outcomes,
    run_suite,
    suites_for_raw,
    sync_suites,
)
from dagster_project.quality.suites import raw_suite
from dagster_project.settings import COMMUNES_CSV

PSEUDONYMS = ["0123456789abcdef", "fedcba9876543210", "00112233aabbccdd"]
CLEAR_MATRICULE = "M004217"

FCT_DDL = """
create schema if not exists marts;
create table marts.fct_indicator_values (
    indicator_id varchar, year integer, code_insee varchar, value double, unit varchar,
    as_of_date date, kind varchar, computation varchar, comment varchar,
    source_ids varchar, delivery_ids varchar
)
"""


@pytest.fixture(scope="session")
def gx():
    """Import GX once for the whole session (about 3 s)."""
    import great_expectations

    return great_expectations


@pytest.fixture(scope="session")
def member_codes():
    with COMMUNES_CSV.open(encoding="utf-8") as handle:
        return [row["code_insee"] for row in csv.DictReader(handle)]


def _delivery(con, delivery_id, source_id, department, file_name, in_force=True, year=2025):
    con.execute(
        "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
        "file_path, file_name, file_sha256, received_at, processed_at, outcome, row_count, "
        "problem_count, warning_count, in_force) values (?, ?, ?, ?, ?, ?, 'sha', now(), now(), "
        "'accepted', 0, 0, 0, ?)",
        [delivery_id, year, department, source_id, f"sources/{file_name}", file_name, in_force],
    )


def _volumes(con, delivery_id, rows):
    for row_number, (udi, month, produced) in enumerate(rows, start=2):
        con.execute(
            "insert into raw.eau_volumes values (?, ?, ?, 0, 0, ?, ?, 'sha', 'Volumes', ?, 2025, 'water')",
            [udi, month, produced, produced * 0.8, delivery_id, row_number],
        )


def _fct_rows(member_codes, year, agglo_members=152):
    rows = []
    for code in member_codes:
        rows.append(("water_network_length", year, code, 12.5, "km", "value", "derived"))
    rows.append(
        ("water_network_length", year, None, 12.5 * len(member_codes), "km", "value", "derived")
    )
    rows.append(("council_members_total", year, None, agglo_members, "count", "value", "declared"))
    rows.append(("unemployment_rate", year, None, 8.6, "pct", "value", "declared"))
    rows.append(("craft_businesses_growth_1y", year, None, -7.0, "pct", "value", "declared"))
    return rows


def _insert_fct(con, rows):
    frame = pd.DataFrame(
        rows, columns=["indicator_id", "year", "code_insee", "value", "unit", "kind", "computation"]
    )
    con.register("fct_rows", frame)
    con.execute(
        "insert into marts.fct_indicator_values select indicator_id, year, code_insee, value, "
        "unit, make_date(year, 12, 31), kind, computation, null, 'src', 'd' from fct_rows"
    )
    con.unregister("fct_rows")


@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory, contracts, member_codes):
    """A small warehouse: deliveries, two raw tables with rows, a correct fact table."""
    path = tmp_path_factory.mktemp("validation") / "template.duckdb"
    con = duckdb.connect(str(path))
    ensure_tables(con, contracts.values())
    _delivery(con, "vol25", "eau_volumes", "water", "eau_volumes_2025.xlsx")
    _delivery(con, "vol25old", "eau_volumes", "water", "eau_volumes_2025_v1.xlsx", in_force=False)
    _volumes(con, "vol25", [("UDI-A", "2025-01-01", 100.0), ("UDI-A", "2025-02-01", 110.0)])
    # The replaced delivery had a negative volume and a duplicate: not in force, not judged.
    _volumes(con, "vol25old", [("UDI-A", "2025-01-01", -5.0), ("UDI-A", "2025-01-01", 1.0)])
    _delivery(con, "rh25", "rh_effectifs", "hr", "rh_effectifs_2025.xlsx")
    for row_number, matricule in enumerate(PSEUDONYMS, start=2):
        con.execute(
            "insert into raw_restricted.rh_effectifs values (?, '2025-10-01', 480, 'F', "
            "'TITULAIRE', 'B', 'Direction des finances', 1.0, '2012-03-01', 'rh25', 'sha', "
            "'Effectifs', ?, 2025, 'hr')",
            [matricule, row_number],
        )
    con.execute(FCT_DDL)
    _insert_fct(con, _fct_rows(member_codes, 2024, agglo_members=150))
    _insert_fct(con, _fct_rows(member_codes, 2025))
    con.close()
    return path


@pytest.fixture
def warehouse(tmp_path, warehouse_template):
    """A fresh copy of the small warehouse for one test."""
    path = tmp_path / "warehouse.duckdb"
    shutil.copyfile(warehouse_template, path)
    return path


def _run(path, name):
    with duckdb.connect(str(path), read_only=True) as con:
        return run_suite(con, name)


def _write(path, *statements):
    with duckdb.connect(str(path)) as con:
        for statement in statements:
            con.execute(statement)


# ---------------------------------------------------------------------------------------------
# Suites as data
# ---------------------------------------------------------------------------------------------


def test_one_suite_per_source_and_the_mart_suites(contracts):
    for source_id in contracts:
        assert suites_for_raw(source_id) == [f"raw_{source_id}"]
    assert suites_for_raw("no_such_source") == []
    assert mart_suites() == [
        "marts_fct_indicator_values",
        "marts_fct_commune_completeness",
        "marts_fct_yoy_jumps",
    ]


def test_raw_suite_follows_the_contract(contracts):
    suite = raw_suite(contracts["dechets_collecte"])
    by_type: dict[str, list[dict]] = {}
    for expectation in suite["expectations"]:
        by_type.setdefault(expectation["type"], []).append(expectation["kwargs"])
    assert {"column": "tonnage_t"} in by_type["expect_column_values_to_not_be_null"]
    assert {
        "column": "flux",
        "value_set": ["OMR", "EMB_PAP", "VERRE", "BIODECHETS", "ENCOMBRANTS"],
    } in by_type["expect_column_values_to_be_in_set"]
    assert {"column": "tonnage_t", "min_value": 0} in by_type["expect_column_values_to_be_between"]
    assert {"column_list": ["code_insee", "mois", "flux", "_campaign_year"]} in by_type[
        "expect_compound_columns_to_be_unique"
    ]
    assert suite["meta"]["blocking"] is True
    assert suite["meta"]["dataset"] == {"kind": "raw_in_force", "table": "raw.dechets_collecte"}
    # Optional columns with a default are filled at ingestion: never NULL either.
    prevention = raw_suite(contracts["dechets_prevention"])
    not_null = [
        e["kwargs"]["column"]
        for e in prevention["expectations"]
        if e["type"] == "expect_column_values_to_not_be_null"
    ]
    assert "foyers_sensibilises" in not_null and "code_insee" not in not_null
    # Exclusive bounds and personal data.
    hr = raw_suite(contracts["rh_effectifs"])
    assert hr["meta"]["sensitivity"] == "personal" and hr["meta"]["example_fr"] is None
    quotite = next(
        e["kwargs"]
        for e in hr["expectations"]
        if e["type"] == "expect_column_values_to_be_between" and e["kwargs"]["column"] == "quotite"
    )
    assert quotite == {"column": "quotite", "min_value": 0, "max_value": 1, "strict_min": True}


def test_sync_writes_a_gx_project_and_follows_a_new_contract(tmp_path, gx, contracts):
    extra = parse_contract(
        {
            "source_id": "velos_comptages",
            "department": "mobility",
            "title_fr": "Comptages vélo",
            "grain": ["compteur", "mois"],
            "columns": [
                {"name": "compteur", "type": "text"},
                {"name": "mois", "type": "month"},
                {"name": "passages", "type": "integer"},
            ],
        }
    )
    with_extra = {**contracts, "velos_comptages": extra}
    first = sync_suites(project_dir=tmp_path, contracts=with_extra)
    assert "raw_velos_comptages" in first.written
    assert len(first.written) == len(with_extra) + len(mart_suites())
    assert not sync_suites(project_dir=tmp_path, contracts=with_extra).changed
    # GX reads the files as its own suites.
    context = gx.get_context(mode="file", project_root_dir=str(tmp_path))
    suite = context.suites.get("raw_velos_comptages")
    assert suite.meta["blocking"] is True
    kinds = {e.expectation_type for e in suite.expectations}
    assert "expect_compound_columns_to_be_unique" in kinds
    # The source goes away: its generated suite goes too; a hand-made suite stays.
    (tmp_path / "gx" / "expectations" / "hand_made.json").write_text(
        json.dumps({"name": "hand_made", "expectations": [], "meta": {}}), encoding="utf-8"
    )
    report = sync_suites(project_dir=tmp_path, contracts=contracts)
    assert report.removed == ["raw_velos_comptages"]
    assert (tmp_path / "gx" / "expectations" / "hand_made.json").exists()


# ---------------------------------------------------------------------------------------------
# Raw suites
# ---------------------------------------------------------------------------------------------


def test_raw_suite_passes_on_rows_in_force(warehouse, gx):
    outcome = _run(warehouse, "raw_eau_volumes")
    assert outcome.passed, outcome.failures
    assert outcome.statistics["rows"] == 2  # the replaced delivery is not judged
    assert outcome.blocking and outcome.severity == "ERROR"
    assert outcome.asset == "raw/eau_volumes"


def test_raw_suite_fails_on_out_of_range_value(warehouse, gx):
    _write(
        warehouse,
        "insert into raw.eau_volumes values ('UDI-B', '2025-03-01', -12, 0, 0, 5, 'vol25', "
        "'sha', 'Volumes', 9, 2025, 'water')",
    )
    outcome = _run(warehouse, "raw_eau_volumes")
    assert not outcome.passed and outcome.blocking
    [failure] = outcome.failures
    assert "volume_produit_m3" in failure
    assert "1 ligne(s) en écart sur 3" in failure
    assert "eau_volumes_2025.xlsx, ligne 9" in failure and "-12" in failure


def test_raw_suite_fails_on_duplicate_grain(warehouse, gx):
    _write(
        warehouse,
        "insert into raw.eau_volumes values ('UDI-A', '2025-01-01', 1, 0, 0, 1, 'vol25', "
        "'sha', 'Volumes', 9, 2025, 'water')",
    )
    outcome = _run(warehouse, "raw_eau_volumes")
    assert not outcome.passed
    assert any("Pas de doublon (grain) sur (udi, mois)" in f for f in outcome.failures)


def test_missing_table_fails_in_french(tmp_path, gx):
    path = tmp_path / "empty.duckdb"
    duckdb.connect(str(path)).close()
    outcome = _run(path, "raw_eau_volumes")
    assert not outcome.passed
    assert outcome.failures == ["table raw.eau_volumes absente de l'entrepôt"]


def test_hr_failures_never_show_a_personal_value(warehouse, gx):
    _write(
        warehouse,
        # A duplicate pseudonym, a clear matricule that escaped pseudonymisation, values
        # out of the contract: every failure must be told without any of these values.
        f"insert into raw_restricted.rh_effectifs values ('{PSEUDONYMS[0]}', '2025-10-01', 100, "
        "'X', 'TITULAIRE', null, 'Direction des finances', 1.5, '2012-03-01', 'rh25', 'sha', "
        "'Effectifs', 20, 2025, 'hr')",
        f"insert into raw_restricted.rh_effectifs values ('{CLEAR_MATRICULE}', '2025-10-01', 480, "
        "'M', 'APPRENTI', null, 'Direction des finances', 0.5, '2012-03-01', 'rh25', 'sha', "
        "'Effectifs', 21, 2025, 'hr')",
    )
    outcome = _run(warehouse, "raw_rh_effectifs")
    assert not outcome.passed and outcome.blocking
    assert len(outcome.failures) == 6  # grain, regex, age, sexe, quotite, categorie
    with duckdb.connect(str(warehouse)) as con:
        record_outcomes(con, "run-hr", [outcome])
        stored = con.execute(
            "select description_fr || details_json from audit.check_results where run_id = 'run-hr'"
        ).fetchone()[0]
    texts = [*outcome.failures, outcome.result_json, stored]
    for text in texts:
        for value in [*PSEUDONYMS, CLEAR_MATRICULE, "1.5", "'X'", '"X"', "ligne 20", "ligne 21"]:
            assert value not in text, (value, text)
    assert any("matricule" in f and "1 ligne(s) en écart" in f for f in outcome.failures)
    details = json.loads(outcome.result_json)
    for result in details["results"]:
        assert set(result["result"]) <= {
            "element_count",
            "unexpected_count",
            "unexpected_percent",
            "missing_count",
            "missing_percent",
            "unexpected_percent_nonmissing",
        }


# ---------------------------------------------------------------------------------------------
# Mart suites
# ---------------------------------------------------------------------------------------------


def test_mart_suites_pass_on_a_correct_fact_table(warehouse, gx):
    for name in mart_suites():
        outcome = _run(warehouse, name)
        assert outcome.passed, (name, outcome.failures)
        assert outcome.asset == "marts/fct_indicator_values"


def test_percentage_out_of_range_is_blocking(warehouse, gx):
    _write(
        warehouse,
        "update marts.fct_indicator_values set value = 108 "
        "where indicator_id = 'unemployment_rate' and year = 2025",
    )
    outcome = _run(warehouse, "marts_fct_indicator_values")
    assert not outcome.passed and outcome.blocking
    [failure] = outcome.failures
    assert "pourcentage" in failure and "unemployment_rate 2025 agglomération" in failure
    assert "108" in failure


def test_missing_commune_row_is_blocking(warehouse, gx, member_codes):
    _write(
        warehouse,
        "delete from marts.fct_indicator_values where indicator_id = 'water_network_length' "
        f"and year = 2025 and code_insee = '{member_codes[7]}'",
    )
    outcome = _run(warehouse, "marts_fct_commune_completeness")
    assert not outcome.passed and outcome.blocking
    assert len(outcome.failures) == 2  # 99 rows instead of 100; one member commune missing
    assert all(
        "water_network_length 2025 : 99 ligne(s) communale(s)" in f for f in outcome.failures
    )
    assert all(member_codes[7] in f for f in outcome.failures)


def test_commune_outside_the_agglomeration_is_blocking(warehouse, gx):
    _write(
        warehouse,
        "update marts.fct_indicator_values set code_insee = '59350' "
        "where indicator_id = 'water_network_length' and year = 2024 and code_insee = "
        "(select min(code_insee) from marts.fct_indicator_values)",
    )
    outcome = _run(warehouse, "marts_fct_commune_completeness")
    assert not outcome.passed
    assert any("hors de l'agglomération" in f for f in outcome.failures)


def test_year_over_year_jump_is_a_non_blocking_warning(warehouse, gx):
    _write(
        warehouse,
        "update marts.fct_indicator_values set value = 60 "
        "where indicator_id = 'council_members_total' and year = 2024",
    )
    jumps = _run(warehouse, "marts_fct_yoy_jumps")
    assert not jumps.passed
    assert not jumps.blocking and jumps.severity == "WARN"
    assert jumps.failures == [
        "L'évolution sur un an de la valeur d'agglomération reste dans ±50 % : 1 ligne(s) en "
        "écart sur 2 — ex. council_members_total : 60 en 2024, 152 en 2025 (+153 %)"
    ]
    # The values themselves are fine: nothing blocks the freeze.
    assert _run(warehouse, "marts_fct_indicator_values").passed
    with duckdb.connect(str(warehouse)) as con:
        record_outcomes(con, "run-1", [jumps])
        blocking = con.execute(
            "select count(*) from audit.check_results where run_id = 'run-1' and blocking and not passed"
        ).fetchone()[0]
    assert blocking == 0


# ---------------------------------------------------------------------------------------------
# Audit table and Dagster checks
# ---------------------------------------------------------------------------------------------


def test_record_outcomes_creates_the_audit_table_and_replaces_reruns(warehouse, gx):
    outcome = _run(warehouse, "raw_eau_volumes")
    with duckdb.connect(str(warehouse)) as con:
        record_outcomes(con, "run-a", [outcome])
        record_outcomes(con, "run-a", [outcome])
        rows = con.execute(
            "select run_id, check_name, asset, passed, blocking, severity, description_fr, "
            "details_json, checked_at from audit.check_results"
        ).fetchall()
    assert len(rows) == 1
    run_id, name, asset, passed, blocking, severity, description, details, checked_at = rows[0]
    assert (run_id, name, asset, passed, blocking, severity) == (
        "run-a",
        "raw_eau_volumes",
        "raw/eau_volumes",
        True,
        True,
        "ERROR",
    )
    assert "attente(s) satisfaite(s)" in description and checked_at is not None
    assert json.loads(details)["suite"] == "raw_eau_volumes"


def _plain_gx_result(df, suite, personal):
    """What GX's public path gives: a batch of the frame, validated with the suite as is."""
    import great_expectations as gx

    from dagster_project.quality.runner import _batch_definition

    batch = _batch_definition().get_batch(batch_parameters={"dataframe": df})
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": 0 if personal else 20}
    return batch.validate(gx.ExpectationSuite(**suite), result_format=result_format).to_json_dict()


def _same_text(result):
    """The result as stored (JSON text), but for the batch's load time and the order of the
    failed metrics of an expectation GX could not evaluate (GX lists them from a set: their
    order changes from one validation to the next, whichever path)."""
    for item in result.get("results") or []:
        info = item.get("exception_info") or {}
        if "raised_exception" not in info:
            item["exception_info"] = dict(sorted(info.items()))
    text = json.dumps(result, ensure_ascii=False)
    return re.sub(r'"ge_load_time": "[^"]*"', "", text)


def _raised(info: dict) -> bool:
    """GX's exception info: one, or one per metric that failed (by metric id)."""
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return any(isinstance(v, dict) and v.get("raised_exception") for v in info.values())


def _break_volumes_and_hr(warehouse):
    """A negative volume, and an HR row in clear with an unknown sex and too many FTE."""
    _write(
        warehouse,
        "insert into raw.eau_volumes values ('UDI-A', '2025-01-01', -12, 0, 0, 5, 'vol25', "
        "'sha', 'Volumes', 9, 2025, 'water')",
        f"insert into raw_restricted.rh_effectifs values ('{CLEAR_MATRICULE}', '2025-10-01', 100, "
        "'X', 'TITULAIRE', null, 'Direction des finances', 1.5, '2012-03-01', 'rh25', 'sha', "
        "'Effectifs', 20, 2025, 'hr')",
    )


def test_validation_gives_gx_plain_result_byte_for_byte(warehouse, gx):
    """runner._validate hands GX the expectations without their meta and builds the validator
    itself (runner.py says why): its result must be GX's own, meta included, key order too."""
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.runner import _validate
    from dagster_project.quality.suites import load_suite

    _break_volumes_and_hr(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, personal in (("raw_eau_volumes", False), ("raw_rh_effectifs", True)):
            suite = load_suite(name)
            df = build_dataset(con, suite["meta"]["dataset"])
            ours = _validate(df, suite, personal)
            assert not ours["success"]
            assert _same_text(ours) == _same_text(_plain_gx_result(df, suite, personal))
            assert all(r["expectation_config"]["meta"]["description_fr"] for r in ours["results"])
    # An expectation GX cannot evaluate (its column is missing), one without meta, and a suite
    # whose expectations have no id (their meta is then left to GX).
    df = pd.DataFrame({"a": [1, 2, None]})
    expectations = [
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "a"},
            "meta": {"x": 1},
        },
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "b", "min_value": 0}},
        {"type": "expect_column_to_exist", "kwargs": {"column": "c"}, "meta": {"y": [1, "é"]}},
    ]
    with_ids = [
        {**e, "id": f"00000000-0000-0000-0000-00000000000{i}"} for i, e in enumerate(expectations)
    ]
    for listed in (with_ids, expectations):
        suite = {"name": "essai", "expectations": listed, "meta": {}}
        ours = _validate(df, suite, False)
        assert any(_raised(r["exception_info"]) for r in ours["results"])
        assert _same_text(ours) == _same_text(_plain_gx_result(df, suite, False))


def test_asset_checks_cover_every_suite_on_the_right_assets(contracts):
    from dagster import AssetKey

    from dagster_project.defs.assets.ingestion import raw_asset_key
    from dagster_project.defs.checks import build_mart_checks, build_raw_checks

    raw = build_raw_checks()  # one step for the sources that reference none, one per level
    assert [check.op.name for check in raw] == ["raw_suites", "raw_suites_2"]
    assert {spec.name for spec in raw[1].check_specs} == {
        f"raw_{s}" for s, c in contracts.items() if c.referenced_sources
    }
    assert sum(len(list(check.check_specs)) for check in raw) == len(contracts)
    targets = {spec.asset_key: spec for check in raw for spec in check.check_specs}
    for contract in contracts.values():
        spec = targets[raw_asset_key(contract)]
        assert spec.name == f"raw_{contract.source_id}" and spec.blocking
    marts = {spec.name: spec for check in build_mart_checks() for spec in check.check_specs}
    assert set(marts) == set(mart_suites())
    assert all(s.asset_key == AssetKey(["marts", "fct_indicator_values"]) for s in marts.values())
    assert marts["marts_fct_indicator_values"].blocking
    assert not marts["marts_fct_yoy_jumps"].blocking


def test_asset_check_runs_suite_and_records_under_the_run_id(warehouse, gx):
    from dagster import AssetCheckSeverity, AssetKey, ResourceDefinition, build_asset_check_context

    from dagster_project.defs.checks import build_mart_checks
    from dagster_project.defs.resources import WarehouseResource

    _write(
        warehouse,
        "update marts.fct_indicator_values set value = 60 "
        "where indicator_id = 'council_members_total' and year = 2024",
    )
    [check] = build_mart_checks()  # the marts' suites, run together in one step
    resources = {
        "warehouse": WarehouseResource(path=str(warehouse)),
        "gx": ResourceDefinition.none_resource(),  # GX in this process (no worker)
    }
    context = build_asset_check_context(resources=resources)
    results = {r.check_name: r for r in check(context)}
    run_id = context.op_execution_context.run_id
    del context  # tear the resources down now, not at interpreter exit
    gc.collect()
    assert set(results) == set(mart_suites())
    result = results["marts_fct_yoy_jumps"]
    assert result.asset_key == AssetKey(["marts", "fct_indicator_values"])
    assert not result.passed and result.severity == AssetCheckSeverity.WARN
    assert "council_members_total" in result.metadata["échecs"].value
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select run_id, check_name, passed, blocking from audit.check_results "
            "where check_name = 'marts_fct_yoy_jumps'"
        ).fetchall()
        recorded = {
            r[0] for r in con.execute("select check_name from audit.check_results").fetchall()
        }
    assert rows == [(run_id, "marts_fct_yoy_jumps", False, False)]
    assert recorded == set(mart_suites())


def test_scrub_masks_pseudonyms_in_strings_but_keeps_numbers_valid():
    import json as _json

    from dagster_project.quality.runner import scrub_strings

    data = {"observed": 3.4322820037105752, "examples": ["0123456789abcdef", "ok"], "n": 12}
    masked = scrub_strings(data)
    assert masked["observed"] == 3.4322820037105752
    assert "0123456789abcdef" not in _json.dumps(masked)
    assert masked["examples"][1] == "ok"


# ---------------------------------------------------------------------------------------------
# Great Expectations in a worker process (quality/gx_worker.py)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def gx_worker(monkeypatch):
    from dagster_project.quality import gx_worker

    monkeypatch.delenv(gx_worker.ENV, raising=False)
    yield gx_worker
    gx_worker.stop()


def test_the_worker_gives_the_result_this_process_gives(warehouse, gx, gx_worker):
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.runner import _validate
    from dagster_project.quality.suites import load_suite

    _break_volumes_and_hr(warehouse)
    here = {name: _run(warehouse, name) for name in ("raw_eau_volumes", "raw_rh_effectifs")}
    assert gx_worker.start() and gx_worker.running()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, personal in (("raw_eau_volumes", False), ("raw_rh_effectifs", True)):
            suite = load_suite(name)
            df = build_dataset(con, suite["meta"]["dataset"])
            theirs = gx_worker.validate(df, suite, personal)
            assert not theirs["success"]
            assert _same_text(theirs) == _same_text(_validate(df, suite, personal))
    for name, outcome in here.items():  # what is recorded: the same
        there = _run(warehouse, name)
        assert (there.passed, there.failures) == (outcome.passed, outcome.failures)
        assert _same_text(json.loads(there.result_json)) == _same_text(
            json.loads(outcome.result_json)
        )
        stamp = re.compile(r"\d{8}T\d{6}\.\d{6}Z")  # when the batch was validated
        assert stamp.sub("", there.evidence_json) == stamp.sub("", outcome.evidence_json)
    pid = gx_worker._worker.process.pid
    gx_worker.stop()
    assert not gx_worker.running()
    _gone(pid)  # stop() returns at once; the worker is waited for in the background


def test_a_suite_validated_in_two_halves_gives_the_whole_suite_result(warehouse, gx, gx_worker):
    """GX loaded here and a worker: half of a suite's expectations go to the worker, the other
    half is validated here meanwhile; the result put back together is GX's of the whole suite
    (failures, personal data, order, statistics)."""
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.runner import _validate
    from dagster_project.quality.suites import load_suite

    _break_volumes_and_hr(warehouse)
    assert gx_worker.start()
    sent = []
    real_send = gx_worker._worker.send
    gx_worker._worker.send = lambda request: sent.append(request[2]) or real_send(request)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for name, personal in (("raw_eau_volumes", False), ("raw_rh_effectifs", True)):
            suite = load_suite(name)
            assert len(suite["expectations"]) >= gx_worker.SPLIT_MIN_EXPECTATIONS
            df = build_dataset(con, suite["meta"]["dataset"])
            merged = gx_worker.validate(df, suite, personal, in_halves=True)
            assert len(sent[-1]["expectations"]) == (len(suite["expectations"]) + 1) // 2
            whole = _validate(df, suite, personal)
            assert not merged["success"] and merged["statistics"] == whole["statistics"]
            assert _same_text(merged) == _same_text(whole)


def test_halves_are_put_back_in_gx_order_or_not_at_all():
    """GX lists a suite's results grouped by column (in the order columns first appear), and
    those of expectations that raised first: the halves' results are put in that order, and
    not merged at all when one raised or one is missing (the suite is then validated whole)."""
    from dagster_project.quality.gx_worker import merge_results

    def expectation(id_, column=None):
        return {"id": id_, "type": "t", "kwargs": {"column": column} if column else {}}

    def result(id_, success=True, raised=False):
        info = {"raised_exception": raised, "exception_traceback": None}
        return {"success": success, "expectation_config": {"id": id_}, "exception_info": info}

    suite = {
        "expectations": [
            expectation("a", "x"),
            expectation("b", "y"),
            expectation("c"),
            expectation("d", "x"),
        ]
    }
    first = {"success": True, "results": [result("a"), result("c", success=False)]}
    second = {"success": True, "results": [result("b"), result("d")]}
    merged = merge_results(suite, first, second)
    assert [r["expectation_config"]["id"] for r in merged["results"]] == ["a", "d", "b", "c"]
    assert not merged["success"]
    assert merged["statistics"] == {
        "evaluated_expectations": 4,
        "successful_expectations": 3,
        "unsuccessful_expectations": 1,
        "success_percent": 75.0,
    }
    assert merge_results(suite, first, {"results": [result("b")]}) is None
    raised = {"results": [result("b"), result("d", success=False, raised=True)]}
    assert merge_results(suite, first, raised) is None
    per_metric = dict(result("d", success=False), exception_info={"metric-1": {"x": 1}})
    assert merge_results(suite, first, {"results": [result("b"), per_metric]}) is None


def test_a_half_failing_here_leaves_the_worker_in_step(warehouse, gx, gx_worker, monkeypatch):
    """An error while this process validates its half: the worker's answer to the other half
    is read all the same, and the next suite gets its own answer, not that one."""
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.runner import _validate
    from dagster_project.quality.suites import load_suite

    assert gx_worker.start()
    real = gx_worker._validate_here
    calls = []

    def failing_once(*args):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("panne simulée")
        return real(*args)

    monkeypatch.setattr(gx_worker, "_validate_here", failing_once)
    suite = load_suite("raw_eau_volumes")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        df = build_dataset(con, suite["meta"]["dataset"])
    with pytest.raises(RuntimeError, match="panne simulée"):
        gx_worker.validate(df, suite, False, in_halves=True)
    again = gx_worker.validate(df, suite, False, in_halves=True)
    assert gx_worker.running()
    assert _same_text(again) == _same_text(_validate(df, suite, False))


def _gone(pid: int, seconds: float = 15.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)  # a process not yet waited for (zombie) still answers
        except ProcessLookupError:
            return
        time.sleep(0.05)
    pytest.fail(f"the worker {pid} was not ended and waited for")


def test_a_dead_worker_never_fails_a_check(warehouse, gx, gx_worker):
    assert gx_worker.start()
    gx_worker._worker.process.kill()
    gx_worker._worker.process.wait()
    outcome = _run(warehouse, "raw_eau_volumes")  # validated here instead
    assert outcome.passed and not gx_worker.running()


def test_the_worker_ends_with_the_process_that_started_it(tmp_path):
    """A run killed before it could stop its worker leaves no process behind."""
    import subprocess
    import sys
    import time

    script = (
        "import os, sys; from dagster_project.quality import gx_worker; gx_worker.start(); "
        "print(gx_worker._worker.process.pid, flush=True); os._exit(0)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    pid = int(out.stdout.split()[0])
    for _ in range(300):  # the worker sees the end of its socket (after loading GX)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        pytest.fail("the worker outlived the process that started it")


def test_no_worker_when_asked_not_to(gx_worker, monkeypatch):
    monkeypatch.setenv(gx_worker.ENV, "0")
    assert not gx_worker.start() and not gx_worker.running()


def test_a_large_frame_is_validated_here_not_copied_to_the_worker(warehouse, gx, gx_worker):
    from dagster_project.quality.datasets import build_dataset
    from dagster_project.quality.suites import load_suite

    assert gx_worker.start()
    asked = []
    real_send = gx_worker._worker.send
    gx_worker._worker.send = lambda request: asked.append(request[1].shape) or real_send(request)
    suite = load_suite("raw_eau_volumes")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        df = build_dataset(con, suite["meta"]["dataset"])
    small = gx_worker.validate(df, suite, False)
    gx_worker.MAX_FRAME_BYTES, saved = 1, gx_worker.MAX_FRAME_BYTES
    try:
        large = gx_worker.validate(df, suite, False)
    finally:
        gx_worker.MAX_FRAME_BYTES = saved
    assert asked == [df.shape]  # the second one stayed here
    assert _same_text(small) == _same_text(large)


def test_a_run_with_checks_validates_in_a_worker_started_before_its_first_step(gx_worker):
    """The runs the daemon launches too: Dagster sets the run's resources up first."""
    from dagster import Definitions, asset, define_asset_job

    from dagster_project.defs.resources import GreatExpectationsResource

    seen = {}

    @asset
    def first():
        seen["first"] = gx_worker.running()  # already started, loading GX meanwhile

    @asset(deps=[first], required_resource_keys={"gx"})
    def checked():
        seen["checked"] = gx_worker.running()

    defs = Definitions(
        assets=[first, checked],
        jobs=[define_asset_job("a_job")],
        resources={"gx": GreatExpectationsResource()},
    )
    assert defs.resolve_job_def("a_job").execute_in_process().success
    assert seen == {"first": True, "checked": True}
    assert not gx_worker.running()  # stopped with the run


FORKED_WORKER = """
import json, os, re, sys
import duckdb
from dagster_project.quality import gx_worker, runner

runner._batch_definition()  # GX loaded here, as in a run of the warm process
runner.TWO_AT_ONCE_MAX_ROWS = int(os.environ.get("TWO_AT_ONCE_MAX_ROWS", "200000"))
assert gx_worker.fork_worker() and gx_worker.two_at_once()
here = []
validate_here = gx_worker._validate_here
gx_worker._validate_here = lambda *a: here.append(a[1]["name"]) or validate_here(*a)
halves = []  # the suites validated in two halves, one by the copy, one here
merge = gx_worker.merge_results
gx_worker.merge_results = lambda suite, *a: halves.append(suite["name"]) or merge(suite, *a)
names = sys.argv[2:]
stamp = re.compile(r"\\d{8}T\\d{6}\\.\\d{6}Z")
with duckdb.connect(sys.argv[1], read_only=True) as con:
    outcomes = list(runner.run_suites(con, names))
gx_worker.stop()
print(json.dumps({
    "names": [name for name, _ in outcomes],
    "outcomes": [[o.passed, o.failures, stamp.sub("", o.evidence_json)] for _, o in outcomes],
    "validated_here": len([name for name in here if name not in halves]),
    "halves": halves,
}))
"""


def test_a_forked_worker_and_this_process_validate_two_suites_at_once(warehouse, gx):
    """In a run of the warm process (GX loaded), a copy of the process validates one suite while
    the process validates another (runner.run_suites): same outcomes, in the suites' order, as
    one at a time here."""
    import subprocess
    import sys

    _break_volumes_and_hr(warehouse)
    names = ["raw_eau_volumes", "raw_rh_effectifs", "raw_eau_reseau", "raw_eau_udi"]
    stamp = re.compile(r"\d{8}T\d{6}\.\d{6}Z")
    expected = []
    for name in names:
        outcome = _run(warehouse, name)
        expected.append([outcome.passed, outcome.failures, stamp.sub("", outcome.evidence_json)])
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER, str(warehouse), *names],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["names"] == names
    assert result["outcomes"] == expected
    assert not result["outcomes"][0][0] and not result["outcomes"][1][0]  # the broken ones
    # the others went to the copy, or were validated in two halves there and here at once
    assert result["validated_here"] < len(names)
    assert result["validated_here"] + len(result["halves"]) > 0

    # tables larger than the limit: one suite at a time (one frame in memory), by the copy (in
    # two halves, the copy's and this process's, for a suite of many expectations)
    done = subprocess.run(
        [sys.executable, "-c", FORKED_WORKER, str(warehouse), *names],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TWO_AT_ONCE_MAX_ROWS": "0"},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcomes"] == expected and result["validated_here"] == 0
    assert result["halves"]  # the suites of many expectations, in two halves at once


FORKED_JOBS = """
import json, os, sys
from dagster_project.quality import gx_worker, runner

assert gx_worker.start_job("os:getpid") is None  # no worker: the caller does the work
runner._batch_definition()  # GX loaded here, as in a run of the warm process
assert gx_worker.fork_worker()
pid = gx_worker.start_job("os:getpid")
failing = gx_worker.start_job("json:loads", "pas du json")
late = gx_worker.start_job("subprocess:getoutput", "sleep 0.3; echo fini")
out = {"here": os.getpid(), "there": gx_worker.job_result(pid)}
try:
    gx_worker.job_result(failing)
except ValueError as exc:
    out["error"] = type(exc).__name__
gx_worker.stop()  # collects the result of the job still running first
out["late"] = gx_worker.job_result(late)
out["after_stop"] = gx_worker.start_job("os:getpid")
print(json.dumps(out))
"""


def test_a_forked_worker_runs_the_jobs_the_run_hands_it():
    """gx_worker.start_job: a function run in a thread of the worker (another process), its
    result or exception back in the run, also once the worker was stopped; no worker (or one
    still loading GX): None, the caller does the work itself."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", FORKED_JOBS], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["there"] not in (None, out["here"])  # run by the worker
    assert out["error"] == "JSONDecodeError"
    assert out["late"] == "fini"
    assert out["after_stop"] is None
