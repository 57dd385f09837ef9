"""Progress lines for the command line (French, on stderr), silent unless a CLI asked for them
(``KPI_PROGRESS=1``: ``kpi run``, ``kpi freeze``) and not silenced (``kpi --quiet``).

``heartbeat()`` keeps a long step from staying silent: while it runs, the last progress line
is said again, with how long its step has lasted, whenever nothing was printed for a few
seconds (a freeze's exports, a publication).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time

ENV = "KPI_PROGRESS"
HEARTBEAT_SECONDS = 3.0

_START = time.monotonic()
_LOCK = threading.Lock()
_quiet = False
# the last progress line: (message, when its step started, when it was last printed)
_last: tuple[str, float, float] | None = None


def enabled() -> bool:
    """Whether a CLI asked for progress lines (``KPI_PROGRESS=1``) and not ``--quiet``."""
    return not _quiet and os.environ.get(ENV) == "1"


def enable() -> None:
    """Progress lines on, for this process and those it starts (what ``kpi run`` does)."""
    os.environ[ENV] = "1"


def quiet() -> bool:
    """Whether ``kpi --quiet`` silenced the progress lines and notices."""
    return _quiet


@contextlib.contextmanager
def command(quiet: bool = False):
    """One ``kpi`` command: ``quiet`` silences its progress lines; progress turned on by the
    command (``enable``) is turned off again after it (a command called from a test or a
    script leaves the process as it found it)."""
    global _quiet
    saved_env, saved_quiet = os.environ.get(ENV), _quiet
    _quiet = quiet
    try:
        yield
    finally:
        _quiet = saved_quiet
        if saved_env is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved_env


def restart_clock(elapsed: float = 0.0) -> None:
    """The progress lines' clock from ``elapsed`` seconds ago: a run made by the warm process
    counts from when its ``kpi`` command started (cli/warm.py)."""
    global _START, _last
    _START = time.monotonic() - max(0.0, elapsed)
    _last = None


def _print(message: str, now: float) -> None:
    print(f"[{now - _START:6.1f} s] {message}", file=sys.stderr, flush=True)


def progress(message: str) -> None:
    global _last
    if enabled():
        now = time.monotonic()
        with _LOCK:
            _print(message, now)
            _last = (message, now, now)


def notice(message: str) -> None:
    """A notice on stderr (not a progress line: no time), unless ``kpi --quiet``."""
    if not _quiet:
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def heartbeat(every: float = HEARTBEAT_SECONDS):
    """While the block runs, the last progress line again (« … toujours en cours, 12 s »)
    whenever no progress line was printed for ``every`` seconds. Nothing when progress lines
    are off."""
    if not enabled():
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        global _last
        while not stop.wait(min(0.5, every)):
            now = time.monotonic()
            with _LOCK:
                if _last is None or now - _last[2] < every:
                    continue
                message, started, _printed = _last
                said = message.rstrip("…").rstrip()  # « chargement… » said once, not « … … »
                _print(f"{said} … toujours en cours ({now - started:.0f} s)", now)
                _last = (message, started, now)

    thread = threading.Thread(target=beat, name="kpi-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
