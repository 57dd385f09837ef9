"""`kpi docs`: the dbt documentation site, offline, as one self-contained HTML file.

``dbt docs generate --static`` embeds the manifest and the catalog in ``index.html``: the
page opens from disk (double click, or a shared folder), with no server and no internet. It
documents every model and column in French (the descriptions of the ``.yml`` files), the
lineage graph, and the enforced contracts of the marts (the stable interface analysts use).

dbt runs with its own target folder (a temporary one) so it never disturbs the manifest the
Dagster code location reads. The catalog (column types, row counts) is read from a temporary
copy of the published warehouse when there is one: neither the build database nor the file
analysts have open is touched. Without a published copy, the catalog stays empty and the
columns come from the ``.yml`` contracts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dagster_project.cli.common import EXIT_ERROR, EXIT_OK, common_options, settings_from
from dagster_project.settings import DBT_PROJECT_DIR, PROJECT_ROOT

DEFAULT_OUT = PROJECT_ROOT / "build" / "dbt-docs"
OUTPUTS = {"static_index.html": "index.html", "manifest.json": None, "catalog.json": None}


def generate_docs(out: Path, warehouse: Path | None, empty_catalog: bool = False) -> Path:
    """Write ``out/index.html`` (self-contained), ``manifest.json`` and ``catalog.json``."""
    import os

    from dagster_project.defs.resources import dbt_executable

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kpi-docs-") as tmp:
        tmp_path = Path(tmp)
        # dbt names the database after the file: keep the published file's name
        database = tmp_path / (warehouse.name if warehouse else "warehouse.duckdb")
        use_catalog = bool(warehouse and warehouse.exists() and not empty_catalog)
        if use_catalog:
            shutil.copyfile(warehouse, database)
            database.chmod(0o644)
        env = dict(os.environ)
        env["KPI_BUILD_WAREHOUSE"] = str(database)
        env["KPI_DBT_TARGET"] = "duckdb"
        command = [
            dbt_executable(),
            "docs",
            "generate",
            "--static",
            "--quiet",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ]
        if not use_catalog:
            command.append("--empty-catalog")
        completed = subprocess.run(
            command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True
        )
        if completed.returncode != 0:
            raise RuntimeError(
                "dbt docs generate a échoué :\n" + (completed.stdout + completed.stderr)[-4000:]
            )
        for name, renamed in OUTPUTS.items():
            shutil.copyfile(tmp_path / "target" / name, out / (renamed or name))
    return out / "index.html"


def cmd_docs(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    out = Path(args.out).resolve() if args.out else DEFAULT_OUT
    try:
        index = generate_docs(out, settings.warehouse, empty_catalog=args.empty_catalog)
    except RuntimeError as exc:
        print(f"kpi docs : {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"Documentation dbt : {index} (un seul fichier, s'ouvre sans serveur ni internet)")
    return EXIT_OK


def register(sub) -> None:
    docs = sub.add_parser(
        "docs", help="générer le site de documentation dbt (un fichier HTML autonome)"
    )
    docs.add_argument(
        "--out", help="dossier de sortie (défaut build/dbt-docs à la racine du projet)"
    )
    common_options(docs)
    docs.add_argument(
        "--empty-catalog",
        action="store_true",
        help="ne pas lire la copie publiée (types et volumes des tables absents)",
    )
    docs.set_defaults(func=cmd_docs)
