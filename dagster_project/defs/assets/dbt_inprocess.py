"""``dbt build`` in the run's own process: dbt-core's programmatic entry point (``dbtRunner``).

dagster-dbt runs each dbt invocation in a ``dbt`` process of its own, which pays again what the
run's process has already paid or never needs: Python and dbt-core's imports (≈ 3.4 s at SF1),
loading and checking the project's manifest (≈ 2.5 s), writing ``manifest.json`` and
``run_results.json`` (≈ 2 s), and a debug log of every SQL statement whose file handler lock
the four dbt threads queue for (bench/README.md, « 6 December 2026 »). Here the dbt step calls
dbt-core in a thread of the run's process instead:

* ``dbt parse`` first, with partial parsing from the project's last parse (``kpi`` keeps it
  up to date: ``dbt.ensure_manifest``) copied into the invocation's own folder: dbt itself
  checks that nothing changed (files, variables, profile, dbt version) and re-parses what did;
  about 1 s when nothing changed. The project's ``target/`` is never written, so two runs
  with different build databases (tests, a deployment beside a developer) never re-parse for
  each other;
* ``dbt build`` with that manifest, the same arguments and the same selection as dagster-dbt
  would give the ``dbt`` process (``dagster_dbt.asset_utils``), and no JSON artifacts: the
  results come back as objects (``results``), in the shape of ``run_results.json``;
* dbt's events reach the step through a queue, as dicts in the shape of dbt's JSON log lines
  (what dagster-dbt reads from the process): the step turns them into the same Dagster events
  with dagster-dbt's own ``DbtCoreCliEventMessage``. Only events of level info and above are
  converted (dbt fires ≈ 6 000 debug events in a build); the info lines go to the run's log
  (stdout, ``warehouse.run.log`` under ``kpi run``) and to ``dbt.log`` in the invocation
  folder, as dbt's own output did.

dbt-core supports several sequential invocations in one process, not concurrent ones; the
in-process executor runs one step at a time and the ``duckdb`` pool one dbt step at a time.
After the build the DuckDB adapter's database is closed (dbt-duckdb keeps it open for the
process), so the rest of the run (and its readers) open the build database again.
"""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster_project.lib.gc_freeze import frozen
from dagster_project.settings import EXECUTION_VARIABLES

# events of these levels are converted and streamed (the result lines, the start lines, the
# summary, warnings and errors); the debug ones (each SQL statement, cache events) are not
STREAMED_LEVELS = ("info", "warn", "error")
PARTIAL_PARSE = "partial_parse.msgpack"
CANCEL_WAIT_SECONDS = 30.0
_DONE = object()


