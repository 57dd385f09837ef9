"""The warm process (``kpi warm``, cli/warm.py): load once, then one copy of itself per run.

``main`` runs in a process of its own session, started by ``cli/warm.spawn`` with the caller's
environment and import path:

1. it takes its key's lock (another warm process for the same key: it leaves at once);
2. it loads what a run loads (``warm_up``): every module of this package and those the last runs
   imported besides (``imports.txt``, written by the runs), Great Expectations' context, and
   dbt's project parsed once, with the templates of its macros compiled (dbt-core keeps them
   for the process, ``dbt_common.clients.jinja.template_cache``), its JSON schemas built;
3. it then listens on its socket (put in place only once ready: a run that finds it finds it
   ready) and, for each ``kpi run``, forks: the copy takes the caller's terminal, folder,
   environment and arguments and runs ``dagster_project.cli.main`` as the ``kpi`` process
   would; this process reports its exit code to the caller when it ends.

Forking is safe because nothing runs in this process but its main thread when it forks (checked
after loading; a warm-up that left a thread makes it stop), and it holds no database connection
(dbt's parse opens none; the runs open their own). It stops after ``KPI_WARM_IDLE`` seconds
without a run, when its code or installed packages change, on ``kpi warm --stop`` or SIGTERM;
the runs it made finish first.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib
import io
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from dagster_project.cli import warm
from dagster_project.lib.gc_freeze import freeze_for_good

KEY_CHECK_SECONDS = 5.0
IMPORTS_FILE = "imports.txt"
MAX_RECORDED_IMPORTS = 20000
# loaded by every run; the modules of this package and imports.txt bring the rest
WARM_MODULES = (
    "dagster",
    "dagster_dbt",
    "dbt.cli.main",
    "dbt.adapters.duckdb",
    "great_expectations",
    "pandas",
    "pyarrow",
    "duckdb",
    "openpyxl",
    "python_calamine",
)
SKIPPED_PACKAGES = ("dagster_project.demo",)  # scripts and fixtures, not what a run loads


def native_threads() -> int:
    """This process's threads, Python's and the libraries' own (a pool started by a library in
    C or Rust is not in ``threading.enumerate()``)."""
    return len(os.listdir("/proc/self/task"))


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}", flush=True)


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------


def _import(name: str) -> bool:
    try:
        importlib.import_module(name)
        return True
    except BaseException as exc:  # a module of a run only: never a reason not to serve
        _log(f"import de {name} impossible : {type(exc).__name__}: {exc}")
        return False


def _recorded_imports(folder: Path) -> list[str]:
    try:
        names = (folder / IMPORTS_FILE).read_text(encoding="utf-8").split()
    except OSError:
        return []
    return sorted(set(names))


def warm_up(folder: Path):
    """What every run loads, loaded once (see the module's docstring); the dbt invocation whose
    parse is kept (None: none). Refused (RuntimeError) when the warm-ups after the imports
    started threads of their own: the imports start their libraries' threads (DuckDB's,
    jemalloc's, OpenBLAS's, which see to their copies after a fork), nothing after them may."""
    import dagster_project
    from dagster_project.cli import parser

    parser()  # every command's module, and the parser the runs parse their arguments with
    for name in WARM_MODULES:
        _import(name)
    for info in pkgutil.walk_packages(dagster_project.__path__, "dagster_project."):
        if not info.name.startswith(SKIPPED_PACKAGES):
            _import(info.name)
    for name in _recorded_imports(folder):
        if name not in sys.modules:
            _import(name)
    imported = native_threads()
    _warm_great_expectations()
    invocation = _warm_dbt()
    _warm_definitions()
    if native_threads() > imported:
        raise RuntimeError(f"{native_threads() - imported} fil(s) démarré(s) par le chargement")
    return invocation


def _warm_great_expectations() -> None:
    from dagster_project.quality.runner import _batch_definition

    _batch_definition()  # the ephemeral context the checks validate with, kept per process


def _warm_definitions() -> None:
    """The dbt assets (built from the manifest: ≈ 50 ms a run), expectations/marts.yml parsed
    and the Dagster instance, made once for the runs (each still builds its definitions, with
    the files there at its start; each reads the contracts again: ``default_contracts`` keeps
    them for its process, so they are not read here)."""
    from dagster_project.defs.assets.dbt import build_dbt_assets
    from dagster_project.defs.instance import keep_instance
    from dagster_project.quality.suites import load_marts_yml

    try:
        build_dbt_assets()
        load_marts_yml()  # read again by a run when the file changed since (its stat)
        keep_instance()
    except Exception:  # the runs build them, and say what fails
        _log("définitions non préparées :\n" + traceback.format_exc())


def _warm_dbt():
    """dbt's parse of the project, kept for the runs' dbt step as long as none of the files and
    variables it read changes (``dbt_inprocess.take_kept``; otherwise the step parses, from the
    project's partial parse, as without a warm process). dbt-core also keeps, for the process
    and so for its copies, the JSON schemas of its project and profile classes, and here the
    compiled templates of the macros."""
    from dagster_project.defs.assets.dbt_inprocess import (
        DbtInProcess,
        close_adapter_connections,
        keep_parsed,
        project_stamp,
        release_event_loggers,
    )
    from dagster_project.settings import DBT_PROJECT_DIR, Settings

    settings = Settings.from_env()
    settings.export()
    try:
        with tempfile.TemporaryDirectory(prefix="kpi-warm-") as target:
            # dbt's static parser (dbt_extractor) starts a pool of native threads the first
            # time it runs: they would not exist in this process's copies, whose own parse
            # would then wait for them forever. Here the models' Jinja is rendered instead
            # (the same manifest: the static parser only spares that rendering).
            invocation = DbtInProcess(
                [],
                DBT_PROJECT_DIR,
                DBT_PROJECT_DIR,
                Path(target),
                target=settings.dbt_target,
                parse_args=("--no-static-parser",),
            )
            stamp = project_stamp(invocation)
            manifest = invocation.parse()
        if manifest is None:
            _log(f"projet dbt non lu : {'; '.join(invocation.errors)[:500]}")
            return None
        keep_parsed(invocation, manifest, stamp)  # the runs' dbt step takes it
        from dbt_common.clients.jinja import template_cache

        for macro in manifest.macros.values():
            with contextlib.suppress(Exception):
                template_cache.get_node_template(macro)
        _warm_constraint_schemas()
        return invocation
    finally:
        close_adapter_connections()
        release_event_loggers()


def _warm_constraint_schemas() -> None:
    """The JSON schemas dbt checks every constraint of a model under an enforced contract
    against (``BaseAdapter._parse_column_constraint``: the marts), built on first use and kept
    for the process by dbt-common (``dbtClassMixin.json_schema``): built here, each run's dbt
    step would build them again — at the same moment in two of its threads, on the marts'
    critical path (≈ 40 ms of Python in a re-delivery at SF1)."""
    from dbt_common.contracts.constraints import ColumnLevelConstraint, ModelLevelConstraint

    with contextlib.suppress(Exception):  # a run builds them itself
        ColumnLevelConstraint.json_schema()
        ModelLevelConstraint.json_schema()


# --------------------------------------------------------------------------------------------
# serving
# --------------------------------------------------------------------------------------------


class Server:
    def __init__(
        self,
        key: str,
        folder: Path,
        environ: dict[str, str],
        cwd: str,
        command: Callable[[list[str]], int] | None = None,
    ):
        self.key = key
        self.command = command or _run_command  # what a run does with its arguments
        self.paths = warm.paths_for(key, folder)
        self.folder = folder
        self.environ = environ
        self.cwd = cwd
        self.idle = warm.idle_seconds()
        self.children: dict[int, socket.socket] = {}
        self.runs = 0
        self.load_seconds = 0.0
        self.ready_at = 0.0
        self.last_activity = time.monotonic()
        self.listener: socket.socket | None = None
        self.listener_inode: int | None = None
        self.stopping = False
        self.preloaded: frozenset[str] = frozenset()
        self.dbt_invocation = None  # the parse kept for the runs (None: none)
        self.threads = 1  # this process's threads when it is ready (native_threads)
        self._wake_r, self._wake_w = os.pipe()

    # -- life -------------------------------------------------------------------------------

    def listen(self) -> None:
        path = self.paths["socket"]
        temporary = path.with_name(f".{self.key}.{os.getpid()}.sock")
        temporary.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind(str(temporary))
        os.chmod(temporary, 0o600)
        listener.listen(16)
        os.replace(temporary, path)  # visible only now, ready
        self.listener = listener
        self.listener_inode = path.stat().st_ino

    def stop_listening(self) -> None:
        """No new run (the runs in progress finish); the socket file is removed if it is ours."""
        if self.listener is None:
            return
        path = self.paths["socket"]
        with contextlib.suppress(OSError):
            if path.stat().st_ino == self.listener_inode:
                path.unlink()
        self.listener.close()
        self.listener = None

    def serve(self) -> None:
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        last_key_check = time.monotonic()
        while True:
            self._reap()
            if self.stopping:
                self.stop_listening()
            now = time.monotonic()
            if not self.children:
                if self.stopping:
                    _log("arrêt demandé : fin")
                    return
                if now - self.last_activity > self.idle:
                    _log(f"aucune exécution depuis {self.idle:.0f} s : fin")
                    return
            if now - last_key_check > KEY_CHECK_SECONDS and self.listener is not None:
                last_key_check = now
                if warm.code_key(self.environ, self.cwd) != self.key:
                    _log("le code ou les paquets installés ont changé : plus de nouvelle exécution")
                    self.stopping = True
                    self.stop_listening()
                elif not self.children:
                    self._parse_again()
            watched = [self._wake_r] + ([self.listener] if self.listener is not None else [])
            ready, _, _ = select.select(watched, [], [], 1.0)
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    os.read(self._wake_r, 4096)
            if self.listener is not None and self.listener in ready:
                with contextlib.suppress(OSError):
                    conn, _ = self.listener.accept()
                    self._handle(conn)

    def _parse_again(self) -> None:
        """The dbt project changed since its kept parse: parse it again, between runs (a run
        that comes meanwhile waits for it; one that came before parsed by itself)."""
        from dagster_project.defs.assets.dbt_inprocess import has_kept

        if self.dbt_invocation is None or has_kept(self.dbt_invocation):
            return
        os.chdir(self.cwd)
        try:
            self.dbt_invocation = _warm_dbt()
        except Exception:
            _log("nouvelle lecture du projet dbt impossible :\n" + traceback.format_exc())
            self.dbt_invocation = None
        finally:
            os.chdir("/")
        if native_threads() > self.threads:
            _log("des fils d'exécution restent après la lecture de dbt : fin")
            self.stopping = True
            self.stop_listening()
        else:
            freeze_for_good()
            _log("projet dbt relu")

    def _on_sigterm(self, *_args) -> None:
        self.stopping = True  # the loop stops listening (not here: it may be in select())

    def _reap(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            if code < 0:  # killed by a signal: as a shell says it
                code = 128 - code
            conn = self.children.pop(pid, None)
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.send(json.dumps({"exit": code}).encode())
                conn.close()
            self.last_activity = time.monotonic()

    # -- one request ------------------------------------------------------------------------

    def _handle(self, conn: socket.socket) -> None:
        raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", raw)
        if uid != os.getuid():
            _log(f"demande d'un autre utilisateur ({uid}) refusée")
            conn.close()
            return
        try:
            data, fds, _flags, _address = socket.recv_fds(conn, warm.MAX_MESSAGE, 3)
            request = json.loads(data) if data else {}
        except (OSError, ValueError):
            conn.close()
            return
        if "status" in request:
            self._reply(conn, self.describe())
        elif "stop" in request:
            self._reply(conn, {"stopping": True})
            self.stopping = True
            self.stop_listening()
        elif "run" in request and len(fds) == 3 and not self.stopping:
            self._fork(conn, request["run"], fds)
            return
        else:
            self._reply(conn, {"refused": True})
        for fd in fds:
            os.close(fd)

    @staticmethod
    def _reply(conn: socket.socket, answer: dict) -> None:
        with contextlib.suppress(OSError):
            conn.send(json.dumps(answer).encode())
        conn.close()

    def describe(self) -> dict:
        return {
            "pid": os.getpid(),
            "load_seconds": round(self.load_seconds, 2),
            "ready_since": self.ready_at,
            "runs": self.runs,
            "running": len(self.children),
            "idle_seconds": self.idle,
        }

    def _fork(self, conn: socket.socket, run: dict, fds: list[int]) -> None:
        try:
            pid = os.fork()
        except OSError as exc:  # no memory, too many processes: the caller runs it itself
            _log(f"copie impossible : {exc}")
            self._reply(conn, {"refused": True})
            for fd in fds:
                os.close(fd)
            return
        if pid == 0:  # the run
            code = 1
            try:
                self._become_run(conn, run, fds)
                code = self.command(run["argv"])
                self._record_imports()
            except BaseException:
                with contextlib.suppress(Exception):
                    traceback.print_exc()
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.children[pid] = conn
        self.runs += 1
        self.last_activity = time.monotonic()
        try:
            conn.send(json.dumps({"pid": pid}).encode())
        except OSError:  # the caller is gone already: the run stops as on Ctrl-C
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)

    # -- in the forked run ------------------------------------------------------------------

    def _become_run(self, conn: socket.socket, run: dict, fds: list[int]) -> None:
        """This copy becomes the caller's ``kpi`` process: its terminal, folder, environment,
        arguments, signals and progress clock."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        if self.listener is not None:
            self.listener.close()
        for other in self.children.values():
            other.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        for target, fd in enumerate(fds):
            if fd != target:
                os.dup2(fd, target)
                os.close(fd)
        _reopen_stdio(run)
        os.chdir(run["cwd"])
        os.environ.clear()
        os.environ.update(run["env"])
        os.environ[warm.IN_WARM_ENV] = "1"
        time.tzset()
        from dagster_project.lib import progress
        from dagster_project.settings import no_telemetry

        no_telemetry()
        sys.argv = ["kpi", *run["argv"]]
        progress.restart_clock(time.time() - float(run.get("started") or time.time()))
        from dagster_project.quality import gx_worker

        gx_worker.fork_worker()  # before any thread: a copy validates suites meanwhile
        _watch_caller(conn)

    def _record_imports(self) -> None:
        """The modules this run imported that the warm process had not: the next warm process
        loads them too."""
        new = sorted(set(sys.modules) - self.preloaded - {"__main__"})
        if not new:
            return
        path = self.folder / IMPORTS_FILE
        with contextlib.suppress(OSError), open(path, "a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)
            if out.tell() < MAX_RECORDED_IMPORTS * 40:
                out.write("".join(f"{name}\n" for name in new))


def _reopen_stdio(run: dict) -> None:
    """Python's text streams again over the caller's descriptors, with the caller's encodings
    and, on a terminal, line by line (this process was started without one)."""
    for fd, name in ((0, "stdin"), (1, "stdout"), (2, "stderr")):
        settings = run.get(name) or {}
        stream = open(  # noqa: SIM115 - the process's own stream, open until it ends
            fd,
            "r" if fd == 0 else "w",
            encoding=settings.get("encoding") or "utf-8",
            errors=settings.get("errors") or ("backslashreplace" if fd == 2 else "strict"),
            closefd=False,
        )
        if fd and (fd == 2 or os.isatty(fd)):
            stream.reconfigure(line_buffering=True)
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _watch_caller(conn: socket.socket) -> None:
    """The caller's ``kpi`` gone (its terminal closed, killed): this run stops as on Ctrl-C."""

    def watch() -> None:
        with contextlib.suppress(OSError):
            while conn.recv(warm.MAX_MESSAGE):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="kpi-caller", daemon=True).start()


def _run_command(argv: list[str]) -> int:
    """``kpi <argv>`` as ``cli.console`` runs it: exit handlers, flushed streams, exit code."""
    from dagster_project.cli import main

    return run_as_process(main, argv)


def run_as_process(function: Callable[[list[str]], int | None], argv: list[str]) -> int:
    """``function(argv)``'s exit code as a process's: an exit message printed (code 1),
    Ctrl-C's 130, a traceback's 1; then what a normal exit waits for and runs."""
    try:
        code = function(argv)
    except SystemExit as exc:
        code = exc.code
    except KeyboardInterrupt:
        code = 128 + signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    if isinstance(code, str):
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():  # what a normal exit waits for
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return int(code or 0)


# --------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    key = argv[0]
    if isinstance(sys.stdout, io.TextIOWrapper):  # this process's log (warm.spawn)
        sys.stdout.reconfigure(line_buffering=True)
    folder = warm.runtime_dir()
    if folder is None:
        return 1
    environ, cwd = dict(os.environ), os.getcwd()
    paths = warm.paths_for(key, folder)
    lock = open(paths["lock"], "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another one is starting or serving for this key
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    server = Server(key, folder, environ, cwd)
    _log(f"chargement (clé {key}, dossier {cwd})")
    started = time.monotonic()
    try:
        server.dbt_invocation = warm_up(folder)
    except BaseException:
        _log("chargement impossible :\n" + traceback.format_exc())
        return 1
    server.load_seconds = time.monotonic() - started
    threads = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if threads:
        _log(f"des fils d'exécution restent après le chargement ({', '.join(threads)}) : fin")
        return 1
    server.threads = native_threads()
    if warm.code_key(environ, cwd) != key:
        _log("le code a changé pendant le chargement : fin")
        return 0
    os.chdir("/")
    freeze_for_good()  # the loaded objects: never collected again, shared with the runs' copies
    server.preloaded = frozenset(sys.modules)
    server.ready_at = time.time()
    server.listen()
    _log(f"prêt en {server.load_seconds:.1f} s ({len(sys.modules)} modules)")
    try:
        server.serve()
    finally:
        server.stop_listening()
    # ended as it should: its files go (a log of a warm process that failed stays, to be read)
    for path in (paths["log"], paths["lock"]):
        path.unlink(missing_ok=True)
    lock.close()
    return 0
