"""`kpi run` in a process that has already loaded everything: the warm process (`kpi warm`).

Before a ``kpi run`` reads its first delivery, its process imports ≈ 4 700 modules (Dagster,
dagster-dbt, dbt-core, Great Expectations, pandas), builds dbt's JSON schemas, compiles the
templates of dbt's 537 macros and prepares Great Expectations' context: 5-7 s of CPU at every
run whatever the data, the larger part of a run at this agglomeration's scale and nearly all of
a re-delivery's (bench/README.md, « 6 December 2026, issue 19, fifth session »).

A warm process (``cli/warm_server.py``) does that once and then waits; each ``kpi run`` asks
it for a copy of itself (``fork``) that runs the command as the ``kpi`` process would, with the
caller's arguments, folder, environment, terminal (its standard input, output and error are
handed over) and exit code; Ctrl-C and the other stop signals are passed on. Nothing else
changes: the run is the same code, the same Dagster run, the same checks.

* The first ``kpi run`` on a machine runs as before, then starts a warm process in the
  background for the next ones (said on the terminal); ``kpi warm`` starts one and waits until
  it is ready, ``kpi warm --status`` says whether one is, ``kpi warm --stop`` stops it. It ends
  by itself after ``KPI_WARM_IDLE`` seconds (default 900) with no run, or as soon as the code
  it loaded changes. ``KPI_WARM=0`` never uses nor starts one.
* One warm process per installed code (``code_key``) and per environment (the ``KPI_*``,
  ``DBT_*``, ``DAGSTER_*`` variables, Python's and the locale's, the working folder): some
  modules read their settings when imported, so a run only goes to a process started with
  exactly its own. A different project or campaign folder starts its own.
* Only the user who started it can use it: its socket is in a folder only they can open, and
  it checks the caller's identity (``SO_PEERCRED``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.settings import IN_WARM_PROCESS_ENV

ENV = "KPI_WARM"  # "0": never use nor start a warm process
IDLE_ENV = "KPI_WARM_IDLE"  # seconds a warm process waits for the next run (default 900)
DIR_ENV = "KPI_WARM_DIR"  # the sockets' folder (default $XDG_RUNTIME_DIR/kpi or /tmp/kpi-<uid>)
IN_WARM_ENV = IN_WARM_PROCESS_ENV  # set in the runs a warm process makes
DEFAULT_IDLE_SECONDS = 900.0
COMMANDS = ("run",)  # the commands a warm process runs (the others load little)
READY_WAIT_SECONDS = 180.0
MAX_MESSAGE = 1 << 20
_KEY_ENV_PREFIXES = ("KPI_", "DBT_", "DAGSTER_", "GX_", "PYTHON", "LC_")
_KEY_ENV_NAMES = ("PATH", "HOME", "LANG", "TZ", "VIRTUAL_ENV")
# not in the key: set by kpi itself (progress, how it runs), or the telemetry switches that
# `settings` sets to « off » in every process anyway (the Makefile exports them: without this,
# the warm process `make demo` leaves would not be the one of the person's shell)
_KEY_ENV_IGNORED = (
    "KPI_PROGRESS",
    IN_WARM_ENV,
    ENV,
    IDLE_ENV,
    DIR_ENV,
    "DAGSTER_DISABLE_TELEMETRY",
    "DBT_SEND_ANONYMOUS_USAGE_STATS",
)
_SERVER_ENTRY = (
    "import json, sys; sys.path[:] = json.loads(sys.argv[1]); "
    "from dagster_project.cli.warm_server import main; sys.exit(main(sys.argv[2:]))"
)
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


_initial_env: dict[str, str] | None = None  # the environment the `kpi` process started with


def remember_environment() -> None:
    """Keep the environment the ``kpi`` process started with (``cli.console``, first thing): a
    command changes its own (``Settings.export`` sets the paths), and a warm process started
    after it must be the one the next ``kpi`` started from the same shell finds. The defaults
    ``settings`` sets when imported (telemetry off, ``DAGSTER_EVENT_BATCH_SIZE``) are already
    there: this module imports it, so every ``kpi`` remembers them alike."""
    global _initial_env
    _initial_env = dict(os.environ)


def _environment() -> dict[str, str]:
    return dict(os.environ if _initial_env is None else _initial_env)


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0" and os.environ.get(IN_WARM_ENV) != "1"


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get(IDLE_ENV, DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


# --------------------------------------------------------------------------------------------
# which warm process
# --------------------------------------------------------------------------------------------


def runtime_dir(create: bool = True) -> Path | None:
    """The folder of the sockets, only this user's (None when it is not: no warm process)."""
    base = os.environ.get(DIR_ENV)
    if base:
        folder = Path(base)
    elif os.environ.get("XDG_RUNTIME_DIR"):
        folder = Path(os.environ["XDG_RUNTIME_DIR"]) / "kpi"
    else:
        folder = Path("/tmp") / f"kpi-{os.getuid()}"
    if create:
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700, parents=True)
    try:
        info = folder.lstat()
    except OSError:
        return None
    import stat

    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def _package_files() -> list[tuple[str, int, int]]:
    package = Path(__file__).resolve().parent.parent
    out = []
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                info = os.stat(os.path.join(folder, name))
                out.append((os.path.join(folder, name), info.st_mtime_ns, info.st_size))
    return out