class DbtInProcess:
    """One ``dbt build`` (or another node command) in this process. ``stream()`` yields dbt's
    events as dicts while it runs; then ``success``, ``results`` (``run_results.json``'s
    ``results``) and ``errors`` hold what it gave."""

    def __init__(
        self,
        args: list[str],
        project_dir: Path,
        profiles_dir: Path,
        target_path: Path,
        target: str | None = None,
        parse_args: tuple[str, ...] = (),
    ):
        self.args = list(args)
        self.parse_args = list(parse_args)  # more arguments for its ``dbt parse``
        self.project_dir = Path(project_dir)
        self.profiles_dir = Path(profiles_dir)
        self.target_path = Path(target_path)
        self.target = target
        self.success = False
        self.results: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._queue: queue.Queue = queue.Queue()

    def _common_args(self) -> list[str]:
        return [
            "--project-dir",
            str(self.project_dir),
            "--profiles-dir",
            str(self.profiles_dir),
            *(["--target", self.target] if self.target else []),
            "--target-path",
            str(self.target_path),
            "--log-path",
            str(self.target_path),
            # dbt's own stdout logger off: the step writes the info lines itself
            "--log-level",
            "none",
            "--log-level-file",
            "info",
            "--no-write-json",
            "--no-send-anonymous-usage-stats",
        ]

    def _seed_partial_parse(self) -> tuple[int, int] | None:
        """Start from the project's last parse (dagster-dbt does the same for its process)."""
        self.target_path.mkdir(parents=True, exist_ok=True)
        parsed = self.project_dir / "target" / PARTIAL_PARSE
        if not parsed.exists():
            return None
        copy = self.target_path / PARTIAL_PARSE
        shutil.copyfile(parsed, copy)
        return _stat(copy)

    def _keep_partial_parse(self, seeded: tuple[int, int] | None) -> None:
        """When dbt had to parse again (a project file, the profile or dbt changed since the
        project's last parse), its new parse becomes the project's, so the next run starts from
        it (replaced whole: a concurrent run reads the old one or the new one)."""
        fresh = self.target_path / PARTIAL_PARSE
        if not fresh.exists() or _stat(fresh) == seeded:
            return
        target = self.project_dir / "target"
        temporary = target / f".{PARTIAL_PARSE}.{os.getpid()}.{threading.get_ident()}"
        try:
            shutil.copyfile(fresh, temporary)
            os.replace(temporary, target / PARTIAL_PARSE)
        except OSError:
            temporary.unlink(missing_ok=True)

    def _callback(self, msg) -> None:
        info = msg.info
        if info.level not in STREAMED_LEVELS:
            return
        from dbt_common.events.functions import msg_to_dict

        event = msg_to_dict(msg)
        if info.level == "error":
            self.errors.append(info.msg)
        self._queue.put(event)

    def parse(self):
        """``dbt parse`` from the project's last parse: dbt's manifest, or None (what failed
        in ``errors``)."""
        from dbt.cli.main import dbtRunner

        seeded = self._seed_partial_parse()
        parsed = dbtRunner(callbacks=[self._callback]).invoke(
            ["parse", *self._common_args(), *self.parse_args]
        )
        if not parsed.success or parsed.result is None:
            if parsed.exception is not None:
                self.errors.append(str(parsed.exception))
            return None
        self._keep_partial_parse(seeded)
        return parsed.result

    def parse_key(self) -> tuple:
        """What a parse depends on here (not the folder it writes its log to)."""
        return (str(self.project_dir), str(self.profiles_dir), self.target)

    def _parsed_ahead(self):
        """The manifest of a parse started before the step (``parse_ahead``), its lines passed
        on to this invocation's; None when there was none or it failed (the step parses)."""
        ahead = _take_parse_ahead(self.parse_key())
        if ahead is None:
            return None
        ahead.thread.join()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.put(ahead.invocation._queue.get_nowait())
        return ahead.manifest

    def _invoke(self) -> None:
        try:
            from dbt.cli.main import dbtRunner

            manifest = take_kept(self) or self._parsed_ahead() or self.parse()
            if manifest is None:
                return
            built = dbtRunner(manifest=manifest, callbacks=[self._callback]).invoke(
                [*self.args, *self._common_args()]
            )
            self.success = bool(built.success)
            if built.exception is not None:
                self.errors.append(str(built.exception))
            execution = built.result
            self.results = [_result_dict(r) for r in getattr(execution, "results", None) or []]
        except BaseException as error:  # reported by the step, never lost in the thread
            self.errors.append(f"{type(error).__name__}: {error}")
        finally:
            close_adapter_connections()
            release_event_loggers()
            self._queue.put(_DONE)

    def stream(self) -> Iterator[dict[str, Any]]:
        """Run dbt in a thread and yield its events (info and above) as they come."""
        thread = threading.Thread(target=self._invoke, name="dbt", daemon=True)
        # the run's process holds Dagster's, Great Expectations' and pandas' objects; dbt
        # allocates enough to trigger Python's full garbage collections, each of which would
        # walk all of them again: they are set aside while dbt runs (lib.gc_freeze)
        with frozen():
            thread.start()
            try:
                while True:
                    event = self._queue.get()
                    if event is _DONE:
                        break
                    yield event
            except BaseException:
                # the step is interrupted (run terminated from the UI, Ctrl-C): dbt's running
                # queries are cancelled and dbt is given a moment to stop, while the step still
                # holds the build database's write access
                cancel_open_queries()
                thread.join(timeout=CANCEL_WAIT_SECONDS)
                raise
            thread.join()


class _ParseAhead:
    """A ``dbt parse`` in a thread of its own, started before the dbt step."""

    def __init__(self, invocation: DbtInProcess):
        self.invocation = invocation
        self.manifest = None
        self.thread = threading.Thread(target=self._run, name="dbt-parse", daemon=True)

    def _run(self) -> None:
        try:
            self.manifest = self.invocation.parse()
        except BaseException as error:  # the step parses again and says what fails
            self.invocation.errors.append(f"{type(error).__name__}: {error}")
        finally:
            release_event_loggers()


_ahead_lock = threading.Lock()
_ahead: _ParseAhead | None = None  # one at a time


def parse_ahead(invocation: DbtInProcess) -> None:
    """Start ``invocation``'s ``dbt parse`` now, in a thread, for the dbt step of the same
    project, profiles and target to take (``_parsed_ahead``). Called while the run's process
    mostly waits (its Great Expectations checks are validated by the worker process), the
    parse (≈ 1 s of Python when nothing changed) then costs the dbt step nothing. One at a
    time: dbt never runs two invocations at once in a process."""
    global _ahead
    if has_kept(invocation):
        return  # parsed before the run, and nothing it read changed since
    with _ahead_lock:
        if _ahead is not None:
            return
        ahead = _ahead = _ParseAhead(invocation)
    ahead.thread.start()


