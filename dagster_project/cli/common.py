"""Shared pieces of the `kpi` commands: settings from options, warehouse connection."""

from __future__ import annotations

import argparse
from contextvars import ContextVar
from pathlib import Path

from dagster_project.settings import Settings, warehouse_path

EXIT_OK, EXIT_ERROR, EXIT_BLOCKED = 0, 1, 3
# the command running (« kpi status »): how others are told who holds the build database
CURRENT_COMMAND: ContextVar[str] = ContextVar("kpi_command", default="une commande kpi")


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the command's options.

    Releases go beside the warehouse they come from (``<folder of the warehouse>/releases``)
    unless ``--releases`` says otherwise: ``KPI_RELEASES`` names the releases of the
    environment's warehouse (``KPI_WAREHOUSE``), so with ``--warehouse`` naming another one
    (a test, a copy), a freeze never writes into the releases of the first."""
    base = Settings.from_env()
    warehouse = warehouse_path(getattr(args, "warehouse", None) or base.warehouse)
    releases = getattr(args, "releases", None)
    if not releases:
        releases = (
            base.releases_dir if warehouse == base.warehouse else warehouse.parent / "releases"
        )
    settings = Settings(
        sources_dir=Path(getattr(args, "sources", None) or base.sources_dir).resolve(),
        warehouse=warehouse,
        releases_dir=Path(releases).resolve(),
        today=getattr(args, "today", None) or base.today,
        dbt_target=getattr(args, "target", None) or base.dbt_target,
    )
    settings.export()
    return settings


def connect(settings: Settings, read_only: bool = False, purpose: str | None = None):
    """The build database (what the pipeline writes), not the published copy; waits its turn
    while a run writes it (``dagster_project.warehouse.access``: a bounded wait with a French
    message, then ``WarehouseBusy``, which ``kpi`` turns into exit code 3)."""
    from dagster_project.warehouse.access import connect as open_build
    from dagster_project.warehouse.build import ensure_build

    command = purpose or CURRENT_COMMAND.get()
    return open_build(ensure_build(settings), read_only=read_only, purpose=command)


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", help="fichier DuckDB de l'entrepôt (défaut ./warehouse.duckdb)"
    )


def json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="écrire le résultat en JSON sur la sortie standard, seul (forme décrite dans "
        "docs/cli.md) ; mêmes codes de sortie",
    )
