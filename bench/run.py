"""Side-by-side benchmark: raw calamine read, naive pandas peer, the project.

For each scale factor, on the same generated files (``bench/scale.py``), every stage runs in
its own child process; wall time and peak memory are measured from here:

* ``raw``            python-calamine reads every sheet of every workbook (``.csv``: the csv
                     module), nothing else: the floor of any Python reader;
* ``naive``          ``bench/naive_peer.py`` with ``pandas.read_excel`` as a script would call
                     it (default engine: openpyxl); ``naive_calamine`` the same script with
                     ``engine="calamine"`` (a better-informed peer);
* ``ingest``         the project's ingestion alone (``Ingestor`` on a fresh warehouse, every
                     contract, in reference order): read, validate, pseudonymise, load;
* ``kpi_run``        ``kpi run`` on a fresh warehouse and Dagster home: ingestion, dbt build,
                     checks (and publication when the project publishes); the Dagster event
                     log gives the time of each step, the memory samples its peak;
* ``freeze``         ``kpi freeze --year 2025``;
* ``redelivery``     one workbook (``eau_reseau``) delivered again with one cell changed,
                     then ``kpi run --select eau_reseau``;
* ``queries``        the analysts' example queries (``docs/analysts.md``, else
                     ``bench/queries.sql``) on the published copy: p50/p95 over 50 runs.

Peak memory: the largest sum of resident memory over the child's process tree (sampled
every 0.1 s from /proc) and the kernel's ``ru_maxrss`` (largest single process).

    python bench/run.py --sf 1 10 [--stages raw naive ...] [--repeat 3] [--profile]
    python bench/run.py --render          # rebuild results.csv / results.md from the JSON

Results: ``bench/results/sf<n>.json`` (everything measured) and ``results.csv`` /
``results.md`` (the table, with the machine and the versions). No figure is asserted by the
tests: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from runner import ALL_STAGES, RESULTS  # noqa: E402
from runner.children import (  # noqa: E402,F401  (children and helpers, by their old names)
    analyst_queries,
    child_dbt_parse,
    child_ingest,
    child_queries,
    child_raw,
    child_steps,
    lift_limits,
    published_database,
    redeliver,
)
from runner.measure import TreeSampler, machine, run_measured  # noqa: E402,F401
from runner.render import STAGE_LABELS, render, table_rows, targets  # noqa: E402,F401
from runner.scale_run import ScaleRun  # noqa: E402

# ------------------------------------------------------------------------------ main


def run_scale(sf: int, stages: list[str], args) -> None:
    run = ScaleRun(sf, args.repeat, args.timeout, warm=not args.cold)
    run.prepare(args.regenerate)
    try:
        _run_stages(run, stages, args)
    finally:
        run.stop_warm_process()


def _run_stages(run: ScaleRun, stages: list[str], args) -> None:
    for name in stages:
        try:
            if name == "raw" and "ingest" in stages:
                run.stage_raw_and_ingest()
            elif name == "ingest" and "raw" in stages:
                continue  # measured with the raw read, pair by pair
            elif name == "raw":
                run.stage_raw()
            elif name == "naive" and "project" in stages and args.repeat > 1:
                run.stage_naive_and_project()
            elif name == "project" and "naive" in stages and args.repeat > 1:
                continue  # measured with the naive peer, pair by pair
            elif name == "naive":
                run.stage_naive("openpyxl")
            elif name == "naive_calamine":
                run.stage_naive("calamine")
            elif name == "ingest":
                run.stage_ingest()
            elif name == "project":
                run.stage_project()
            elif name == "redelivery":
                run.stage_redelivery()
            elif name == "queries":
                run.stage_queries()
            elif name == "fixed":
                run.stage_fixed()
        finally:
            run.save()
    if args.profile:
        run.stage_ingest(profile=True)
    run.save()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("_"):
        return _child(argv)
    parser = argparse.ArgumentParser(description="Benchmark côte à côte (voir bench/README.md).")
    parser.add_argument("--sf", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--stages", nargs="+", default=ALL_STAGES, choices=ALL_STAGES)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of raw/naive/ingest (best kept)"
    )
    parser.add_argument("--timeout", type=float, help="seconds after which a stage is killed")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the files")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of ingestion")
    parser.add_argument("--render", action="store_true", help="only rebuild results.csv/.md")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="every kpi command in its own process (KPI_WARM=0); by default `kpi warm` is "
        "started, untimed, before each timed `kpi run`, as on a machine in use",
    )
    args = parser.parse_args(argv)
    if not args.render:
        for sf in args.sf:
            run_scale(sf, args.stages, args)
    render()
    print((RESULTS / "results.md").read_text(encoding="utf-8") if RESULTS.exists() else "")
    return 0


def _child(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    lift = "--lift" in rest
    if command == "_raw":
        return child_raw(Path(rest[0]))
    if command == "_ingest":
        profile = Path(rest[rest.index("--profile") + 1]) if "--profile" in rest else None
        return child_ingest(Path(rest[0]), Path(rest[1]), lift, profile)
    if command == "_dbtparse":
        return child_dbt_parse()
    if command == "_steps":
        return child_steps(rest)
    if command == "_queries":
        return child_queries(Path(rest[0]), int(rest[1]))
    raise SystemExit(f"unknown child command {command}")


if __name__ == "__main__":
    sys.exit(main())