def _take_parse_ahead(key: tuple) -> _ParseAhead | None:
    """The parse started ahead when it is for ``key`` (project, profiles, target)."""
    global _ahead
    with _ahead_lock:
        ahead = _ahead
        if ahead is None or ahead.invocation.parse_key() != key:
            return None
        _ahead = None
        return ahead


def drop_parse_ahead() -> None:
    """Forget a parse no step took (a run stopped before its dbt step), once it ended."""
    global _ahead
    with _ahead_lock:
        ahead, _ahead = _ahead, None
    if ahead is not None:
        ahead.thread.join()


# A manifest parsed before the run, by the warm process the run was forked from
# (cli/warm_server.py): (parse key, stamp of what the parse read, manifest). One run, one take.
_kept: tuple[tuple, tuple, Any] | None = None
_STAMP_SKIPPED = {"target", "logs", "dbt_packages", "__pycache__"}


def project_stamp(invocation: DbtInProcess) -> tuple:
    """What a parse of ``invocation``'s project reads, by name, size and modification time (the
    rule ``kpi run`` already trusts to say « nothing changed », warehouse/inputs.py): the
    project's files, its profiles, the ``KPI_*`` and ``DBT_*`` variables its YAML may read."""
    files = []
    for folder in dict.fromkeys([invocation.project_dir, invocation.profiles_dir]):
        for root, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if d not in _STAMP_SKIPPED and not d.startswith("."))
            for name in sorted(names):
                if name.startswith("."):
                    continue
                path = os.path.join(root, name)
                with contextlib.suppress(OSError):
                    info = os.stat(path)
                    files.append((path, info.st_size, info.st_mtime_ns))
    variables = sorted(
        (name, value)
        for name, value in os.environ.items()
        if name.startswith(("KPI_", "DBT_")) and name not in EXECUTION_VARIABLES
    )
    return (tuple(files), tuple(variables))


def keep_parsed(invocation: DbtInProcess, manifest, stamp: tuple) -> None:
    """Keep ``manifest`` (parsed by ``invocation`` from files as ``stamp`` found them) for the
    dbt step of a run of this process, or of the copies the warm process makes of itself."""
    global _kept
    _kept = (invocation.parse_key(), stamp, manifest)


def has_kept(invocation: DbtInProcess) -> bool:
    kept = _kept
    return (
        kept is not None
        and kept[0] == invocation.parse_key()
        and kept[1] == project_stamp(invocation)
    )


def take_kept(invocation: DbtInProcess):
    """The kept manifest when it is for this project, profiles and target and nothing it read
    changed since; None otherwise (then the step parses, as without a warm process)."""
    global _kept
    if not has_kept(invocation):
        return None
    manifest, _kept = _kept[2], None
    return manifest


def _stat(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def _result_dict(result) -> dict[str, Any]:
    """One node's result in the shape of ``run_results.json``'s ``results`` (the fields this
    project reads: audit.dbt_results, the generated row tests' rules)."""
    node = getattr(result, "node", None)
    status = getattr(result, "status", None)
    return {
        "unique_id": getattr(node, "unique_id", None),
        "status": str(getattr(status, "value", status)) if status is not None else None,
        "failures": getattr(result, "failures", None),
        "message": getattr(result, "message", None),
        "execution_time": getattr(result, "execution_time", None),
        "compiled_code": getattr(node, "compiled_code", None),
    }


def release_event_loggers() -> None:
    """dbt leaves its loggers (the invocation's ``dbt.log``) and the step's callback on its
    process-wide event manager after an invocation: released, as dbt's own tests do."""
    try:
        from dbt_common.events.event_manager_client import cleanup_event_logger

        cleanup_event_logger()
    except Exception:
        pass


def cancel_open_queries() -> None:
    """Cancel the queries dbt's adapters are running (what dbt does on Ctrl-C)."""
    try:
        from dbt.adapters.factory import FACTORY

        for adapter in list(FACTORY.adapters.values()):
            adapter.cancel_open_connections()
    except Exception:
        pass


def close_adapter_connections() -> None:
    """Close what dbt's adapters keep open in the process after an invocation: dbt-duckdb keeps
    its DuckDB database open until the process exits, which would hold the build database's
    file (another connection with other settings is refused, a copy would miss what is not
    yet checkpointed)."""
    try:
        from dbt.adapters.factory import cleanup_connections

        cleanup_connections()
    except Exception:
        pass
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except Exception:  # another adapter only
        return
    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        try:
            environment.close()
        finally:
            DuckDBConnectionManager.close_all_connections()
