"""The ``kpi`` command line.

Public interface: the commands and options are what users' scripts rely on; change them
only with a note in docs/cli.md. Exit codes: 0 success, 1 error, 2 a bad argument (argparse),
3 the run finished but blocking checks failed (``kpi run``), the freeze was refused
(``kpi freeze``), a release does not verify (``kpi verify``), or the warehouse stayed busy for
the whole bounded wait (``WarehouseBusy``, any command).

Each module of this package registers its commands: adding a command is adding a module
and one name to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys

COMMAND_MODULES = [
    "run",
    "release",
    "review",
    "campaign",
    "project",
    "generate",
    "ui",
    "portal",
    "docs",
    "schemas",
    "warm",
]


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("kpi-warehouse")
    except metadata.PackageNotFoundError:  # run from a source tree that was not installed
        return "inconnue"


def build_parser() -> argparse.ArgumentParser:
    from dagster_project.cli.french import FrenchArgumentParser

    parser = FrenchArgumentParser(
        prog="kpi",
        description="Entrepôt d'indicateurs de la CABBALR : collecte, contrôle, publication.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"kpi {version()}",
        help="afficher la version de kpi et quitter",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="ne pas afficher les lignes de progression (sortie d'erreur) ; les erreurs, les "
        "avertissements et le résultat s'affichent toujours",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, title="commandes", metavar="COMMANDE"
    )
    for name in COMMAND_MODULES:
        importlib.import_module(f"dagster_project.cli.{name}").register(sub)
    return parser


@functools.cache
def parser() -> argparse.ArgumentParser:
    """``build_parser()``, built once per process (≈ 10 ms: every command's options and French
    help); a warm process builds it for the runs it forks (cli/warm_server.py). Parsing never
    changes it, and no default depends on the environment or the day."""
    return build_parser()


def main(argv: list[str] | None = None) -> int:
    from dagster_project.cli.common import CURRENT_COMMAND, EXIT_BLOCKED
    from dagster_project.lib import progress
    from dagster_project.warehouse.access import WarehouseBusy

    args = parser().parse_args(argv)
    sub = getattr(args, "review_command", None) or getattr(args, "subcommand", None)
    CURRENT_COMMAND.set(f"la commande « kpi {args.command}{' ' + sub if sub else ''} »")
    try:
        with progress.command(quiet=args.quiet):
            return args.func(args)
    except WarehouseBusy as exc:  # the bounded wait ran out: say it, never a traceback
        print(f"kpi {args.command} : {exc}", file=sys.stderr)
        return EXIT_BLOCKED


def console() -> None:
    """The ``kpi`` console script: ``main()``, then the process ends without Python's own
    finalisation when nothing is left to finish.

    A ``kpi run`` process holds ≈ 700 MB of objects (Dagster, dbt-core, Great Expectations,
    pandas); freeing them one by one at exit took 1.5-2 s after the last line was printed
    (bench/README.md, « 6 December 2026 »), for a process that ends anyway. The exit handlers
    still run (``atexit``: dbt's adapters, logging) and stdout and stderr are flushed; with a
    thread still working (not a daemon), or under a profiler or tracer (pyinstrument, cProfile,
    coverage write their report at the normal exit), the normal exit is taken as before. In the
    test suite and in scripts, ``main()`` returns as usual."""
    from dagster_project.cli import warm

    warm.remember_environment()
    warmed = warm.try_run(sys.argv[1:])  # a warm process runs it (cli/warm.py)
    if warmed is not None:
        sys.exit(warmed)
    code = main()
    if warm.wanted(sys.argv[1:]):
        warm.start_after_run()  # for the next runs
    import atexit
    import os
    import threading

    working = any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    )
    if working or sys.getprofile() is not None or sys.gettrace() is not None:
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
