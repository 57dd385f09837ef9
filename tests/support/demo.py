"""The demo campaign built once per session by the ``demo_warehouse`` fixture (conftest.py)
and what the slow tests read of it."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

DEMO_TODAY = "2026-01-31"


@dataclass(frozen=True)
class DemoCampaign:
    """A demo campaign folder: ``sources/`` (2023-2025), ``warehouse.duckdb`` (the published
    copy) with ``.build/warehouse.duckdb`` and ``exports/``, ``dagster_home/``, ``releases/``
    (none yet)."""

    root: Path

    @property
    def sources(self) -> Path:
        return self.root / "sources"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster_home"


@dataclass(frozen=True)
class BuiltDemo(DemoCampaign):
    returncode: int = -1
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0

    def copy(self, destination: Path) -> DemoCampaign:
        """A private copy of the whole tree (modification times kept: they date the
        deliveries; the ``exports/marts`` symbolic link kept relative)."""
        shutil.copytree(self.root, destination, symlinks=True)
        return DemoCampaign(destination)
