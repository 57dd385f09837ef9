"""Throwaway dbt projects: the real dbt CLI run on a project written by a test (its own
``dbt_project.yml`` and ``profiles.yml`` in ``root``, its logs in ``root/logs``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from dagster_project.defs.resources import dbt_executable


def run_dbt(root: Path, command: str, *args: str) -> subprocess.CompletedProcess:
    """``dbt <command> <args>`` in ``root``, its profile read there, its log in ``root/logs``."""
    return subprocess.run(
        [
            dbt_executable(),
            command,
            "--profiles-dir",
            str(root),
            "--log-path",
            str(root / "logs"),
            *args,
        ],
        cwd=root,
        env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
        capture_output=True,
        text=True,
        timeout=300,
    )
