"""`kpi demo`, `kpi contracts`, `kpi init-key`: project upkeep."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dagster_project.cli.common import (
    EXIT_OK,
)
from dagster_project.settings import PROJECT_ROOT


def cmd_demo(args: argparse.Namespace) -> int:
    from dagster_project.demo import generate_demo

    out = Path(args.out or PROJECT_ROOT / "sources").resolve()
    started = time.time()
    written = generate_demo(out)
    print(
        f"Campagne de démonstration écrite dans {out} : {len(written)} fichiers ({time.time() - started:.1f} s)"
    )
    return EXIT_OK


def cmd_contracts(args: argparse.Namespace) -> int:
    from dagster_project.ingest.dbt_sources import SOURCES_YML, write_sources

    changed = write_sources()
    print(f"{SOURCES_YML} {'mis à jour' if changed else 'déjà à jour'}")
    return EXIT_OK


def cmd_init_key(args: argparse.Namespace) -> int:
    from dagster_project.ingest.privacy import create_key_file, key_file

    existed = key_file().exists()
    path = create_key_file()
    print(
        f"Clé de pseudonymisation {'déjà présente' if existed else 'créée'} : {path} (à ne jamais versionner)"
    )
    return EXIT_OK


def register(sub) -> None:
    demo = sub.add_parser("demo", help="régénérer la campagne de démonstration")
    demo.add_argument("--out", help="dossier de sortie (défaut ./sources)")
    demo.set_defaults(func=cmd_demo)

    contracts = sub.add_parser(
        "contracts", help="régénérer dbt/models/staging/_sources.yml depuis les contrats"
    )
    contracts.set_defaults(func=cmd_contracts)

    key = sub.add_parser("init-key", help="créer la clé locale de pseudonymisation RH")
    key.set_defaults(func=cmd_init_key)
