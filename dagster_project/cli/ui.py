"""`kpi ui`: the Dagster web interface (asset graph, runs, sensor and schedule) on this machine.

Starts ``dagster dev`` on the project's code location with a persistent instance in
``.dagster_home/`` (run history kept between sessions, telemetry off). ``dagster dev`` runs
in its own process group: started from a script it would otherwise ignore SIGINT and
SIGTERM. Ctrl-C (or SIGTERM) on ``kpi ui`` is forwarded to that group, then ``kpi ui``
waits for the webserver and the daemon to stop, killing them if they do not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.cli.common import EXIT_ERROR, EXIT_OK, common_options, settings_from

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 3000
DEFINITIONS_MODULE = "dagster_project.definitions"
STOP_TIMEOUT_SECONDS = 30.0
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def dagster_executable() -> str:
    """The dagster of this virtual environment, even when it is not activated."""
    candidate = Path(sys.executable).parent / "dagster"
    return str(candidate) if candidate.exists() else (shutil.which("dagster") or "dagster")


def ui_command(host: str, port: int) -> list[str]:
    return [dagster_executable(), "dev", "-m", DEFINITIONS_MODULE, "-h", host, "-p", str(port)]


def stop_group(
    process: subprocess.Popen, timeout: float = STOP_TIMEOUT_SECONDS, grace: float = 10.0
) -> int:
    """Stop the process group led by ``process``: SIGINT and ``timeout`` seconds to exit, then
    SIGTERM and ``grace`` seconds, then SIGKILL. Returns the leader's exit code."""
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # the leader is gone; give the rest of its group (webserver, daemon, code servers) a
    # moment to follow it, then finish whatever lingers
    deadline = time.monotonic() + grace
    while group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + grace
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    return process.wait()


def group_alive(pgid: int) -> bool:
    """Whether a live process remains in the group (exited, unreaped ones do not count)."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def skip_community_popup(home: Path) -> None:
    """Mark Dagster's "join the community" pop-up as seen: on a local instance it asks for an
    e-mail address and loads a third-party form, and it hides the page it opens over."""
    seen = home / ".nux" / "nux.yaml"
    if not seen.exists():
        seen.parent.mkdir(parents=True, exist_ok=True)
        seen.write_text("seen: 1\n", encoding="utf-8")


def cmd_ui(args: argparse.Namespace) -> int:
    from dagster_project.defs.instance import ensure_dagster_home
    from dagster_project.warehouse.build import ensure_build

    settings = settings_from(args)  # exports KPI_SOURCES, KPI_WAREHOUSE… for the code location
    build = ensure_build(settings)  # runs launched from the UI continue the same history
    home = ensure_dagster_home(Path(args.dagster_home) if args.dagster_home else None)
    skip_community_popup(home)
    from dagster_project.defs.instance import fail_dead_cli_runs, get_instance

    with get_instance() as instance:  # a killed `kpi run` must not hold the run queue
        fail_dead_cli_runs(instance)
    env = dict(os.environ, DAGSTER_HOME=str(home), DAGSTER_DISABLE_TELEMETRY="1")
    command = ui_command(args.host, args.port)
    print(
        f"kpi ui : interface Dagster sur http://{args.host}:{args.port} "
        f"(instance {home}, base de construction {build}, livraisons {settings.sources_dir})\n"
        "Ctrl-C pour arrêter.",
        file=sys.stderr,
        flush=True,
    )
    stopping: dict[str, int | None] = {"signal": None}

    def forward(signum, _frame):
        stopping["signal"] = signum

    # Handlers first: a signal this process ignores (started with `&` by a shell without job
    # control) would stay ignored in dagster; a handled one is reset to default at exec.
    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        try:
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, process_group=0)
        except OSError as exc:
            print(f"kpi ui : impossible de lancer dagster ({exc})", file=sys.stderr)
            return EXIT_ERROR
        try:
            while process.poll() is None and stopping["signal"] is None:
                time.sleep(0.2)
        finally:
            if process.poll() is None or stopping["signal"] is not None:
                print("\nkpi ui : arrêt de l'interface Dagster…", file=sys.stderr, flush=True)
                stop_group(process)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping["signal"] is not None:
        print("kpi ui : interface arrêtée.", file=sys.stderr)
        return EXIT_OK
    code = process.returncode
    if code:
        print(f"kpi ui : dagster s'est arrêté avec le code {code}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def register(sub) -> None:
    ui = sub.add_parser(
        "ui", help="ouvrir l'interface web Dagster (graphe des assets, exécutions, capteur)"
    )
    ui.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port d'écoute (défaut {DEFAULT_PORT})"
    )
    ui.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"adresse d'écoute (défaut {DEFAULT_HOST} : cette machine seulement)",
    )
    ui.add_argument("--sources", help="dossier des livraisons (défaut ./sources)")
    common_options(ui)
    ui.add_argument("--today", help="date du jour pour juger les livraisons (AAAA-MM-JJ)")
    ui.add_argument(
        "--dagster-home",
        help="dossier de l'instance Dagster (défaut $DAGSTER_HOME ou ./.dagster_home)",
    )
    ui.set_defaults(func=cmd_ui)
