"""The gate reads the results that hold for a run: a run limited to some sources carries the
other suites' and dbt nodes' latest results, so a release's evidence is whole."""

import datetime as dt

import duckdb
import pytest

from dagster_project.release.gate import (
    blocking_failures,
    run_checks,
    run_dbt_results,
    validation_summary,
)
from dagster_project.warehouse.schema import ensure

SUITES = {"raw_a", "raw_b", "marts_values"}
T0 = dt.datetime(2026, 12, 5, 10, 0, 0)


def _check(con, run_id, name, passed, minutes, blocking=True):
    con.execute(
        "insert into audit.check_results (run_id, checked_at, check_name, asset, passed, "
        "blocking, severity, description_fr) values (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            T0 + dt.timedelta(minutes=minutes),
            name,
            f"raw/{name}",
            passed,
            blocking,
            "ERROR" if blocking else "WARN",
            f"suite {name}",
        ],
    )


def _dbt(con, run_id, unique_id, status, minutes, carried_from=None):
    con.execute(
        "insert into audit.dbt_results (run_id, unique_id, status, message, recorded_at, "
        "carried_from) values (?, ?, ?, '', ?, ?)",
        [run_id, unique_id, status, T0 + dt.timedelta(minutes=minutes), carried_from],
    )


@pytest.fixture
def con(monkeypatch):
    monkeypatch.setattr("dagster_project.release.gate._suite_names", lambda: SUITES)
    con = duckdb.connect()
    ensure(con, "audit.check_results", "audit.dbt_results")
    # run-1: full; raw_b fails
    _check(con, "run-1", "raw_a", True, 1)
    _check(con, "run-1", "raw_b", False, 1)
    _check(con, "run-1", "marts_values", True, 2)
    _check(con, "run-1", "raw_gone", False, 1)  # a suite since removed from the project
    _dbt(con, "run-1", "test.t1", "pass", 3)
    _dbt(con, "run-1", "test.t2", "fail", 3)
    # run-2: limited to source a (raw_a and the marts checked again; dbt carried t2)
    _check(con, "run-2", "raw_a", True, 10)
    _check(con, "run-2", "marts_values", True, 11)
    _dbt(con, "run-2", "test.t1", "pass", 12)
    _dbt(con, "run-2", "test.t2", "fail", 12, carried_from="run-1")
    # run-3: later, fixes b
    _check(con, "run-3", "raw_b", True, 20)
    _dbt(con, "run-3", "test.t1", "pass", 21)
    _dbt(con, "run-3", "test.t2", "pass", 21)
    yield con
    con.close()


def test_a_limited_run_holds_the_other_suites_latest_results(con):
    checks = {c["check"]: c for c in run_checks(con, "run-2")}
    assert set(checks) == SUITES  # the removed suite is not carried
    assert checks["raw_a"]["carried_from"] is None
    assert checks["raw_b"] == {
        "check": "raw_b",
        "asset": "raw/raw_b",
        "passed": False,
        "blocking": True,
        "severity": "ERROR",
        "description": "suite raw_b",
        "carried_from": "run-1",
    }
    failing = {f["check"] for f in blocking_failures(con, "run-2")}
    assert failing == {"raw_b", "test.t2"}


def test_an_earlier_run_is_judged_without_the_later_results(con):
    assert {f["check"] for f in blocking_failures(con, "run-1")} == {
        "raw_b",
        "raw_gone",  # its own row, recorded by that run
        "test.t2",
    }
    assert blocking_failures(con, "run-3") == []
    summary = validation_summary(con, "run-3")
    assert [c["check"] for c in summary["checks"]] == sorted(SUITES)
    assert summary["dbt"] == {"pass": 2}


def test_a_run_without_a_dbt_step_holds_the_last_dbt_build_before_it(con):
    _check(con, "run-4", "raw_a", False, 30)  # e.g. one raw asset materialised from the UI
    rows = run_dbt_results(con, "run-4")
    assert {r["unique_id"]: r["carried_from"] for r in rows} == {
        "test.t1": "run-3",
        "test.t2": "run-3",
    }
    assert {f["check"] for f in blocking_failures(con, "run-4")} == {"raw_a"}


def test_an_unknown_run_has_no_evidence(con):
    assert run_checks(con, "nope") == [] and run_dbt_results(con, "nope") == []
    assert validation_summary(con, None) == {"checks": [], "dbt": {}}
