"""Great Expectations layer: suites generated from the contracts and expectations/marts.yml,
run on pandas DataFrames read from the warehouse, outcomes kept in audit.check_results and
each suite's latest GX result in audit.check_evidence (the release's evidence, evidence.py).

Importing this package does not import GX (3 s); only running or syncing suites does.
"""

from __future__ import annotations

import time

import duckdb

from dagster_project.quality.runner import (
    CheckOutcome,
    ValidationRun,
    record_outcomes,
    run_suite,
)
from dagster_project.quality.suites import (
    check_specs,
    mart_suites,
    suites_for_raw,
    sync_suites,
)

__all__ = [
    "CheckOutcome",
    "ValidationRun",
    "all_suites",
    "check_specs",
    "mart_suites",
    "record_outcomes",
    "run_all",
    "run_suite",
    "suites_for_raw",
    "sync_suites",
]


def all_suites() -> list[str]:
    """Every suite: one per source contract, then the mart suites."""
    return [spec["name"] for spec in check_specs()]


def run_all(con: duckdb.DuckDBPyConnection, names: list[str] | None = None) -> ValidationRun:
    """Run several suites (all by default) on one connection."""
    started = time.perf_counter()
    outcomes = [run_suite(con, name) for name in (names or all_suites())]
    return ValidationRun(outcomes=outcomes, seconds=round(time.perf_counter() - started, 3))
