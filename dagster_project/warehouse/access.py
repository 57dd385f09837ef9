"""Who may open the build database, and when: one writer at a time, readers between writes.

DuckDB lets one process open a database file for writing, or several processes open it for
reading, never both: a process that holds the file (even read-only) when a run's step opens
it for writing makes that step fail with « Could not set lock on file ». Every process of
the project that opens the build database goes through this module, which orders them with
two advisory locks (``flock``) beside the file:

- ``<build>.gate``: a **writer** holds it exclusively for as long as it writes, and writes
  into it who it is (what, process, since when) for the others' messages. A **reader** holds
  it shared only for the instant it enters. While a writer holds or waits for the database,
  no new reader enters: writers are never starved by a stream of readers.
- ``<build>.use``: a reader holds it shared while it reads; a writer takes it exclusively
  once it holds the gate, so it waits for the readers already inside (they are short) and
  for nobody else.
- ``<build>.waiting``: a reader that has to wait holds it shared until it is in. A writer
  about to take the gate first lets such readers in (at most ``YIELD_SECONDS``): a run's
  steps follow one another within milliseconds, and without this a waiting reader would
  find the gate taken again at each of its attempts until the end of the run. So a reader
  waits at most for the step that is writing, and a writer at most ``YIELD_SECONDS`` more.

A writer or reader that finds the database busy waits, with a bounded wait
(``KPI_LOCK_WAIT`` seconds, 600 by default), saying in French who holds it; when the wait
runs out it raises ``WarehouseBusy`` (the CLI prints its message and exits with code 3). A
reader therefore never makes a run fail: at worst it waits for the end of the step that is
writing. Locks are re-entrant within a process (a step that holds the write access may open
more connections, e.g. to record dbt's results), and released when the connection that took
them is closed, or when the process dies (the kernel drops ``flock`` locks).

Within one run's process (``kpi run``: its steps one after the other in the same process), the
write access and DuckDB's instance of the file may be **kept between steps**
(``kept_between_steps``): when a step closes its connection, the file stays open and the locks
stay held until the next step asks for them, unless a reader is waiting by then (it holds
``.waiting``): the access is then released as it always was, and the reader goes first. Each
step still opens and closes its own connection; what is saved is DuckDB opening the file
(its catalogue) and writing its checkpoint at every step (≈ 0.3 s of a run at one
agglomeration's scale: bench/README.md, 6 December 2026, eighth session). A reader waits
no longer than before: the steps follow one another within milliseconds, and the last one
closes the file when the run ends. ``kpi run``'s publication reads the build through the
same open file after the last step (``reading_kept_file``), while a thread checkpoints it.

The locks coordinate this project's processes (``kpi`` commands, Dagster steps, the code
location, the daemon's sensors). A foreign process holding the file (a DuckDB CLI opened on
``.build/`` by hand) is waited for the same way, on DuckDB's own lock error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

DEFAULT_WAIT_SECONDS = 600.0
NOTIFY_EVERY_SECONDS = 30.0
POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 0.25
YIELD_SECONDS = 5.0
FIRST_NOTICE_SECONDS = 1.0

Notify = Callable[[str], None]


class WarehouseBusy(RuntimeError):
    """The build database stayed busy for the whole bounded wait (message in French)."""


def wait_seconds() -> float:
    """The bounded wait (``KPI_LOCK_WAIT``, seconds)."""
    try:
        return max(0.0, float(os.environ.get("KPI_LOCK_WAIT", DEFAULT_WAIT_SECONDS)))
    except ValueError:
        return DEFAULT_WAIT_SECONDS


def to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- who holds the database -------------------------------------------------------------------


def _gate_path(build: Path) -> Path:
    return build.with_name(build.name + ".gate")


def _use_path(build: Path) -> Path:
    return build.with_name(build.name + ".use")


def _waiting_path(build: Path) -> Path:
    return build.with_name(build.name + ".waiting")


def _yield_to_waiting_readers(build: Path) -> None:
    """Before a writer takes the gate: let the readers already waiting in, for at most
    ``YIELD_SECONDS`` (they hold ``.waiting`` shared until they are in)."""
    deadline = time.monotonic() + YIELD_SECONDS
    with _open_lock(_waiting_path(build)) as waiting:
        while not _try(waiting, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                return
            time.sleep(POLL_SECONDS / 2)


def _session_path(build: Path) -> Path:
    return build.with_name(build.name + ".session")


def holder(lock: Path) -> dict | None:
    """What the last holder wrote into a lock file (``what``, ``pid``, ``since``), if any."""
    try:
        text = lock.read_text(encoding="utf-8")
        return json.loads(text) if text.strip() else None
    except (OSError, ValueError):
        return None


READERS_INSIDE = "des lectures en cours"


def busy_message(lock: Path | None, waiting_for: str) -> str:
    """« entrepôt occupé par … ; nouvelle tentative… », in words a colleague understands;
    ``lock`` None: what holds it are readers (they leave no record)."""
    who = holder(lock) if lock is not None else {"what": READERS_INSIDE}
    if who and who.get("what") == READERS_INSIDE:
        by = READERS_INSIDE
    elif who and who.get("what"):
        since = str(who.get("since", ""))[11:19]
        by = f"{who['what']} (processus {who.get('pid', '?')}" + (
            f", depuis {since})" if since else ")"
        )
    else:
        by = "une autre opération"
    return f"entrepôt occupé par {by} ; {waiting_for} attend son tour, nouvelle tentative…"


# --- the locks -------------------------------------------------------------------------------


@dataclass
class _Hold:
    mode: str  # "write" or "read"
    count: int
    handles: list


_held: dict[tuple[str, int], _Hold] = {}
_held_guard = threading.RLock()


def _key(build: Path) -> tuple[str, int]:
    """Locks are re-entrant per thread: two threads of one server (sensors evaluated side by
    side) order themselves through the file locks like two processes."""
    return (str(Path(build).absolute()), threading.get_ident())


class _Waiter:
    """Polls a non-blocking attempt until it succeeds or the deadline passes; says once (then
    every 30 s) that it waits, and why."""

    def __init__(self, lock: Path | None, purpose: str, wait: float, notify: Notify):
        self.lock, self.purpose, self.notify = lock, purpose, notify
        self.started = time.monotonic()
        self.deadline = self.started + wait
        self.next_notice = self.started + FIRST_NOTICE_SECONDS  # a short wait says nothing
        self.delay = POLL_SECONDS

    def until(self, attempt: Callable[[], bool]) -> None:
        while not attempt():
            now = time.monotonic()
            if now >= self.deadline:
                waited = now - self.started
                raise WarehouseBusy(
                    busy_message(self.lock, self.purpose).replace(
                        "attend son tour, nouvelle tentative…",
                        f"a attendu {waited:.0f} s sans obtenir l'accès ; réessayez plus tard.",
                    )
                )
            if now >= self.next_notice:
                self.notify(busy_message(self.lock, self.purpose))
                self.next_notice = now + NOTIFY_EVERY_SECONDS
            time.sleep(min(self.delay, max(0.0, self.deadline - now)))
            self.delay = min(self.delay * 1.5, MAX_POLL_SECONDS)

    @property
    def waited(self) -> float:
        return time.monotonic() - self.started


def _try(handle, operation: int) -> bool:
    try:
        fcntl.flock(handle, operation | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _write_holder(handle, purpose: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "what": purpose,
                "pid": os.getpid(),
                "since": dt.datetime.now().isoformat(timespec="seconds"),
            },
            ensure_ascii=False,
        )
    )
    handle.flush()


def _open_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a+", encoding="utf-8")


@contextlib.contextmanager
def access(
    build: Path,
    mode: str,
    purpose: str,
    *,
    wait: float | None = None,
    notify: Notify = to_stderr,
) -> Iterator[float]:
    """Hold the right to ``mode`` (``"write"`` or ``"read"``) the build database; yields the
    seconds waited for it. ``purpose`` names the holder in the others' messages (« kpi
    freeze », « l'exécution Dagster 1a2b3c4d (raw/eau_udi) »)."""
    if mode not in ("write", "read"):
        raise ValueError(mode)
    build = Path(build)
    key = _key(build)
    with _held_guard:
        hold = _held.get(key)
        if hold is not None:
            if mode == "write" and hold.mode == "read":
                raise RuntimeError(
                    "accès en écriture demandé pendant une lecture du même processus"
                )
            hold.count += 1
            reentrant = True
        else:
            reentrant = False
    if reentrant:
        try:
            yield 0.0
        finally:
            with _held_guard:
                hold.count -= 1
        return

    if mode == "write":
        adopted = _adopt_parked(build, purpose)
        if adopted is not None:
            yield from _held_while(key, build, mode, adopted)
            return
    else:
        _unpark(build)  # DuckDB refuses a read-only open beside this process's instance
    budget = wait_seconds() if wait is None else wait
    waiter = _Waiter(_gate_path(build), purpose, budget, notify)
    gate = _open_lock(_gate_path(build))
    use = None
    recorded = False
    try:
        if mode == "write":
            if budget > 0:  # wait=0: one attempt, no yield either
                _yield_to_waiting_readers(build)
            # the holder may be another thread of this process, parked since
            waiter.until(lambda: _unpark(build) or _try(gate, fcntl.LOCK_EX))
            _write_holder(gate, purpose)
            recorded = True
            use = _open_lock(_use_path(build))
            waiter.lock = None  # from here on, what it waits for are the readers inside
            waiter.until(lambda: _try(use, fcntl.LOCK_EX))
            handles = [use, gate]
        else:
            if not _try(gate, fcntl.LOCK_SH):  # a writer is in: wait, and say so to writers
                with _open_lock(_waiting_path(build)) as waiting:
                    waiter.until(lambda: _try(waiting, fcntl.LOCK_SH))
                    # the writer may be another thread of this process, parked since
                    waiter.until(lambda: _unpark(build) or _try(gate, fcntl.LOCK_SH))
            use = _open_lock(_use_path(build))
            # a writer takes `use` only while holding the gate, which we share: no wait here
            waiter.until(lambda: _try(use, fcntl.LOCK_SH))
            fcntl.flock(gate, fcntl.LOCK_UN)
            gate.close()
            handles = [use]
    except BaseException:
        if recorded:  # gave up while the readers were inside: leave no stale name
            with contextlib.suppress(OSError):
                gate.seek(0)
                gate.truncate()
        for handle in (use, gate):
            if handle is not None:
                handle.close()
        raise
    yield from _held_while(key, build, mode, handles, waiter.waited)


