"""The Dagster instance: a persistent DAGSTER_HOME inside the project, telemetry off, one
run at a time; and how ``kpi`` commands that write wait for the runs Dagster has in progress.

The build database accepts one writer at a time. The instance the project writes
(``dagster.yaml``) therefore lets the daemon start **one run at a time** (the others wait in
its queue, shown « Queued » in the UI) and limits the ``duckdb`` concurrency pool, which every
step that opens the database belongs to, to one step at a time. ``kpi run`` and ``kpi freeze``
run outside the daemon: before writing they wait (bounded, with a French message) until no run
of the instance is queued or in progress, and a run ``kpi run`` makes is itself « in
progress » for the daemon, which then waits for it. A ``kpi run`` killed before it could
record its end would leave its run « in progress » for ever, and the daemon's queue waiting
behind it: such runs (their process is gone) are marked failed, their pool slot freed, by the
``interrupted_kpi_runs`` sensor (on by default, every 30 s) and by the next ``kpi run``,
``kpi freeze`` or ``kpi ui``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT

DEFAULT_DAGSTER_HOME = PROJECT_ROOT / ".dagster_home"
GENERATED_MARK = "# Généré par kpi"
DAGSTER_YAML = f"""\
{GENERATED_MARK} : instance Dagster locale (historique des exécutions dans ce dossier).
# Pour un déploiement partagé, voir docs/deployment.md (stockage PostgreSQL).
telemetry:
  enabled: false
# Le stockage SQLite de Dagster (mêmes fichiers), ses connexions gardées ouvertes.
storage:
  custom:
    module: dagster_project.defs.storage
    class: PooledSqliteStorage
    config:
      base_dir:
        env: DAGSTER_HOME
nux:
  enabled: false
# La base de construction DuckDB n'accepte qu'un écrivain : une exécution à la fois (les
# suivantes attendent dans la file du démon, « Queued »), une étape à la fois dans le pool
# « duckdb » de toutes les étapes qui l'ouvrent.
concurrency:
  runs:
    max_concurrent_runs: 1
  pools:
    granularity: op
    default_limit: 1
"""

CLI_TRIGGER = "kpi run"  # tag kpi/trigger of the runs `kpi run` makes
PID_TAG, HOST_TAG = "kpi/pid", "kpi/host"
POLL_SECONDS = 1.0
NOTIFY_EVERY_SECONDS = 30.0


def ensure_dagster_home(path: Path | None = None) -> Path:
    """The instance folder, its ``dagster.yaml`` written (or brought up to date when ``kpi``
    wrote it: a file an operator wrote is left as it is)."""
    home = Path(path or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    current = config.read_text(encoding="utf-8") if config.exists() else None
    if current is None or (current.startswith(GENERATED_MARK) and current != DAGSTER_YAML):
        config.write_text(DAGSTER_YAML, encoding="utf-8")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["DAGSTER_DISABLE_TELEMETRY"] = "1"
    return home


# (what it was made for: ``_identity``, the instance): made once by the warm process for the runs
# it forks (``keep_instance``), each of which takes it once
_kept_instance: tuple[tuple, object] | None = None


def _identity(home: Path) -> tuple:
    """The instance folder as the kept instance found it: its configuration, and which folders
    and databases its storage writes in (removed and made again, they are others: a new
    instance)."""
    folders = []
    history = home / "history"
    for folder in (
        home,
        history,
        history / "runs",
        history / "runs.db",
        history / "runs" / "index.db",
        home / "schedules",
        home / "schedules" / "schedules.db",
    ):
        try:
            stat = folder.stat()
        except OSError:
            return ()
        folders.append((stat.st_dev, stat.st_ino))
    return (str(home), (home / "dagster.yaml").read_text(encoding="utf-8"), tuple(folders))


def keep_instance() -> None:
    """Make the instance the next ``get_instance`` returns (the warm process, for its runs:
    reading dagster.yaml and checking the storage's schema revisions, ≈ 40 ms a run). Its
    SQLite connections are not inherited (``defs/storage``: a copy opens its own)."""
    global _kept_instance
    from dagster import DagsterInstance

    home = ensure_dagster_home()
    instance = DagsterInstance.get()
    # the index database's revision checked here once, not by each run (≈ 15 ms)
    with contextlib.suppress(Exception), instance.event_log_storage.index_connection():
        pass
    _kept_instance = (_identity(home), instance)


def get_instance():
    """The Dagster instance of ``DAGSTER_HOME`` (the one ``keep_instance`` made, when its folder
    and configuration are still those)."""
    global _kept_instance
    from dagster import DagsterInstance

    home = ensure_dagster_home()
    kept, _kept_instance = _kept_instance, None
    if kept is not None and kept[0] and kept[0] == _identity(home):
        return kept[1]
    return DagsterInstance.get()


# --- runs in progress ------------------------------------------------------------------------


def cli_run_tags() -> dict[str, str]:
    """Tags of a run ``kpi run`` executes in its own process."""
    return {"kpi/trigger": CLI_TRIGGER, PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_cli_runs(instance) -> list[str]:
    """Runs of ``kpi run`` still « in progress » whose process is gone (killed): marked
    failed, so the daemon's queue and later commands stop waiting for them."""
    from dagster import DagsterRunStatus, RunsFilter

    failed = []
    records = instance.get_run_records(
        filters=RunsFilter(
            statuses=[DagsterRunStatus.STARTED, DagsterRunStatus.STARTING],
            tags={"kpi/trigger": CLI_TRIGGER},
        )
    )
    for record in records:
        run = record.dagster_run
        pid, host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or host != socket.gethostname() or _process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run, "kpi run a été interrompu (processus disparu) : exécution marquée en échec"
        )
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:  # its step's slot in the duckdb pool
            storage.free_concurrency_slots_for_run(run.run_id)
        failed.append(run.run_id)
    return failed


