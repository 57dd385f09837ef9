"""Publishing a campaign: its settings beside a warehouse, `kpi` in a child process, and a
real campaign published once per session (``published_campaign``: 2025 water deliveries and
the HR staff file, one `kpi run`) that the slow tests copy instead of running the whole
pipeline again."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from dagster_project.settings import PROJECT_ROOT, Settings
from support.shared import exclusive, session_dir


def settings_for(warehouse: Path) -> Settings:
    return Settings(
        sources_dir=warehouse.parent / "sources",
        warehouse=warehouse,
        releases_dir=warehouse.parent / "releases",
    )


def fetch_rows(path: Path, sql: str):
    """The rows ``sql`` returns, read from ``path`` (read only)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


BASE_SOURCES = [
    "2025/water/assainissement_activite_2025.xlsx",
    "2025/water/eau_qualite_2025.xlsx",
    "2025/water/eau_reseau_2025.xlsx",
    "2025/water/eau_udi_2025.xlsx",
    "2025/water/eau_volumes_2025.xlsx",
    "2025/water/indicateurs_declares_2025.xlsx",
    "2025/hr/rh_effectifs_2025.xlsx",
]


TODAY = "2026-01-31"  # `kpi run --today` of the published campaign


def kpi(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`kpi ...` in a child process (its own DuckDB and Dagster state, like a real user)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "kpi"), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        **kwargs,
    )


def copy_sources(destination: Path) -> Path:
    """The base deliveries, modification times kept (they date the deliveries)."""
    for relative in BASE_SOURCES:
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_ROOT / "sources" / relative, target)
    return destination


def published_campaign(tmp_path_factory) -> Path:
    """Once per session: ``<dir>/sources``, ``<dir>/warehouse.duckdb`` (+ ``.build``,
    ``exports``) after one uninterrupted `kpi run`. Read it, copy it; never write it. Under
    pytest-xdist (`make test`), built by the first worker that asks, the others waiting for
    it (``support.shared``)."""
    shared = session_dir(tmp_path_factory)
    with exclusive(shared / "published_campaign.lock"):
        return _publish_campaign(shared / "published_campaign")


def _publish_campaign(root: Path) -> Path:
    done = root / "done"
    if done.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    copy_sources(root / "sources")
    result = kpi(
        "run",
        "--sources",
        str(root / "sources"),
        "--warehouse",
        str(root / "warehouse.duckdb"),
        "--today",
        TODAY,
        env={"DAGSTER_HOME": str(root / "dagster_home")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    done.write_text(result.stdout, encoding="utf-8")
    return root


def copy_campaign(base: Path, destination: Path) -> Settings:
    """A private copy of the published campaign (sources, build, copy, exports)."""
    shutil.copytree(base, destination, symlinks=True, ignore=shutil.ignore_patterns("dagster_home"))
    return Settings(
        sources_dir=destination / "sources",
        warehouse=destination / "warehouse.duckdb",
        releases_dir=destination / "releases",
        today=TODAY,
    )