def _held_while(key, build: Path, mode: str, handles: list, waited: float = 0.0):
    """Hold the access (``handles``: its lock files, the gate last for a writer) while the
    caller's block runs; then park it (``kept_between_steps``) or release it."""
    with _held_guard:
        _held[key] = _Hold(mode=mode, count=1, handles=handles)
    try:
        yield waited
    finally:
        with _held_guard:
            _held.pop(key, None)
            parked = mode == "write" and _park(build, handles)
        if not parked:
            _release(handles, mode)


def _release(handles: list, mode: str) -> None:
    if mode == "write":  # nobody holds it any more: no stale name in the next message
        with contextlib.suppress(OSError):
            handles[-1].seek(0)
            handles[-1].truncate()
    for handle in handles:  # closing a descriptor drops its flock
        handle.close()


# --- kept between a run's steps ----------------------------------------------------------------


@dataclass
class _Kept:
    """A write access kept for the next step of this process's run: DuckDB's instance of the
    file (held open by ``keeper``, a connection no step uses) and, between two steps, the lock
    files (``handles``, still locked)."""

    leases: int = 0
    keeper: duckdb.DuckDBPyConnection | None = None
    handles: list | None = None  # set while parked


_kept: dict[str, _Kept] = {}  # by build path, for the whole process (every thread)