def code_key(environ: dict[str, str] | None = None, cwd: str | None = None) -> str:
    """What a warm process must share with a run: the interpreter, its import path (and the
    installed packages: the modification time of the folders they are installed in changes with
    each install), this package's files, the environment it reads and the working folder."""
    environ = _environment() if environ is None else environ
    paths = []
    for entry in sys.path:
        installed = None  # where packages are installed: changed by an install or an upgrade
        if os.path.isabs(entry) and os.path.basename(entry) in ("site-packages", "dist-packages"):
            with contextlib.suppress(OSError):
                installed = os.stat(entry).st_mtime_ns
        paths.append((entry, installed))
    env = sorted(
        (name, value)
        for name, value in environ.items()
        if (name.startswith(_KEY_ENV_PREFIXES) or name in _KEY_ENV_NAMES)
        and name not in _KEY_ENV_IGNORED
    )
    material = json.dumps(
        [sys.executable, sys.version, paths, _package_files(), env, cwd or os.getcwd()]
    )
    return hashlib.sha256(material.encode()).hexdigest()[:20]


def paths_for(key: str, folder: Path) -> dict[str, Path]:
    return {
        "socket": folder / f"{key}.sock",
        "lock": folder / f"{key}.lock",
        "log": folder / f"{key}.log",
    }


# --------------------------------------------------------------------------------------------
# talking to it
# --------------------------------------------------------------------------------------------


def _connect(key: str | None = None) -> socket.socket | None:
    folder = runtime_dir()
    if folder is None:
        return None
    path = paths_for(key or code_key(), folder)["socket"]
    if len(str(path)) > 100:  # AF_UNIX's limit
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(str(path))
    except OSError:
        sock.close()
        return None
    return sock


def _ask(sock: socket.socket, request: dict, fds: list[int] | None = None) -> None:
    data = json.dumps(request).encode()
    if fds:
        socket.send_fds(sock, [data], fds)
    else:
        sock.send(data)


def _answer(sock: socket.socket) -> dict | None:
    data = sock.recv(MAX_MESSAGE)
    return json.loads(data) if data else None


def _request(request: dict) -> dict | None:
    """One question to the warm process for this code and environment; None when none
    answers."""
    sock = _connect()
    if sock is None:
        return None
    with sock:
        try:
            _ask(sock, request)
            return _answer(sock)
        except OSError:
            return None


def status() -> dict | None:
    """The warm process for this code and environment: its pid, when it was ready, how long it
    took to load, its runs; None when there is none."""
    return _request({"status": True})


def stop() -> bool:
    """Ask the warm process to stop (it finishes the runs it made first)."""
    return bool(_request({"stop": True}))


def _stream_settings(stream) -> dict:
    return {
        "encoding": getattr(stream, "encoding", None) or "utf-8",
        "errors": getattr(stream, "errors", None) or "strict",
    }


def wanted(argv: list[str]) -> bool:
    """Whether ``kpi <argv>`` is for a warm process (``COMMANDS``, not ``--help``)."""
    command = next((a for a in argv if not a.startswith("-")), None)
    return enabled() and command in COMMANDS and not {"-h", "--help", "--version"} & set(argv)


def try_run(argv: list[str]) -> int | None:
    """Run ``kpi <argv>`` in the warm process for this code and environment and return its exit
    code; None when there is none (or it is not for this command): run it here."""
    if not wanted(argv):
        return None
    started = time.time()
    sock = _connect()
    if sock is None:
        return None
    with sock:
        request = {
            "run": {
                "argv": list(argv),
                "cwd": os.getcwd(),
                "env": _environment(),
                "started": started,
                "stdout": _stream_settings(sys.stdout),
                "stderr": _stream_settings(sys.stderr),
            }
        }
        with contextlib.suppress(ValueError, OSError):
            sys.stdout.flush()
            sys.stderr.flush()
        try:
            _ask(sock, request, [0, 1, 2])
            answer = _answer(sock)
        except OSError:
            return None
        if not answer or "pid" not in answer:
            return None  # refused (another user, a busy machine): run here
        return _wait(sock, int(answer["pid"]))