def describe_run(run) -> str:
    """« l'exécution 1a2b3c4d (kpi_run, lancée par le capteur) », for people."""
    trigger = run.tags.get("kpi/trigger") or (
        "le capteur " + run.tags["dagster/sensor_name"]
        if "dagster/sensor_name" in run.tags
        else "la planification " + run.tags["dagster/schedule_name"]
        if "dagster/schedule_name" in run.tags
        else "l'interface"
    )
    if trigger in ("sensor", "schedule"):
        trigger = "le capteur" if trigger == "sensor" else "la planification"
    status = {"QUEUED": "en file d'attente"}.get(run.status.value, "en cours")
    return f"l'exécution {run.run_id[:8]} ({run.job_name}, lancée par {trigger}, {status})"


def active_runs(instance) -> list:
    """Runs of the instance queued or in progress (dead ``kpi run`` runs cleared first)."""
    from dagster import DagsterRunStatus, RunsFilter

    fail_dead_cli_runs(instance)
    statuses = [
        DagsterRunStatus.QUEUED,
        DagsterRunStatus.NOT_STARTED,
        DagsterRunStatus.STARTING,
        DagsterRunStatus.STARTED,
        DagsterRunStatus.CANCELING,
    ]
    return [r.dagster_run for r in instance.get_run_records(filters=RunsFilter(statuses=statuses))]


def wait_for_no_active_run(instance, purpose: str, wait: float, notify) -> float:
    """Wait until no run is queued or in progress; the seconds waited. Raises
    ``WarehouseBusy`` (French) when ``wait`` seconds pass first."""
    from dagster_project.warehouse.access import WarehouseBusy

    started = time.monotonic()
    next_notice = started
    while True:
        runs = active_runs(instance)
        if not runs:
            return time.monotonic() - started
        now = time.monotonic()
        names = ", ".join(describe_run(r) for r in runs[:3])
        if now - started >= wait:
            raise WarehouseBusy(
                f"entrepôt occupé par {names} ; {purpose} a attendu {now - started:.0f} s, "
                "réessayez plus tard."
            )
        if now >= next_notice:
            notify(f"entrepôt occupé par {names} ; {purpose} attend son tour, nouvelle tentative…")
            next_notice = now + NOTIFY_EVERY_SECONDS
        time.sleep(POLL_SECONDS)
