"""What a build is made of, fingerprinted, so that ``kpi run`` does only what changed.

A ``kpi run`` turns these inputs into the published copy: the deliveries, the campaign files,
the contracts, the dbt project (models, seeds, macros, tests), the expectations, the
package's own code, and the settings that change a verdict or a figure (the campaign clock,
the dbt target, every ``KPI_*`` variable such as the reader's limits). ``fingerprint`` hashes
the list of those files with their size and modification time — ``stat`` only, no file is
read, so it costs milliseconds at any scale; a re-delivery always changes a file's size or
time — in two parts: one per source for the delivery files (``classify`` tells a file's
source), and one for everything else (the *project*: code, contracts, dbt, expectations,
settings, and any file of the delivery folder that belongs to no source).

After a full run that succeeded and was published, ``record_run`` writes the fingerprint
with the run and publication ids in ``<build folder>/derniere_execution.json``. The next
``kpi run`` compares (``plan``):

- same project, same deliveries, its publication still in place: nothing to do;
- same project, some sources' deliveries changed (new, re-delivered, withdrawn): ``sources``
  names them (``kpi run`` says so and still processes everything: a release states the checks
  of the latest run, which must cover the whole warehouse; ``--select`` limits a run);
- anything else (no record, the project changed, another publication since — a freeze, a
  ``kpi publish``, a run of the Dagster daemon): a full run.

Never a missed change: at worst one run more than needed. A run that starts forgets the
record (``forget_last_run``) until it is published. ``kpi run --force`` ignores it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dagster_project.settings import (
    CONTRACTS_DIR,
    DBT_PROJECT_DIR,
    EXECUTION_VARIABLES,
    EXPECTATIONS_DIR,
    PROJECT_ROOT,
    Settings,
)
from dagster_project.warehouse.publication_links import CURRENT, PUBLICATIONS

STATE_FILE = "derniere_execution.json"
STATE_FORMAT = 2
# files the run itself writes beside the inputs: they never make a run necessary
WRITTEN_BY_RUNS = (".rejet.csv", ".a_confirmer.csv", ".pyc", ".log")
SKIPPED_FOLDERS = {"target", "logs", "dbt_packages", "uncommitted", "__pycache__", ".portal"}
# variables that change nothing a run computes: progress lines, waiting, test kill points, and
# where the folders are (KPI_SOURCES, KPI_WAREHOUSE…: a campaign copied elsewhere with its
# build, times kept, is the same campaign; the clock and the dbt target are hashed apart)
IGNORED_VARIABLES = EXECUTION_VARIABLES | {
    "KPI_CRASH_AT",
    "KPI_SOURCES",
    "KPI_WAREHOUSE",
    "KPI_BUILD_WAREHOUSE",
    "KPI_RELEASES",
    "KPI_TODAY",
    "KPI_DBT_TARGET",
}


@dataclass(frozen=True)
class Fingerprint:
    project: str  # code, contracts, dbt, expectations, settings, unclassified files
    deliveries: dict[str, str]  # source id -> its delivery files


@dataclass(frozen=True)
class Plan:
    """What ``kpi run`` has to do: ``nothing``, ``sources`` (only those), or everything."""

    nothing: bool
    sources: tuple[str, ...] | None  # None: a full run
    last: dict | None  # the last run's record, when it was used
    reason: str = ""  # why a full run (French, printed by kpi run)


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


def _line(path: Path, folder: Path) -> bytes | None:
    try:
        stat = path.stat()
    except OSError:  # removed while listed: absent
        return None
    return f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode()


def fingerprint(settings: Settings, classify: Callable[[Path], str | None]) -> Fingerprint:
    """The run's inputs; ``classify(path)`` gives the source of a file of the delivery
    folder (None: not a delivery, part of the project)."""
    project = hashlib.sha256()
    per_source: dict[str, hashlib._Hash] = {}
    sources = settings.sources_dir
    for path in _files(sources):
        line = _line(path, sources)
        if line is None:
            continue
        source = classify(path) if path.parent.parent.parent == sources else None
        (per_source.setdefault(source, hashlib.sha256()) if source else project).update(line)
    folders = {
        "contrats": CONTRACTS_DIR,
        "dbt": DBT_PROJECT_DIR,
        "attentes": EXPECTATIONS_DIR,
        "code": PROJECT_ROOT / "dagster_project",
    }
    for label, folder in folders.items():
        project.update(f"[{label}] {folder}\n".encode())
        for path in _files(folder):
            project.update(_line(path, folder) or b"")
    variables = sorted(
        (name, value)
        for name, value in os.environ.items()
        if name.startswith("KPI_") and name not in IGNORED_VARIABLES
    )
    # without a fixed campaign clock, verdicts are judged against today's date: a new day
    # makes a full run (a date « in the future » yesterday may not be today)
    today = settings.today or dt.date.today().isoformat()
    project.update(json.dumps([today, settings.dbt_target]).encode())
    project.update(json.dumps(variables).encode())
    return Fingerprint(
        project.hexdigest(), {s: h.hexdigest() for s, h in sorted(per_source.items())}
    )


def current_publication(settings: Settings) -> str | None:
    """The id of the publication in place (the folder ``.publications/current`` designates)."""
    current = settings.warehouse.parent / PUBLICATIONS / CURRENT
    try:
        return Path(os.readlink(current)).name
    except OSError:
        return None


def _state_path(settings: Settings) -> Path:
    return settings.build_warehouse.parent / STATE_FILE


def record_run(settings: Settings, print_: Fingerprint, run_id: str) -> None:
    """After a run that succeeded and was published: what it was made of (atomic write)."""
    state = {
        "format": STATE_FORMAT,
        "project": print_.project,
        "deliveries": print_.deliveries,
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
    """The next ``kpi run`` is a full one (until this run is published)."""
    _state_path(settings).unlink(missing_ok=True)


def last_run(settings: Settings) -> tuple[dict | None, str]:
    """The last published run's record, when its publication is still the one in place;
    else None and why (French)."""
    try:
        state = json.loads(_state_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, "aucune exécution publiée n'est enregistrée"
    if state.get("format") != STATE_FORMAT:
        return None, "l'exécution enregistrée vient d'une version antérieure"
    if not settings.build_warehouse.exists() or not settings.warehouse.exists():
        return None, "la base de construction ou la copie publiée manque"
    publication = state.get("publication_id")
    if publication is None or publication != current_publication(settings):
        return None, "une autre publication a eu lieu depuis (gel, kpi publish, Dagster)"
    return state, ""


def plan(settings: Settings, print_: Fingerprint) -> Plan:
    """What a ``kpi run`` with these inputs has to do (see the module's docstring)."""
    last, why = last_run(settings)
    if last is None:
        return Plan(nothing=False, sources=None, last=None, reason=why)
    if last.get("project") != print_.project:
        why = "le code, les contrats, le projet dbt, les attentes ou les paramètres ont changé"
        return Plan(nothing=False, sources=None, last=None, reason=why)
    before: dict[str, str] = last.get("deliveries") or {}
    changed = sorted(
        s for s in set(before) | set(print_.deliveries) if before.get(s) != print_.deliveries.get(s)
    )
    if not changed:
        return Plan(nothing=True, sources=(), last=last)
    return Plan(nothing=False, sources=tuple(changed), last=last)
