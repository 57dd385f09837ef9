"""The Dagster instance: a persistent DAGSTER_HOME inside the project, telemetry off."""

from __future__ import annotations

import os
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
DAGSTER_YAML = """\
# Généré par kpi : instance Dagster locale (historique des exécutions dans ce dossier).
# Pour un déploiement partagé, voir docs/deployment.md (stockage PostgreSQL).
telemetry:
  enabled: false
nux:
  enabled: false
"""


def ensure_dagster_home(path: Path | None = None) -> Path:
    home = Path(path or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
    return home


def get_instance():
    from dagster import DagsterInstance

    ensure_dagster_home()
    return DagsterInstance.get()
