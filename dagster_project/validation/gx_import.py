"""Great Expectations, imported once per process, and if asked ahead of time.

Importing GX costs ~5 s (scipy, altair, its 60 expectation modules: bench/README.md), a fixed
cost of every run that has checks. ``preload()`` starts that import in a background thread
when a run starts, so that it happens while ingestion and dbt work (dbt runs in its own
process: the second core is free); the first check then finds GX imported. ``module()`` waits
for that thread before importing GX itself, so the two threads never import GX at the same
time. A failed preload is silent: ``module()`` then imports GX and raises as usual.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from types import ModuleType

_preload: threading.Thread | None = None
_lock = threading.Lock()


def _import() -> None:
    # an error is left to module(), in the thread that needs GX
    with contextlib.suppress(Exception):
        import great_expectations  # noqa: F401


def preload() -> None:
    """Start importing GX in a background thread (once per process; no-op if imported)."""
    global _preload
    with _lock:
        if _preload is not None or "great_expectations" in sys.modules:
            return
        _preload = threading.Thread(target=_import, name="kpi-preload-gx", daemon=True)
        _preload.start()


def module() -> ModuleType:
    """The ``great_expectations`` module, once a preload (if any) has finished."""
    thread = _preload
    if thread is not None and thread is not threading.current_thread():
        thread.join()
    import great_expectations

    return great_expectations
