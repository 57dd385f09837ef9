"""`kpi schemas`: every contract as a Table Schema, for Validata and frictionless.

Writes ``<dossier>/<source_id>/schema.json`` for every source of the collection kit and a
French ``README.md`` beside them (``dagster_project.contracts.table_schema``; docs/contracts.md,
« Export Table Schema »). By default in ``exports/schemas`` beside the warehouse; nothing in
the output depends on the day it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dagster_project.cli.common import EXIT_OK
from dagster_project.settings import Settings


def cmd_schemas(args: argparse.Namespace) -> int:
    from dagster_project.cli import version
    from dagster_project.contracts.model import default_contracts
    from dagster_project.contracts.table_schema import INDEX_FILE, write_schemas

    out = Path(args.out).resolve() if args.out else Settings.from_env().exports_dir / "schemas"
    contracts = default_contracts()
    shown = version()
    written = write_schemas(
        contracts, out, year=args.year, version=None if shown == "inconnue" else shown
    )
    scope = f"campagne {args.year}" if args.year else "toute campagne"
    print(
        f"Schémas Table Schema ({scope}) : {len(written) - 1} sources écrites dans {out} "
        f"(index : {out / INDEX_FILE})"
    )
    return EXIT_OK


def register(sub) -> None:
    schemas = sub.add_parser(
        "schemas",
        help="exporter chaque contrat en Table Schema (schema.json par source, pour Validata "
        "et frictionless)",
    )
    schemas.add_argument(
        "--out",
        help="dossier de sortie (défaut exports/schemas à côté de l'entrepôt) : un dossier "
        "par source avec son schema.json, et un README.md",
    )
    schemas.add_argument(
        "--year",
        type=int,
        help="année de la campagne (AAAA, ex. 2025) : les dates et les mois de la campagne "
        "sont alors bornés à cette année ; sans elle, schémas valables pour toute campagne",
    )
    schemas.set_defaults(func=cmd_schemas)
