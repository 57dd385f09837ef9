"""`kpi generate`: rewrite every file derived from the contracts, the catalogue and the CLI.

Three kinds of files in the repository are written by code, never by hand, so that the
contracts (``sources/contracts/``), ``expectations/marts.yml`` and the parser stay their one
source of truth:

- ``dbt/models/staging/_sources.yml``: the dbt sources, from the contracts;
- ``expectations/gx/expectations/*.json``: the Great Expectations suites, from the contracts
  and ``expectations/marts.yml``;
- the reference part of ``docs/cli.md``: the ``kpi`` commands and options;
- ``dbt/tests/row_rules/row_rules_<model>….sql``: each model's generic dbt tests as the few
  tests the production build runs (one per model and set of dependencies), from dbt's parsed
  manifest (``dbt parse`` first when a dbt file changed since:
  dagster_project/defs/assets/dbt_row_rules.py).

``kpi generate`` writes them all; ``kpi generate --check`` writes nothing and exits 1 while
one of them is stale (what the test suite and CI check). Each generator lives in the package
that owns its input; this module only lists them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from dagster_project.cli.common import EXIT_ERROR, EXIT_OK


@dataclass(frozen=True)
class Generated:
    """One derived file (or set of files): what it is and how to bring it up to date."""

    label: str  # French, as printed
    update: Callable[[bool], list[str]]  # update(check) -> names of what is (or was) stale


def _dbt_sources(check: bool) -> list[str]:
    from dagster_project.contracts.model import default_contracts
    from dagster_project.ingest.dbt_sources import SOURCES_YML, render_sources, write_sources

    if check:
        text = render_sources(default_contracts())
        current = SOURCES_YML.read_text(encoding="utf-8") if SOURCES_YML.exists() else None
        return [] if current == text else [SOURCES_YML.name]
    return [SOURCES_YML.name] if write_sources() else []


def _gx_suites(check: bool) -> list[str]:
    from dagster_project.quality.suites import sync_suites

    report = sync_suites(check=check)
    return [*report.written, *(f"{name} (à retirer)" for name in report.removed)]


def _cli_reference(check: bool) -> list[str]:
    from dagster_project.cli.reference import CLI_DOC, updated_document

    text = updated_document()
    if CLI_DOC.read_text(encoding="utf-8") == text:
        return []
    if not check:
        CLI_DOC.write_text(text, encoding="utf-8")
    return [CLI_DOC.name]


def _dbt_row_rules(check: bool) -> list[str]:
    import json

    from dagster_project.defs.assets.dbt import ensure_manifest
    from dagster_project.defs.assets.dbt_row_rules import sync_row_rules

    # parsed again first when a dbt file changed since (a .yml test added…)
    manifest = json.loads(ensure_manifest().read_text(encoding="utf-8"))
    return sync_row_rules(manifest, check=check)


GENERATED = [
    Generated("sources dbt (dbt/models/staging/_sources.yml)", _dbt_sources),
    Generated("suites Great Expectations (expectations/gx/expectations/)", _gx_suites),
    Generated("référence des commandes (docs/cli.md)", _cli_reference),
    # after the sources: the manifest it reads is parsed from them
    Generated("tests dbt regroupés (dbt/tests/row_rules/)", _dbt_row_rules),
]


def stale_files(check: bool = True) -> dict[str, list[str]]:
    """{label: stale names} for every derived file out of date (written unless ``check``)."""
    stale = {}
    for generated in GENERATED:
        names = generated.update(check)
        if names:
            stale[generated.label] = names
    return stale


def cmd_generate(args: argparse.Namespace) -> int:
    stale = stale_files(check=args.check)
    for generated in GENERATED:
        names = stale.get(generated.label, [])
        if not names:
            print(f"{generated.label} : à jour")
        elif args.check:
            print(f"{generated.label} : à régénérer ({', '.join(names)})")
        else:
            print(f"{generated.label} : {len(names)} fichier(s) réécrit(s)")
    if args.check and stale:
        print("Lancez « kpi generate » et versionnez les fichiers réécrits.")
        return EXIT_ERROR
    return EXIT_OK


def register(sub) -> None:
    generate = sub.add_parser(
        "generate",
        help="réécrire les fichiers dérivés des contrats et des commandes "
        "(sources dbt, suites de contrôle, référence des commandes)",
    )
    generate.add_argument(
        "--check",
        action="store_true",
        help="ne rien écrire ; code de sortie 1 si un fichier dérivé n'est plus à jour",
    )
    generate.set_defaults(func=cmd_generate)
