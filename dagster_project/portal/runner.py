"""Asking the pipeline to run after an accepted upload: one run at a time, never a second
writer.

Two modes (``kpi portal --pipeline``):

- ``kpi-run`` (default): one thread of the portal runs ``kpi run --select <sources>`` for the
  sources uploaded since the last run, one run after the other; uploads arriving during a
  run are gathered into the next. ``kpi run`` itself waits for the Dagster daemon's runs and
  for any other ``kpi run`` or freeze (``warehouse.access``), and publishes the copy analysts
  read when it succeeds.
- ``capteur``: the portal only writes the file into ``sources/``; the Dagster daemon's sensor
  ``new_deliveries`` (switched on in the Dagster UI) requests the run of that source, the
  daemon's queue runs one at a time and ``publish_after_run`` publishes. The page follows
  the publication the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.settings import Settings

MODES = ("kpi-run", "capteur")


def kpi_executable() -> list[str]:
    candidate = Path(sys.executable).parent / "kpi"
    if candidate.exists():
        return [str(candidate)]
    found = shutil.which("kpi")
    if found:
        return [found]
    return [sys.executable, "-c", "from dagster_project.cli import console; console()"]


@dataclass
class RunRecord:
    sources: tuple[str, ...]
    requested_at: float
    started_at: float | None = None
    ended_at: float | None = None
    returncode: int | None = None
    output_tail: str = ""

    @property
    def state_fr(self) -> str:
        if self.started_at is None:
            return "exécution demandée, en attente de son tour"
        if self.ended_at is None:
            return "exécution en cours"
        if self.returncode == 0:
            return "exécution terminée, copie publiée"
        if self.returncode == 3:
            return (
                "exécution terminée : un contrôle bloquant a échoué, la copie publiée ne change pas"
            )
        return f"exécution en échec (code {self.returncode})"


@dataclass
class PipelineRunner:
    settings: Settings
    mode: str = "kpi-run"
    on_finished: object = None  # callable(RunRecord) -> None
    _pending: dict[str, float] = field(default_factory=dict)
    _runs: list[RunRecord] = field(default_factory=list)
    _lock: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None
    _stopping: bool = False
    _current: RunRecord | None = None

    def request(self, source_id: str) -> None:
        """Ask for a run of ``source_id`` (and what depends on it)."""
        if self.mode != "kpi-run":
            return
        with self._lock:
            self._pending.setdefault(source_id, time.time())
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="kpi-portal-runner", daemon=True
                )
                self._thread.start()
            self._lock.notify_all()

    def state_of(self, source_id: str, since: float) -> str | None:
        """The French state of the latest run requested for ``source_id`` at or after
        ``since`` (an upload's time), None when none was."""
        with self._lock:
            if source_id in self._pending and self._pending[source_id] >= since - 1:
                return "exécution demandée, en attente de son tour"
            for record in reversed(self._runs):
                if source_id in record.sources and record.requested_at >= since - 1:
                    return record.state_fr
        return None

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return list(self._runs)

    def busy(self) -> bool:
        with self._lock:
            return bool(self._pending) or self._current is not None

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.busy():
                return True
            time.sleep(0.2)
        return not self.busy()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._lock.notify_all()

    def command(self, sources: tuple[str, ...]) -> list[str]:
        s = self.settings
        command = [
            *kpi_executable(),
            "run",
            "--sources",
            str(s.sources_dir),
            "--warehouse",
            str(s.warehouse),
            "--select",
            *sources,
        ]
        if s.today:
            command += ["--today", s.today]
        return command

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._stopping:
                    self._lock.wait(timeout=1.0)
                if self._stopping:
                    return
                # gather what arrives within a second: several uploads, one run
                self._lock.wait(timeout=1.0)
                requested = min(self._pending.values())
                sources = tuple(sorted(self._pending))
                self._pending.clear()
                record = RunRecord(sources, requested)
                self._runs.append(record)
                del self._runs[:-200]
                self._current = record
            record.started_at = time.time()
            try:
                completed = subprocess.run(
                    self.command(sources),
                    capture_output=True,
                    text=True,
                    stdin=subprocess.DEVNULL,
                    env=dict(os.environ),
                )
                record.returncode = completed.returncode
                record.output_tail = (completed.stdout + completed.stderr)[-4000:]
            except OSError as exc:
                record.returncode = -1
                record.output_tail = str(exc)
            record.ended_at = time.time()
            with self._lock:
                self._current = None
            if callable(self.on_finished):
                with contextlib.suppress(Exception):  # the journal must not stop the runner
                    self.on_finished(record)


def fr_time(stamp: float | None) -> str:
    return dt.datetime.fromtimestamp(stamp).strftime("%d/%m/%Y %H:%M:%S") if stamp else ""


def kpi_command(settings: Settings, *args: str, timeout: float = 900) -> tuple[int, str]:
    """Run one ``kpi`` command (``kpi freeze --dry-run``, ``kpi verify``, ``kpi trace``…) on
    the portal's warehouse: the steering and auditors' pages show exactly what the command
    line says, and the command waits its turn for the warehouse like any other."""
    command = [*kpi_executable(), *args]
    if "--warehouse" not in args and args[0] not in ("templates", "next-campaign"):
        command += ["--warehouse", str(settings.warehouse)]
    env = dict(
        os.environ, KPI_SOURCES=str(settings.sources_dir), KPI_RELEASES=str(settings.releases_dir)
    )
    if settings.today:
        env["KPI_TODAY"] = settings.today
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return -1, f"commande non terminée : {exc}"
    return done.returncode, (done.stdout + done.stderr).strip()