def _wait(sock: socket.socket, pid: int) -> int:
    """Wait for the run's exit code, passing Ctrl-C and the stop signals on to it."""

    def forward(signum, _frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                answer = _answer(sock)
            except InterruptedError:
                continue
            except OSError:
                answer = None
            if answer is None:
                print(
                    "kpi : le processus préchauffé s'est arrêté sans rendre le résultat de la "
                    "commande ; relancez-la (sans processus préchauffé : KPI_WARM=0)",
                    file=sys.stderr,
                )
                return 1
            if "exit" in answer:
                return int(answer["exit"])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# starting one
# --------------------------------------------------------------------------------------------


def spawn() -> subprocess.Popen | None:
    """Start a warm process for this code and environment in the background (its own session:
    the terminal's Ctrl-C is not for it). It says what it does in its log; it gives up at once
    when another is starting or running for the same key."""
    folder = runtime_dir()
    if folder is None:
        return None
    key = code_key()
    paths = paths_for(key, folder)
    if len(str(paths["socket"])) > 100:
        return None
    env = {k: v for k, v in _environment().items() if k != "KPI_PROGRESS"}
    with open(paths["log"], "ab") as log:
        try:
            return subprocess.Popen(
                [sys.executable, "-c", _SERVER_ENTRY, json.dumps(sys.path), key],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                close_fds=True,
            )
        except OSError:
            return None


def start_after_run() -> None:
    """After a ``kpi run`` made in its own process: a warm process for the next ones."""
    if not enabled() or status() is not None:
        return
    if spawn() is not None:
        from dagster_project.lib.progress import notice

        minutes = round(idle_seconds() / 60)
        notice(
            "kpi run : un processus préchauffé se prépare en arrière-plan pour les prochains "
            f"« kpi run » (il s'arrête après {minutes} min sans exécution ; kpi warm --stop "
            "l'arrête, KPI_WARM=0 s'en passe)"
        )


def wait_ready(process: subprocess.Popen | None, timeout: float = READY_WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = status()
        if found is not None:
            return found
        if process is not None and process.poll() is not None:
            found = status()  # another one was starting: it may be ready now
            if found is not None:
                return found
            process = None
        time.sleep(0.2)
    return None


# --------------------------------------------------------------------------------------------
# `kpi warm`
# --------------------------------------------------------------------------------------------


def register(sub) -> None:
    warm = sub.add_parser(
        "warm",
        help="préparer un processus préchauffé qui rend les « kpi run » suivants plus rapides "
        "(Dagster, dbt et Great Expectations déjà chargés)",
    )
    action = warm.add_mutually_exclusive_group()
    action.add_argument(
        "--status", action="store_true", help="dire si un processus préchauffé est prêt"
    )
    action.add_argument("--stop", action="store_true", help="arrêter le processus préchauffé")
    warm.set_defaults(func=cmd_warm)


def _said(found: dict) -> str:
    minutes = round(float(found.get("idle_seconds", DEFAULT_IDLE_SECONDS)) / 60)
    return (
        f"processus préchauffé prêt (n° {found['pid']}, chargé en "
        f"{float(found['load_seconds']):.1f} s, {found.get('runs', 0)} exécution(s) ; il "
        f"s'arrête après {minutes} min sans exécution)"
    )


def cmd_warm(args: argparse.Namespace) -> int:
    if args.stop:
        said = "processus préchauffé arrêté" if stop() else "aucun processus préchauffé"
        print(f"kpi warm : {said}")
        return 0
    found = status()
    if args.status:
        print(f"kpi warm : {_said(found) if found else 'aucun processus préchauffé'}")
        return 0 if found else 1
    if os.environ.get(ENV, "1") == "0":
        print("kpi warm : KPI_WARM=0 : pas de processus préchauffé", file=sys.stderr)
        return 1
    if found is None:
        from dagster_project.lib.progress import enable, progress

        enable()
        progress("préchauffage : chargement de Dagster, dbt et Great Expectations…")
        found = wait_ready(spawn())
    if found is None:
        folder = runtime_dir(create=False)
        where = f" ; son journal : {paths_for(code_key(), folder)['log']}" if folder else ""
        print(f"kpi warm : le processus préchauffé n'a pas démarré{where}", file=sys.stderr)
        return 1
    print(f"kpi warm : {_said(found)}")
    return 0
