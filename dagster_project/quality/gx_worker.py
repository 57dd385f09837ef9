"""Great Expectations in a process of its own, started when a run starts.

Importing Great Expectations costs about 3 s (scipy, pydantic models, its expectation
registry), once per process, and validating a suite is Python work that holds the
interpreter. In a ``kpi run`` both used to share one core with Dagster and dbt-core while the
machine's second core stayed idle (a thread importing GX in the background still takes turns
with the run for Python's interpreter lock). ``start()`` starts one worker process
(``_serve``, in a new Python process) that imports GX and prepares its context
while the run imports Dagster, reads its definitions and ingests the deliveries; the check
steps then hand each suite's DataFrame to it (``validate``) and get GX's result back, the
same JSON as validating here (tests/unit/quality/test_validation.py compares them).

Nothing else changes: the suites, the data (prepared by the run, from its own connection:
the worker never opens the warehouse), the result, what is recorded. Without a worker (a
test, ``KPI_GX_WORKER=0``) or when the worker is gone, ``validate`` validates in this
process, as before.

A suite of many expectations is validated in two halves at once, one by the worker and one
here, when GX is loaded here too (a run of the warm process) and nothing else is being
validated here: the expectations are independent of one another, GX's time is about the sum
of theirs (a raw suite: 28 expectations, 0.10 s; two halves 0.05 s each), and this process
would otherwise wait for the worker. The two results are put back into one, in GX's order,
with GX's statistics computed again (``merge_results``): the same result as validating the
suite whole (tests/unit/quality/test_validation.py); a suite where an expectation raised is
validated again whole.

A worker that is a copy of the run's process (a run of the warm process) also runs jobs the
run hands it (``start_job``): ``kpi run``'s copy of the current publication, made and read
during the run (``warehouse.publication.CopyAhead``), which in a thread of the run's own
process took turns with the run for Python's interpreter lock (≈ 0.05 s of a re-delivery at
SF1).

The worker is a plain child process speaking over a socket pair (pickled requests and
answers, ``multiprocessing.connection``), not a ``multiprocessing`` pool: a pool's ``spawn``
imports the parent's ``__main__`` again in the child, which runs a script that calls
``kpi run`` without a ``__main__`` guard a second time; ``fork`` is unsafe in a process
running Dagster's and dbt's threads. The child ends when asked (``stop()``, at the end of the
run or at the latest when this process exits) or when this process is gone (end of file).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

from dagster_project.lib.progress import ENV as PROGRESS_ENV
from dagster_project.settings import IN_WARM_PROCESS_ENV

ENV = "KPI_GX_WORKER"  # "0": validate in the run's own process
_ENTRY = (
    "import sys; from dagster_project.quality.gx_worker import _serve; _serve(int(sys.argv[1]))"
)

# A frame is copied to the worker (pickled through the socket) only up to this size: at 100
# agglomerations a raw table of millions of rows would be held twice, and its copy cost more
# than the import it saves (bench/README.md: peak memory at SF100).
MAX_FRAME_BYTES = 64 * 1024 * 1024
# a suite of fewer expectations is validated whole: each validation has its fixed cost (≈ 2 ms)
SPLIT_MIN_EXPECTATIONS = 8

_lock = threading.Lock()  # one request at a time; guards _worker
_local = threading.Lock()  # one validation at a time in this process (GX's context is shared)
_worker: _Worker | None = None
_job_ids = 0  # the last job given to the worker (start_job)
_pending: set[int] = set()  # jobs given to the worker, their result not yet asked for
_finished: dict[int, tuple[str, Any]] = {}  # results collected when the worker was stopped


class WorkerGone(Exception):
    """The worker process ended (killed, out of memory): validate here instead."""


class _Forked:
    """A worker made by ``fork_worker``: what ``_Worker.close`` asks of a process."""

    def __init__(self, pid: int):
        self.pid = pid

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.waitstatus_to_exitcode(status)
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(str(self.pid), timeout or 0)
            time.sleep(0.02)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


class _Worker:
    @classmethod
    def adopt(cls, conn: Connection, process: _Forked) -> _Worker:
        worker = cls.__new__(cls)
        worker.conn, worker.process = conn, process
        return worker

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env.pop(PROGRESS_ENV, None)  # the run's process says what happens, not the worker
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", _ENTRY, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())

    def ask(self, request: tuple) -> Any:
        self.send(request)
        return self.receive()

    def send(self, request: tuple) -> None:
        try:
            self.conn.send(request)
        except OSError as exc:
            raise WorkerGone from exc

    def receive(self) -> Any:
        """The answer to the last request sent (its exception raised here)."""
        try:
            status, value = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise WorkerGone from exc
        if status == "error":
            raise value
        return value

    def close(self) -> None:
        """Ask the worker to end and return: it is waited for in a thread (a process of a few
        hundred MB takes 20-40 ms to exit, which the end of the run need not wait for), and
        killed if it has not ended within 10 s."""
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        self.conn.close()
        threading.Thread(target=self._reap, name="gx-worker-reaper", daemon=True).start()

    def _reap(self) -> None:
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        except ChildProcessError:  # reaped already
            pass


def start() -> bool:
    """Start the worker (once per process; it loads GX at once); False when
    ``KPI_GX_WORKER=0`` or it could not start (the checks then validate in this process)."""
    global _worker
    if os.environ.get(ENV, "1") == "0" or os.environ.get(IN_WARM_PROCESS_ENV) == "1":
        return False  # asked, or a warm process's run: GX is loaded here already (cli/warm.py)
    with _lock:
        if _worker is None:
            try:
                _worker = _Worker()
            except OSError:
                return False
            atexit.register(stop)
    return True


def fork_worker() -> bool:
    """A worker that is a copy of this process, which has GX loaded already (a run of the warm
    process, cli/warm_server.py, before it starts any thread): ready at once. False when one
    runs already, GX is not loaded here or the fork failed."""
    global _worker
    if "great_expectations" not in sys.modules:
        return False  # a copy would import it first: no faster than validating here
    with _lock:
        if _worker is not None:
            return False
        ours, theirs = socket.socketpair()
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return False
        if pid == 0:  # the worker: no terminal of its own, nothing said
            code = 0
            try:
                ours.close()
                os.environ.pop(PROGRESS_ENV, None)
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1):
                    os.dup2(null, fd)
                _serve(theirs.detach())
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        _worker = _Worker.adopt(Connection(ours.detach()), _Forked(pid))
    atexit.register(stop)
    return True


def running() -> bool:
    return _worker is not None


def two_at_once() -> bool:
    """Whether two suites can be validated at the same time: one by the worker, one here
    (GX is loaded here too: a run of the warm process)."""
    return _worker is not None and "great_expectations" in sys.modules


def stop() -> None:
    """Stop the worker: the results of its jobs collected (``start_job``), it is asked to end
    (idle at the end of a run, it does at once) and waited for in the background
    (``_Worker.close``); nothing when none runs."""
    global _worker
    with _lock:
        worker, _worker = _worker, None
        if worker is not None:
            for job in sorted(_pending):  # their results first (start_job)
                try:
                    _finished[job] = ("ok", worker.ask(("join", job)))
                except WorkerGone:
                    break
                except Exception as exc:
                    _finished[job] = ("error", exc)
            _pending.clear()
            worker.close()


def _validate_here(df, suite: dict, personal: bool) -> dict:
    from dagster_project.quality.runner import _validate

    return _validate(df, suite, personal)


def _small_enough(df) -> bool:
    """Whether ``df`` holds at most ``MAX_FRAME_BYTES``. The shallow size (no string read) is a
    lower bound: over the limit, the strings of millions of rows are not measured at all."""
    if int(df.memory_usage(deep=False).sum()) > MAX_FRAME_BYTES:
        return False
    return int(df.memory_usage(deep=True).sum()) <= MAX_FRAME_BYTES


def validate(df, suite: dict, personal: bool, in_halves: bool = False) -> dict[str, Any]:
    """GX's result of ``suite`` on ``df`` (``runner._validate``), from the worker when one
    runs and the frame is small enough to copy to it (``MAX_FRAME_BYTES``), else computed
    here. ``in_halves``: the worker validates half of a suite of many expectations while this
    process validates the other half, when GX is loaded here and free (``_halves``). A worker
    that died is forgotten and the suite validated here: a check never fails because of the
    worker."""
    global _worker
    # the worker when it is free; busy with another suite while GX is loaded here too: this
    # one is validated here meanwhile (two_at_once)
    if (
        _worker is not None
        and _small_enough(df)
        and _lock.acquire(blocking="great_expectations" not in sys.modules)
    ):
        try:
            worker = _worker
            if worker is not None:
                try:
                    halves = _halves(suite) if in_halves else None
                    # both halves at once: only when GX is loaded here and free
                    if halves is not None and _local.acquire(blocking=False):
                        merged = _validate_in_halves(worker, df, suite, halves, personal)
                        if merged is not None:
                            return merged
                    else:
                        return worker.ask(("validate", df, suite, personal))
                except WorkerGone:
                    _worker = None
                    worker.conn.close()
        finally:
            _lock.release()
    with _local:
        return _validate_here(df, suite, personal)


def _halves(suite: dict) -> tuple[dict, dict] | None:
    """The suite as two suites, its expectations taken in turn (a suite lists the cheap
    column checks first, then the row checks: each half gets some of both); None when it is
    too small to gain from it, its expectations have no ids to put the results back in order
    by, or GX is not loaded in this process."""
    from dagster_project.quality.suites import expectation_ids

    expectations = suite.get("expectations") or []
    if (
        len(expectations) < SPLIT_MIN_EXPECTATIONS
        or expectation_ids(suite) is None
        or "great_expectations" not in sys.modules
    ):
        return None
    return (
        {**suite, "expectations": expectations[0::2]},
        {**suite, "expectations": expectations[1::2]},
    )


def _validate_in_halves(
    worker: _Worker, df, suite: dict, halves: tuple[dict, dict], personal: bool
) -> dict[str, Any] | None:
    """The first half validated by the worker while this process validates the second (called
    holding ``_local``, released as soon as this process's half is done: another suite may
    be validated here while the worker ends its half); the worker's answer is always read, so
    that the next request gets its own."""
    try:
        worker.send(("validate", df, halves[0], personal))
    except BaseException:  # nothing sent (a frame that does not pickle, the worker gone)
        _local.release()
        raise
    try:
        second = _validate_here(df, halves[1], personal)
    except BaseException:
        _local.release()
        worker.receive()
        raise
    _local.release()
    first = worker.receive()
    return merge_results(suite, first, second)


def _gx_order(expectations: list[dict]) -> list[str]:
    """The ids of the expectations in the order GX validates them and lists their results:
    grouped by column, in the order each column first appears, those without one together
    (``Validator.process_expectations_for_validation``)."""
    groups: dict[str, list[str]] = {}
    for expectation in expectations:
        column = (expectation.get("kwargs") or {}).get("column")
        key = column if isinstance(column, str) else "_nocolumn"
        groups.setdefault(key, []).append(expectation["id"])
    return [id_ for group in groups.values() for id_ in group]


def _raised(info: dict) -> bool:
    """Whether GX's ``exception_info`` of a result says it raised: one exception, or one per
    metric GX could not compute (by metric id)."""
    if "raised_exception" in info:
        return bool(info["raised_exception"])
    return bool(info)


def merge_results(suite: dict, first: dict, second: dict) -> dict[str, Any] | None:
    """GX's result of ``suite`` from those of its two halves (``_halves``): the results in
    GX's order for the whole suite (``_gx_order``), the statistics and success computed as GX
    computes them (``great_expectations.validator.validation_statistics``), the rest (suite
    name and parameters, batch) GX's of the first half. None when that cannot be the whole
    suite's result (the suite is then validated whole): a half's results do not match its
    expectations one for one, or an expectation raised (GX then lists those results first)."""
    order = {id_: i for i, id_ in enumerate(_gx_order(suite.get("expectations") or []))}
    results = [*(first.get("results") or []), *(second.get("results") or [])]
    found = [(item.get("expectation_config") or {}).get("id") for item in results]
    if sorted(found, key=str) != sorted(order, key=str) or any(
        _raised(item.get("exception_info") or {}) for item in results
    ):
        return None
    results.sort(key=lambda item: order[item["expectation_config"]["id"]])
    count = len(results)
    successful = sum(1 for item in results if item.get("success"))
    merged = dict(first)  # GX's key order
    merged["success"] = successful == count
    merged["results"] = results
    merged["statistics"] = {
        "evaluated_expectations": count,
        "successful_expectations": successful,
        "unsuccessful_expectations": count - successful,
        "success_percent": successful / count * 100 if count else None,
    }
    return merged


def start_job(target: str, *args) -> int | None:
    """Run ``target`` (« module:function ») with ``args`` in a thread of a worker that is a copy
    of this process (``fork_worker``: its modules loaded, ready at once), on the other core and
    under the other process's interpreter lock; its result is ``job_result``'s. None when no
    such worker runs (the caller does the work itself): a worker started with ``start`` loads
    GX before it reads a request."""
    global _job_ids
    with _lock:
        worker = _worker
        if worker is None or not isinstance(worker.process, _Forked):
            return None
        _job_ids += 1
        try:
            worker.ask(("job", _job_ids, target, args))
        except WorkerGone:
            return None
        _pending.add(_job_ids)
        return _job_ids


def job_result(job: int) -> Any:
    """The result of ``start_job``'s job, once it ended (its exception raised here), also after
    the worker was stopped (``stop`` collects them first); None when the worker is gone."""
    with _lock:
        if job in _finished:
            status, value = _finished.pop(job)
        elif job in _pending and _worker is not None:
            _pending.discard(job)
            try:
                return _worker.ask(("join", job))
            except WorkerGone:
                return None
        else:
            return None
    if status == "error":
        raise value
    return value


class _Jobs:
    """The worker's side of ``start_job``: each job in a thread of its own."""

    def __init__(self) -> None:
        self.threads: dict[int, threading.Thread] = {}
        self.results: dict[int, tuple[str, Any]] = {}

    def start(self, job: int, target: str, args: tuple) -> None:
        import importlib

        module, _, name = target.partition(":")
        function = getattr(importlib.import_module(module), name)

        def run() -> None:
            try:
                self.results[job] = ("ok", function(*args))
            except Exception as exc:
                self.results[job] = ("error", exc)

        thread = threading.Thread(target=run, name=f"kpi-job-{job}", daemon=True)
        self.threads[job] = thread
        thread.start()

    def join(self, job: int) -> Any:
        self.threads.pop(job).join()
        status, value = self.results.pop(job)
        if status == "error":
            raise value
        return value


def _serve(fd: int) -> None:
    """The worker's loop: load GX, then answer requests until told to stop or end of file."""
    import signal

    # Ctrl-C reaches the whole process group: the run stops, and the worker with it when its
    # socket closes (no traceback of its own on the person's terminal)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    conn = Connection(fd)
    from dagster_project.quality.runner import _batch_definition

    _batch_definition()
    jobs = _Jobs()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request[0] == "stop":
            return
        try:
            if request[0] == "job":
                answer = ("ok", jobs.start(*request[1:]))
            elif request[0] == "join":
                answer = ("ok", jobs.join(request[1]))
            else:
                answer = ("ok", _validate_here(*request[1:]))
        except Exception as exc:  # sent back, raised in the run as if validated there
            answer = ("error", exc)
        try:
            conn.send(answer)
        except Exception as exc:  # an exception that does not pickle
            conn.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