@contextlib.contextmanager
def kept_between_steps(build: Path) -> Iterator[None]:
    """Keep the write access and the open file between the steps this process runs, for as long
    as the block lasts and no reader waits (see the module's docstring). The block's end
    closes the file (DuckDB's checkpoint) and releases the access."""
    path = str(Path(build).absolute())
    with _held_guard:
        _kept.setdefault(path, _Kept()).leases += 1
    try:
        yield
    finally:
        with _held_guard:
            kept = _kept[path]
            kept.leases -= 1
            if kept.leases == 0:
                _kept.pop(path)
            else:
                kept = None
        if kept is not None:
            _close_kept(kept)


def _keep_instance(build: Path, raw: duckdb.DuckDBPyConnection) -> None:
    """Under ``kept_between_steps``: a second connection to the instance ``raw`` belongs to,
    so that the step closing ``raw`` does not close the file (opened while ``raw`` is: no
    cost, DuckDB hands out the same instance)."""
    path = str(Path(build).absolute())
    with _held_guard:
        kept = _kept.get(path)
        if kept is None or kept.keeper is not None:
            return
        kept.keeper = duckdb.connect(str(build))


def _park(build: Path, handles: list) -> bool:
    """Called with ``_held_guard``: keep the released write access for the next step."""
    kept = _kept.get(str(Path(build).absolute()))
    if kept is None or kept.keeper is None or kept.handles is not None:
        return False
    kept.handles = handles
    return True


def _readers_waiting(build: Path) -> bool:
    with _open_lock(_waiting_path(build)) as waiting:
        if _try(waiting, fcntl.LOCK_EX):
            fcntl.flock(waiting, fcntl.LOCK_UN)
            return False
        return True


def _adopt_parked(build: Path, purpose: str) -> list | None:
    """The parked write access, handed to a new holder (its name in the gate), or None: none
    parked, or a reader waits (then the access is released first, and the reader goes in)."""
    path = str(Path(build).absolute())
    with _held_guard:
        kept = _kept.get(path)
        if kept is None or kept.handles is None:
            return None
        handles, kept.handles = kept.handles, None
        if _readers_waiting(build):
            keeper, kept.keeper = kept.keeper, None
        else:
            keeper = None
    if keeper is not None:
        _close_kept(_Kept(keeper=keeper, handles=handles))
        return None
    _write_holder(handles[-1], purpose)
    return handles


