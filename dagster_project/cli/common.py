"""Shared pieces of the `kpi` commands: settings from options, warehouse connection."""

from __future__ import annotations

import argparse
from pathlib import Path

from dagster_project.settings import Settings

EXIT_OK, EXIT_ERROR, EXIT_BLOCKED = 0, 1, 3


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the command's options."""
    base = Settings.from_env()
    settings = Settings(
        sources_dir=Path(getattr(args, "sources", None) or base.sources_dir).resolve(),
        warehouse=Path(getattr(args, "warehouse", None) or base.warehouse).resolve(),
        releases_dir=Path(getattr(args, "releases", None) or base.releases_dir).resolve(),
        today=getattr(args, "today", None) or base.today,
        dbt_target=getattr(args, "target", None) or base.dbt_target,
    )
    settings.export()
    return settings


def connect(settings: Settings, read_only: bool = False):
    """The build database (what the pipeline writes), not the published copy."""
    import duckdb

    from dagster_project.publish import ensure_build

    return duckdb.connect(str(ensure_build(settings)), read_only=read_only)


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", help="fichier DuckDB de l'entrepôt (défaut ./warehouse.duckdb)"
    )
