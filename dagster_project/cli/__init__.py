"""The ``kpi`` command line.

Public interface: the commands and options are what users' scripts rely on; change them
only with a note in docs/cli.md. Exit codes: 0 success, 1 error, 3 the run finished but
blocking checks failed (``kpi run``) or the freeze was refused (``kpi freeze``).

Each module of this package registers its commands: adding a command is adding a module
and one name to ``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = ["run", "release", "campaign", "project", "ui", "docs"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kpi",
        description="Entrepôt d'indicateurs de la CABBALR : collecte, contrôle, publication.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"dagster_project.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
