"""What a build is made of, fingerprinted, so that ``kpi run`` can say « nothing changed » at once.

A ``kpi run`` turns these inputs into the published copy: the delivery folder (every
delivery, ``campagne.yml``), the contracts, the dbt project (models, seeds, macros, tests),
the expectations, the package's own code, and the settings that change a verdict or a figure
(the campaign clock, the dbt target, every ``KPI_*`` variable such as the reader's limits).
``inputs_fingerprint`` hashes the list of those files with their size and modification time
— ``stat`` only, no file is read, so it costs milliseconds at any scale; a re-delivery always
changes a file's size or time — plus those settings.

After a run that succeeded and was published, ``record_run`` writes the fingerprint with the
run and publication ids in ``<build folder>/derniere_execution.json``.
``unchanged_since_last_run`` returns that record when the fingerprint is the same *and* the
publication it made is still the one in place (a freeze, a ``kpi publish`` or a run of the
Dagster daemon since then make the next ``kpi run`` a full one: never a missed change, at
worst one run too many). ``kpi run --force`` ignores it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from dagster_project.settings import (
    CONTRACTS_DIR,
    DBT_PROJECT_DIR,
    EXPECTATIONS_DIR,
    PROJECT_ROOT,
    Settings,
)
from dagster_project.warehouse.publication_links import CURRENT, PUBLICATIONS

STATE_FILE = "derniere_execution.json"
STATE_FORMAT = 1
# files the run itself writes beside the inputs: they never make a run necessary
WRITTEN_BY_RUNS = (".rejet.csv", ".a_confirmer.csv", ".pyc", ".log")
SKIPPED_FOLDERS = {"target", "logs", "dbt_packages", "uncommitted", "__pycache__", ".portal"}
# variables that change nothing a run computes (progress lines, waiting, the portal's own)
IGNORED_VARIABLES = {"KPI_PROGRESS", "KPI_LOCK_WAIT", "KPI_CRASH_AT"}


def _files(folder: Path):
    """Every file under ``folder`` that a run reads, sorted (hidden and run-written skipped)."""
    if not folder.is_dir():
        return
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_FOLDERS and not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.endswith(WRITTEN_BY_RUNS):
                continue
            yield Path(root) / name


def _folders(settings: Settings) -> dict[str, Path]:
    return {
        "livraisons": settings.sources_dir,
        "contrats": CONTRACTS_DIR,
        "dbt": DBT_PROJECT_DIR,
        "attentes": EXPECTATIONS_DIR,
        "code": PROJECT_ROOT / "dagster_project",
    }


def inputs_fingerprint(settings: Settings) -> str:
    """SHA-256 of the run's inputs: file list with sizes and times, and the settings."""
    digest = hashlib.sha256()
    for label, folder in _folders(settings).items():
        digest.update(f"[{label}] {folder}\n".encode())
        for path in _files(folder):
            try:
                stat = path.stat()
            except OSError:  # removed while listed: part of the fingerprint as absent
                continue
            digest.update(
                f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()
            )
    variables = sorted(
        (name, value)
        for name, value in os.environ.items()
        if name.startswith("KPI_") and name not in IGNORED_VARIABLES
    )
    digest.update(json.dumps([settings.today, settings.dbt_target, variables]).encode())
    return digest.hexdigest()


def current_publication(settings: Settings) -> str | None:
    """The id of the publication in place (the folder ``.publications/current`` designates)."""
    current = settings.warehouse.parent / PUBLICATIONS / CURRENT
    try:
        return Path(os.readlink(current)).name
    except OSError:
        return None


def _state_path(settings: Settings) -> Path:
    return settings.build_warehouse.parent / STATE_FILE


def record_run(settings: Settings, fingerprint: str, run_id: str) -> None:
    """After a run that succeeded and was published: what it was made of (atomic write)."""
    state = {
        "format": STATE_FORMAT,
        "fingerprint": fingerprint,
        "run_id": run_id,
        "publication_id": current_publication(settings),
        "finished_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    path = _state_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(state, indent=1), encoding="utf-8")
    os.replace(temporary, path)


def forget_last_run(settings: Settings) -> None:
    """The next ``kpi run`` is a full one (a run failed, or was not published)."""
    _state_path(settings).unlink(missing_ok=True)


def unchanged_since_last_run(settings: Settings, fingerprint: str) -> dict | None:
    """The last run's record when nothing it read changed and its publication is in place."""
    try:
        state = json.loads(_state_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("format") != STATE_FORMAT or state.get("fingerprint") != fingerprint:
        return None
    if not settings.build_warehouse.exists() or not settings.warehouse.exists():
        return None
    publication = state.get("publication_id")
    if publication is None or publication != current_publication(settings):
        return None
    return state