@contextlib.contextmanager
def reading_kept_file(build: Path, purpose: str) -> Iterator[duckdb.DuckDBPyConnection | None]:
    """Under ``kept_between_steps``, once a step left the write access parked: a connection to
    the file DuckDB still has open, holding that write access for the block (``kpi run``'s
    publication reads the build this way after the last step: no checkpoint before it, no
    catalogue read again), then parked again. None when none is parked or a reader waits (it
    then goes in first, as between two steps): the caller opens the file itself."""
    build = Path(build)
    handles = _adopt_parked(build, purpose)
    if handles is None:
        yield None
        return
    with contextlib.contextmanager(_held_while)(_key(build), build, "write", handles):
        raw = duckdb.connect(str(build))  # the kept instance: its keeper holds it open
        try:
            yield raw
        finally:
            raw.close()


def _unpark(build: Path) -> None:
    """Release a parked write access: a read from this process is coming (DuckDB refuses it
    beside the open instance), or another of its threads waits for the gate the parked access
    still holds."""
    with _held_guard:
        kept = _kept.get(str(Path(build).absolute()))
        if kept is None or kept.handles is None:
            return
        parked = _Kept(keeper=kept.keeper, handles=kept.handles)
        kept.keeper = kept.handles = None
    _close_kept(parked)


def _close_kept(kept: _Kept) -> None:
    """Close the file (once the last connection goes, DuckDB checkpoints), then release."""
    try:
        if kept.keeper is not None:
            kept.keeper.close()
    finally:
        if kept.handles is not None:
            _release(kept.handles, "write")


@contextlib.contextmanager
def session(
    build: Path, purpose: str, *, wait: float | None = None, notify: Notify = to_stderr
) -> Iterator[float]:
    """One ``kpi`` command that writes in several steps at a time (``kpi run``, ``kpi
    freeze``): a second one waits for the first to end (bounded, French message), then
    ``WarehouseBusy``. Readers and Dagster's steps do not take it; yields the seconds waited."""
    path = _session_path(Path(build))
    waiter = _Waiter(path, purpose, wait_seconds() if wait is None else wait, notify)
    with _open_lock(path) as handle:
        waiter.until(lambda: _try(handle, fcntl.LOCK_EX))
        _write_holder(handle, purpose)
        yield waiter.waited


def holds(build: Path) -> str | None:
    """``"write"``, ``"read"`` or None: what this thread holds on the build database."""
    with _held_guard:
        hold = _held.get(_key(build))
        return hold.mode if hold else None


# --- connections -----------------------------------------------------------------------------


class WarehouseConnection:
    """A DuckDB connection to the build database that holds its access until closed.

    Everything but ``close`` and the context manager is DuckDB's own connection
    (``execute``, ``executemany``, ``sql``…); ``raw`` is that connection."""

    def __init__(self, raw: duckdb.DuckDBPyConnection, release: contextlib.ExitStack):
        self.raw = raw
        self._release = release

    def __getattr__(self, name):
        return getattr(self.raw, name)

    def close(self) -> None:
        try:
            self.raw.close()
        finally:
            self._release.close()

    def __enter__(self) -> WarehouseConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_duckdb(build: Path, read_only: bool, waiter: _Waiter) -> duckdb.DuckDBPyConnection:
    """DuckDB's own lock: a process outside this protocol may still hold the file."""
    result: dict[str, duckdb.DuckDBPyConnection] = {}

    def attempt() -> bool:
        try:
            result["con"] = duckdb.connect(str(build), read_only=read_only)
            return True
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            return False

    waiter.until(attempt)
    return result["con"]


def connect(
    build: Path,
    *,
    read_only: bool = False,
    purpose: str,
    wait: float | None = None,
    notify: Notify = to_stderr,
) -> WarehouseConnection:
    """Open the build database for writing (``read_only=False``) or reading, once its turn
    comes (see the module's docstring); close the connection to let the others in."""
    from dagster_project.warehouse.recovery import recover_after_crash

    build = Path(build)
    stack = contextlib.ExitStack()
    budget = wait_seconds() if wait is None else wait
    try:
        waited = stack.enter_context(
            access(build, "read" if read_only else "write", purpose, wait=budget, notify=notify)
        )
        if holds(build) == "write":
            recover_after_crash(build)  # a log DuckDB 1.5 cannot replay alone
        # a foreign process has no holder record: the message says « une autre opération »
        waiter = _Waiter(Path(os.devnull), purpose, max(0.0, budget - waited), notify)
        waiter.next_notice = waiter.started
        raw = _open_duckdb(build, read_only and holds(build) != "write", waiter)
        if holds(build) == "write":
            _keep_instance(build, raw)
    except BaseException:
        stack.close()
        raise
    return WarehouseConnection(raw, stack)
