"""``python -m dagster_project.quality run``: an engineer's tool to run the suites by hand.

Runs every suite (or those named) on the warehouse and prints the outcomes; with
``--record RUN_ID``, also writes them to audit.check_results. The suites themselves are
written by ``kpi generate`` (dagster_project/cli/generate.py).
"""

from __future__ import annotations

import argparse
import sys

from dagster_project.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.quality")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="exécuter les suites sur l'entrepôt")
    run.add_argument("suites", nargs="*", help="noms de suites (toutes par défaut)")
    run.add_argument(
        "--warehouse", help="fichier DuckDB (défaut : base de construction de KPI_WAREHOUSE)"
    )
    run.add_argument("--record", metavar="RUN_ID", help="enregistrer dans audit.check_results")
    args = parser.parse_args(argv)

    import duckdb

    from dagster_project.quality import record_outcomes, run_all

    path = args.warehouse or str(Settings.from_env().build_warehouse)
    with duckdb.connect(path, read_only=True) as con:
        result = run_all(con, args.suites or None)
    for outcome in result.outcomes:
        state = "ok" if outcome.passed else ("ÉCHEC" if outcome.blocking else "avertissement")
        print(
            f"{state:>13}  {outcome.name} ({outcome.asset}) "
            f"{outcome.statistics.get('rows', 0)} ligne(s)"
        )
        for failure in outcome.failures:
            print(f"               - {failure}")
    print(f"{len(result.outcomes)} suite(s) en {result.seconds:.1f} s")
    if args.record:
        with duckdb.connect(path) as con:
            record_outcomes(con, args.record, result.outcomes)
    return 1 if result.blocking_failures else 0


if __name__ == "__main__":
    sys.exit(main())
