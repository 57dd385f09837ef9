"""Great Expectations in a process of its own, started when a run starts.

Importing Great Expectations costs about 3 s (scipy, pydantic models, its expectation
registry), once per process, and validating a suite is Python work that holds the
interpreter. In a ``kpi run`` both used to share one core with Dagster and dbt-core while the
machine's second core stayed idle (a thread importing GX in the background still takes turns
with the run for Python's interpreter lock). ``start()`` starts one worker process that
imports GX and prepares its context while the run imports Dagster, reads its definitions and
ingests the deliveries; the check steps then hand each suite's DataFrame to it
(``validate``) and get GX's result back, the same JSON as validating here
(tests/unit/quality/test_gx_worker.py compares them).

Nothing else changes: the suites, the data (prepared here, from the run's own connection:
the worker never opens the warehouse), the result, what is recorded. Without a worker (a
run the daemon launches, a test, ``KPI_GX_WORKER=0``) or when the worker is gone,
``validate`` validates in this process, as before.

The worker is started with ``spawn`` (a fresh interpreter: forking a process that runs
Dagster's and dbt's threads is unsafe) and stopped by ``stop()``, at the end of the run or
at the latest when the process exits.
"""

from __future__ import annotations

import atexit
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

ENV = "KPI_GX_WORKER"  # "0": validate in the run's own process

_lock = threading.Lock()
_pool: ProcessPoolExecutor | None = None
_warmed: Future | None = None


def _warm() -> str:
    """In the worker: import GX and build its ephemeral context (``runner._batch_definition``)."""
    from dagster_project.lib.progress import ENV as PROGRESS_ENV

    os.environ.pop(PROGRESS_ENV, None)  # the run's process says what happens, not this one
    from dagster_project.quality.runner import _batch_definition

    _batch_definition()
    return "prêt"


def _validate_here(df, suite: dict, personal: bool) -> dict:
    from dagster_project.quality.runner import _validate

    return _validate(df, suite, personal)


def start() -> bool:
    """Start the worker (once per process) and have it load GX now; False when
    ``KPI_GX_WORKER=0`` or it could not start (the checks then validate in this process)."""
    global _pool, _warmed
    if os.environ.get(ENV, "1") == "0":
        return False
    with _lock:
        if _pool is None:
            import multiprocessing

            try:
                _pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
                _warmed = _pool.submit(_warm)
            except (OSError, RuntimeError):
                _pool = _warmed = None
                return False
            atexit.register(stop)
    return True


def running() -> bool:
    return _pool is not None


def stop() -> None:
    """Stop the worker (idle at the end of a run: immediate); nothing when none runs."""
    global _pool, _warmed
    with _lock:
        pool, _pool, _warmed = _pool, None, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


def validate(df, suite: dict, personal: bool) -> dict[str, Any]:
    """GX's result of ``suite`` on ``df`` (``runner._validate``), from the worker when one
    runs, else computed here. A worker that died (killed, out of memory) is stopped and the
    suite validated here: a check never fails because of the worker."""
    pool = _pool
    if pool is not None:
        try:
            return pool.submit(_validate_here, df, suite, personal).result()
        except BrokenProcessPool:
            stop()
    return _validate_here(df, suite, personal)
