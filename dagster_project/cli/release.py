"""`kpi freeze` and the release commands."""

from __future__ import annotations

import argparse
import sys

from dagster_project.cli.common import (
    EXIT_BLOCKED,
    EXIT_OK,
    common_options,
    connect,
    settings_from,
)


def cmd_freeze(args: argparse.Namespace) -> int:
    from dagster_project.release import FreezeRefused, freeze

    settings = settings_from(args)
    con = connect(settings)
    try:
        release = freeze(con, args.year, settings.releases_dir, reason=args.reason)
    except FreezeRefused as exc:
        print(f"kpi freeze : {exc}", file=sys.stderr)
        return EXIT_BLOCKED
    finally:
        con.close()
    print(
        f"Publication {release.release_id} figée : {release.value_count} valeurs, dossier {release.folder}"
    )
    print(f"  manifeste SHA-256 {release.manifest_sha256}")
    return EXIT_OK


def register(sub) -> None:
    fr = sub.add_parser("freeze", help="figer les valeurs d'une année en publication versionnée")
    fr.add_argument("--year", type=int, required=True)
    fr.add_argument("--reason", help="motif, obligatoire pour une nouvelle version")
    fr.add_argument("--releases", help="dossier des publications (défaut ./releases)")
    common_options(fr)
    fr.set_defaults(func=cmd_freeze)
