"""Who may open the build database, and when (dagster_project/warehouse/access.py).

Real processes hold the locks: each child is ``sys.executable -c CHILD`` importing
``dagster_project.warehouse.access``, told what to do by a JSON spec, reporting what happens
as JSON lines on stdout (``in``, ``closing``, ``out``, ``notice``, ``busy``…) and released by a
line on its stdin. Children that check the protocol itself open DuckDB directly once they hold
the access (``role="access"``/``"loop"``), so a broken protocol shows up as DuckDB's « Could
not set lock » instead of being retried by ``connect``.

Timings are bounds, never exact: the machine is shared. Every child is killed at the end of
its test (the ``spawn`` fixture), whatever happened.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from dagster_project.warehouse import access

ROOT = Path(__file__).resolve().parents[3]
DAGSTER = "l'exécution Dagster 1a2b3c4d (raw/eau_udi)"
# the end of WarehouseBusy's message (seconds rounded: a loaded machine may overshoot)
GAVE_UP = r" ; {who} a attendu \d+ s sans obtenir l'accès ; réessayez plus tard\.$"
SETTINGS_VARS = (
    "KPI_SOURCES",
    "KPI_WAREHOUSE",
    "KPI_BUILD_WAREHOUSE",
    "KPI_RELEASES",
    "KPI_DBT_TARGET",
    "KPI_TODAY",
)

CHILD = r"""
import json, os, sys, time
from pathlib import Path

import duckdb
from dagster_project.warehouse import access as A

spec = json.loads(sys.argv[1])
build = Path(spec["build"])
purpose = spec.get("purpose", "un processus de test")
wait = spec.get("wait", 30.0)
if "yield_seconds" in spec:
    A.YIELD_SECONDS = spec["yield_seconds"]


def log(event, **fields):
    line = json.dumps({"event": event, "t": time.time(), **fields}, ensure_ascii=False)
    print(line, flush=True)


def notify(message):
    A.to_stderr(message)
    log("notice", message=message)


options = {} if spec.get("default_notify") else {"notify": notify}


def hold():
    if spec.get("hold") is None:
        sys.stdin.readline()  # until the test releases us (or kills us)
    else:
        time.sleep(spec["hold"])


def run_sql(con, statements):
    return [[list(row) for row in con.execute(sql).fetchall()] for sql in statements]


role = spec["role"]
try:
    if role == "connect":  # what a step or a command does: access.connect
        started = time.monotonic()
        con = A.connect(
            build, read_only=spec.get("read_only", False), purpose=purpose, wait=wait, **options
        )
        waited = time.monotonic() - started
        log("in", waited=waited, rows=run_sql(con, spec.get("sql", [])))
        hold()
        log("closing")
        con.close()
        log("out")
    elif role == "access":  # the locks, then DuckDB's own connect: a lock error surfaces
        mode = spec["mode"]
        with A.access(build, mode, purpose, wait=wait, **options) as waited:
            con = None
            if spec.get("duckdb", True):
                con = duckdb.connect(str(build), read_only=mode == "read")
            rows = run_sql(con, spec.get("sql", [])) if con else []
            log("in", waited=waited, rows=rows)
            hold()
            log("closing")
            if con is not None:
                con.close()
        log("out")
    elif role == "session":
        with A.session(build, purpose, wait=wait, **options) as waited:
            log("in", waited=waited)
            hold()
            log("closing")
        log("out")
    elif role == "loop":  # back to back, as a run's steps or an analyst's queries
        mode = spec["mode"]
        deadline = time.monotonic() + spec.get("max_seconds", 20.0)
        n = 0
        while not os.path.exists(spec["stop"]) and time.monotonic() < deadline:
            with A.access(build, mode, purpose, wait=wait, **options) as waited:
                con = duckdb.connect(str(build), read_only=mode == "read")
                try:
                    log("in", n=n, waited=waited, rows=run_sql(con, spec.get("sql", [])))
                    time.sleep(spec["hold"])
                    log("closing", n=n)
                finally:
                    con.close()
            n += 1
        log("done", n=n)
    else:
        raise ValueError(role)
except A.WarehouseBusy as exc:
    log("busy", message=str(exc))
    sys.exit(3)
"""


class Child:
    """One process running CHILD with ``spec``; its events and stderr collected as they come."""

    def __init__(self, spec: dict):
        env = {k: v for k, v in os.environ.items() if k != "KPI_LOCK_WAIT"}
        self.spec = spec
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(spec)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.events: list[dict] = []
        self.stderr_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._read_events, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_events(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.events.append({"event": "text", "text": line})

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr_lines.append(line)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)

    def all(self, name: str) -> list[dict]:
        return [e for e in list(self.events) if e["event"] == name]

    def has(self, name: str) -> bool:
        return bool(self.all(name))

    def event(self, name: str, timeout: float = 20.0, where=lambda e: True) -> dict:
        """The first ``name`` event matching ``where``, waiting for it at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.all(name) if where(e)]
            if found:
                return found[0]
            if self.proc.poll() is not None:
                self._threads[0].join(5)
                found = [e for e in self.all(name) if where(e)]
                if found:
                    return found[0]
                self._threads[1].join(5)
                raise AssertionError(
                    f"child {self.spec} exited ({self.proc.returncode}) without « {name} »; "
                    f"events {self.events}; stderr:\n{self.stderr}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no « {name} » from child {self.spec} within {timeout} s; "
                    f"events {self.events}; stderr:\n{self.stderr}"
                )
            time.sleep(0.02)

    def release(self) -> None:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 20.0) -> int:
        """Wait for the child to end by itself; its exit code."""
        code = self.proc.wait(timeout)
        for thread in self._threads:
            thread.join(5)
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for thread in self._threads:  # at the end of the child's output
            thread.join(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.close()


@pytest.fixture
def spawn():
    """``spawn(role=..., build=..., ...)``: a child process, killed at the end of the test."""
    children: list[Child] = []

    def start(**spec) -> Child:
        spec = {k: str(v) if isinstance(v, Path) else v for k, v in spec.items()}
        child = Child(spec)
        children.append(child)
        return child

    try:
        yield start
    finally:
        for child in children:
            child.stop()


@pytest.fixture
def build(tmp_path) -> Path:
    """A small build database: ``.build/warehouse.duckdb`` with an empty table ``t``."""
    path = tmp_path / ".build" / "warehouse.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    con.execute("create table t (v integer)")
    con.close()
    return path


def gate_of(build: Path) -> Path:
    return build.with_name(build.name + ".gate")


def wait_until(predicate, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.02)


@contextlib.contextmanager
def killed_after(seconds: float, *children: Child):
    """Should a bounded wait in this process never end, kill the children it waits for: the
    test then fails (« DID NOT RAISE ») instead of hanging."""
    timer = threading.Timer(seconds, lambda: [child.proc.kill() for child in children])
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def no_lock_error(*children: Child) -> None:
    for child in children:
        assert "Could not set lock" not in child.stderr, child.stderr
        assert "Traceback" not in child.stderr, child.stderr


# --- 1. a reader waits for the writer, saying who it is ----------------------------------------


def test_reader_waits_for_the_writer_then_gets_its_answer(spawn, build):
    writer = spawn(role="connect", build=build, purpose=DAGSTER, sql=["insert into t values (42)"])
    writer.event("in")
    reader = spawn(
        role="connect",
        build=build,
        read_only=True,
        purpose="la commande « kpi status »",
        wait=30,
        default_notify=True,  # access.to_stderr: what a colleague sees
        sql=["select sum(v) from t"],
        hold=0,
    )
    wait_until(lambda: "entrepôt occupé par" in reader.stderr, what="the reader's notice")
    time.sleep(0.4)
    assert not reader.has("in"), "a reader got in while a writer held the database"
    assert reader.proc.poll() is None, reader.stderr  # it waits, it does not fail

    notice = reader.stderr
    assert f"entrepôt occupé par {DAGSTER} (processus {writer.pid}, depuis " in notice
    assert "la commande « kpi status » attend son tour, nouvelle tentative…" in notice

    writer.release()
    closing = writer.event("closing")
    answer = reader.event("in")
    assert answer["rows"] == [[[42]]]
    assert answer["t"] >= closing["t"]
    assert answer["waited"] >= 0.4
    assert writer.finish() == 0
    assert reader.finish() == 0
    no_lock_error(writer, reader)


# --- 2. a writer waits for the readers inside; new readers wait for it -----------------------


def test_writer_waits_for_readers_inside_and_keeps_new_readers_out(spawn, build):
    inside = [
        spawn(role="access", mode="read", build=build, purpose=f"lecteur {i}", sql=["from t"])
        for i in (1, 2)
    ]
    for reader in inside:
        reader.event("in")
    writer = spawn(
        role="access",
        mode="write",
        build=build,
        purpose="kpi freeze",
        sql=["insert into t values (7)"],
        hold=0.3,
    )
    # the writer holds the gate (its name is in it) and waits for the readers on `.use`
    wait_until(
        lambda: (access.holder(gate_of(build)) or {}).get("pid") == writer.pid,
        what="the writer holding the gate",
    )
    late = spawn(
        role="access",
        mode="read",
        build=build,
        purpose="lecteur tardif",
        sql=["select sum(v) from t"],
        hold=0,
    )
    notice = late.event("notice")
    assert f"entrepôt occupé par kpi freeze (processus {writer.pid}" in notice["message"]
    time.sleep(0.5)
    assert not writer.has("in"), "the writer got in while readers were inside"
    assert not late.has("in"), "a new reader got in while a writer was waiting"

    for reader in inside:
        reader.release()
    entered = writer.event("in")
    assert entered["waited"] >= 0.4
    assert late.event("in")["rows"] == [[[7]]]  # after the writer, never before
    for child in (*inside, writer, late):
        assert child.finish() == 0, child.stderr
    no_lock_error(*inside, writer, late)


# --- 3. bounded waits: WarehouseBusy, in French, naming the holder; `kpi` exits with 3 -------


@pytest.mark.parametrize("read_only", [True, False], ids=["reader", "writer"])
def test_bounded_wait_raises_warehouse_busy_naming_the_holder(spawn, build, read_only):
    holder = spawn(role="connect", build=build, purpose=DAGSTER, sql=["insert into t values (1)"])
    holder.event("in")
    notices: list[str] = []
    started = time.monotonic()
    with killed_after(15, holder), pytest.raises(access.WarehouseBusy) as caught:
        access.connect(
            build, read_only=read_only, purpose="kpi status", wait=1.6, notify=notices.append
        )
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 7.0
    message = str(caught.value)
    assert message.startswith(f"entrepôt occupé par {DAGSTER} (processus {holder.pid}, depuis ")
    assert re.search(GAVE_UP.format(who="kpi status"), message), message
    assert notices and notices[0].startswith(f"entrepôt occupé par {DAGSTER} (processus ")
    assert access.holds(build) is None

    # the failed attempt left nothing locked: once the holder is gone, we get in at once
    holder.release()
    assert holder.finish() == 0
    started = time.monotonic()
    con = access.connect(build, read_only=read_only, purpose="kpi status", wait=10)
    try:
        assert con.execute("select sum(v) from t").fetchone()[0] == 1
    finally:
        con.close()
    assert time.monotonic() - started < 3.0


def test_kpi_lock_wait_bounds_the_wait(spawn, build, monkeypatch):
    holder = spawn(role="access", mode="write", build=build, purpose=DAGSTER, duckdb=False)
    holder.event("in")
    monkeypatch.setenv("KPI_LOCK_WAIT", "0.5")
    assert access.wait_seconds() == 0.5
    started = time.monotonic()
    with (
        killed_after(15, holder),
        pytest.raises(access.WarehouseBusy, match="sans obtenir l'accès"),
        access.access(build, "read", "kpi status", notify=lambda message: None),
    ):
        pass
    assert 0.4 <= time.monotonic() - started < 5.0


def test_kpi_command_exits_3_when_the_build_database_stays_busy(
    spawn, tmp_path, monkeypatch, capsys
):
    from dagster_project.cli import main
    from dagster_project.cli.common import EXIT_BLOCKED
    from dagster_project.settings import Settings

    for name in SETTINGS_VARS:  # `settings_from` exports them: restored after the test
        monkeypatch.setenv(name, "-")
        monkeypatch.delenv(name)
    monkeypatch.setenv("KPI_LOCK_WAIT", "1")
    warehouse = tmp_path.resolve() / "warehouse.duckdb"
    build = Settings(tmp_path, warehouse, tmp_path / "releases").build_warehouse
    assert build == tmp_path.resolve() / ".build" / "warehouse.duckdb"
    build.parent.mkdir()
    holder = spawn(role="connect", build=build, purpose=DAGSTER, sql=["create table t (v int)"])
    holder.event("in")

    started = time.monotonic()
    argv = ["review", "list", "--year", "2025", "--warehouse", str(warehouse)]
    with killed_after(15, holder):
        code = contextvars.copy_context().run(main, argv)
    elapsed = time.monotonic() - started

    err = capsys.readouterr().err
    assert code == EXIT_BLOCKED == 3, err
    assert f"kpi review : entrepôt occupé par {DAGSTER} (processus {holder.pid}" in err
    assert re.search(GAVE_UP.format(who="la commande « kpi review list »"), err, re.M), err
    assert "Traceback" not in err
    assert 0.9 <= elapsed < 10.0


# --- 4. writer preference, and no reader starvation -------------------------------------------


def test_a_stream_of_readers_cannot_keep_a_writer_out(spawn, build, tmp_path):
    stop = tmp_path / "stop"
    readers = [
        spawn(
            role="loop",
            mode="read",
            build=build,
            purpose=f"lecteur {i}",
            sql=["select count(*) from t"],
            hold=0.3,
            stop=stop,
        )
        for i in range(3)
    ]
    try:
        for reader in readers:  # all of them reading, over and over, overlapping
            reader.event("in", where=lambda e: e["n"] >= 1)
        writer = spawn(
            role="access",
            mode="write",
            build=build,
            purpose="kpi freeze",
            sql=["insert into t values (1)"],
            hold=0.5,
            wait=access.YIELD_SECONDS + 5.0,
        )
        entered = writer.event("in", timeout=30)
        assert entered["waited"] < access.YIELD_SECONDS + 0.3 + 3.0
        out = writer.event("out")
        # the readers carry on after the writer, and see what it wrote
        for reader in readers:
            seen = reader.event("in", where=lambda e, t=out["t"]: e["t"] > t)
            assert seen["rows"] == [[[1]]]
    finally:
        stop.touch()
    assert writer.finish() == 0, writer.stderr
    for reader in readers:
        assert reader.finish() == 0, reader.stderr
        assert reader.has("done")
    no_lock_error(writer, *readers)


def test_a_waiting_reader_gets_in_between_back_to_back_writes(spawn, build, tmp_path):
    stop = tmp_path / "stop"
    writer = spawn(
        role="loop",
        mode="write",
        build=build,
        purpose=DAGSTER,
        sql=["insert into t values (1)"],
        hold=0.3,
        stop=stop,
        max_seconds=25.0,
    )
    try:
        writer.event("in", where=lambda e: e["n"] >= 2)  # writing step after step
        reader = spawn(
            role="connect",
            build=build,
            read_only=True,
            purpose="la commande « kpi status »",
            wait=10.0,
            sql=["select count(*) from t"],
            hold=0,
        )
        entered = reader.event("in", timeout=30)
        assert entered["waited"] < 4.0
        # the writer was still writing step after step, and carries on after the reader
        writer.event("in", where=lambda e: e["t"] > entered["t"])
        assert len(writer.all("in")) >= 4
    finally:
        stop.touch()
    assert reader.finish() == 0, reader.stderr
    assert writer.finish() == 0, writer.stderr
    # a writer yields to waiting readers for at most YIELD_SECONDS
    assert max(e["waited"] for e in writer.all("in")) < access.YIELD_SECONDS + 2.0
    no_lock_error(writer, reader)


def test_a_writer_yields_to_waiting_readers_for_a_bounded_time(spawn, build, monkeypatch):
    holder = spawn(role="access", mode="write", build=build, purpose=DAGSTER, duckdb=False)
    holder.event("in")
    reader = spawn(role="access", mode="read", build=build, purpose="kpi status", duckdb=False)
    reader.event("notice")  # it waits, holding `.waiting`, and cannot get in
    monkeypatch.setattr(access, "YIELD_SECONDS", 1.0)
    started = time.monotonic()
    with (
        killed_after(15, holder, reader),
        pytest.raises(access.WarehouseBusy, match=f"processus {holder.pid}"),
        access.access(build, "write", "kpi freeze", wait=0.3, notify=lambda message: None),
    ):
        pass
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.0 + 0.3 + 4.0
    assert reader.proc.poll() is None and not reader.has("in")


# --- 5. re-entrancy within a thread; threads exclude each other --------------------------------


def test_locks_are_reentrant_within_a_thread(spawn, build):
    with access.access(build, "write", "l'étape", wait=5) as waited:
        assert waited < 5
        assert access.holds(build) == "write"
        with access.access(build, "write", "l'étape", wait=0) as nested:
            assert nested == 0.0
        with access.access(build, "read", "l'étape", wait=0):
            assert access.holds(build) == "write"
        con = access.connect(build, purpose="l'étape", wait=0)
        other = access.connect(build, read_only=True, purpose="l'étape", wait=0)
        con.execute("insert into t values (3)")
        assert other.execute("select sum(v) from t").fetchone()[0] == 3
        other.close()
        con.close()
        assert access.holds(build) == "write"
        # closing the nested connections released nothing: another process still waits
        outsider = spawn(
            role="access", mode="read", build=build, purpose="kpi status", wait=0.5, hold=0
        )
        busy = outsider.event("busy")
        assert "entrepôt occupé par l'étape (processus " in busy["message"]
        assert outsider.finish() == 3
    assert access.holds(build) is None

    with access.access(build, "read", "la lecture", wait=5):
        with (
            pytest.raises(RuntimeError, match="écriture"),
            access.access(build, "write", "la lecture", wait=0),
        ):
            pass
        assert access.holds(build) == "read"
        with access.access(build, "read", "la lecture", wait=0) as nested:
            assert nested == 0.0
        assert access.holds(build) == "read"
    assert access.holds(build) is None
    # everything released: a writer process gets in at once
    writer = spawn(role="access", mode="write", build=build, purpose="kpi freeze", wait=2, hold=0)
    assert writer.event("in")["waited"] < 2
    assert writer.finish() == 0


def test_two_threads_exclude_each_other(build):
    entered, release = threading.Event(), threading.Event()

    def first_thread():
        with access.access(build, "write", "le fil 1", wait=5):
            entered.set()
            release.wait(20)

    thread = threading.Thread(target=first_thread)
    thread.start()
    try:
        assert entered.wait(10)
        assert access.holds(build) is None  # this thread holds nothing
        for mode in ("read", "write"):
            notices: list[str] = []
            with (
                pytest.raises(access.WarehouseBusy, match="occupé par le fil 1 "),
                access.access(build, mode, "le fil 2", wait=1.3, notify=notices.append),
            ):
                pass
            assert notices and "le fil 2 attend son tour" in notices[0]
        timer = threading.Timer(0.5, release.set)
        timer.start()
        with access.access(build, "write", "le fil 2", wait=10, notify=lambda m: None) as waited:
            assert waited >= 0.3
            assert release.is_set()
        timer.join()
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive()


# --- 6. a killed writer leaves nothing behind ---------------------------------------------------


def test_a_writer_killed_while_holding_the_access_releases_it(spawn, build):
    writer = spawn(role="connect", build=build, purpose=DAGSTER, sql=["insert into t values (5)"])
    writer.event("in")
    waiting = spawn(
        role="connect", build=build, read_only=True, purpose="kpi status", sql=["from t"], hold=0
    )
    waiting.event("notice")
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.proc.wait(10) == -signal.SIGKILL

    started = time.monotonic()
    con = access.connect(build, purpose="kpi run", wait=10, notify=lambda m: None)
    try:
        assert time.monotonic() - started < 3.0
        assert con.execute("select sum(v) from t").fetchone()[0] == 5  # committed before
        con.execute("insert into t values (6)")
    finally:
        con.close()
    # the reader that was waiting got in too, before or after that writer
    assert waiting.event("in")["rows"][0] in ([[5]], [[5], [6]])
    assert waiting.finish() == 0, waiting.stderr


# --- 7. one `kpi run` / `kpi freeze` session at a time -----------------------------------------


def test_a_second_session_waits_then_gives_up_naming_the_first(spawn, build):
    first = spawn(role="session", build=build, purpose="kpi run")
    first.event("in")
    notices: list[str] = []
    started = time.monotonic()
    with (
        killed_after(15, first),
        pytest.raises(access.WarehouseBusy) as caught,
        access.session(build, "kpi freeze", wait=1.6, notify=notices.append),
    ):
        pass
    assert 1.5 <= time.monotonic() - started < 7.0
    message = str(caught.value)
    assert message.startswith(f"entrepôt occupé par kpi run (processus {first.pid}, depuis ")
    assert re.search(GAVE_UP.format(who="kpi freeze"), message), message
    assert notices and notices[0].endswith("kpi freeze attend son tour, nouvelle tentative…")

    # a session is not the database: steps and readers still get in meanwhile
    with access.access(build, "write", DAGSTER, wait=2):
        pass
    # once the first session ends, the second one gets in after waiting for it
    timer = threading.Timer(0.4, first.release)
    timer.start()
    try:
        with access.session(build, "kpi freeze", wait=10, notify=lambda m: None) as waited:
            assert waited >= 0.3
            assert first.event("out")
    finally:
        timer.join()
    assert first.finish() == 0


# --- a writer waiting for the readers inside names them, not itself ----------------------------


def test_a_writer_waiting_for_readers_does_not_name_itself(spawn, build):
    reader = spawn(role="access", mode="read", build=build, purpose="kpi status", sql=["from t"])
    reader.event("in")
    notices: list[str] = []
    with killed_after(15, reader), pytest.raises(access.WarehouseBusy) as caught:
        access.connect(build, purpose="kpi freeze", wait=1.8, notify=notices.append)
    assert notices, "the writer waited without saying so"
    itself = f"kpi freeze (processus {os.getpid()}"
    assert itself not in notices[0], notices[0]
    assert itself not in str(caught.value), str(caught.value)
    assert "entrepôt occupé par des lectures en cours" in str(caught.value)
    assert access.holder(build.with_name(build.name + ".gate")) is None  # no stale record


# --- 7. a run's steps keep the file open from one to the next -----------------------------------


def wal_of(build: Path) -> Path:
    return build.with_name(build.name + ".wal")


def step(build: Path, value: int, purpose: str = DAGSTER) -> None:
    """What a run's step does: a write connection, one insert, closed."""
    con = access.connect(build, purpose=purpose, wait=10, notify=lambda message: None)
    con.execute("insert into t values (?)", [value])
    con.close()


def test_steps_keep_the_file_open_until_the_run_ends(spawn, build):
    step(build, 1)
    assert not wal_of(build).exists()  # closed: DuckDB wrote its checkpoint
    with access.kept_between_steps(build):
        step(build, 2)
        # closed by the step, still open for the next: nothing written back yet, and the gate
        # still names the run's last step for whoever comes
        assert wal_of(build).exists()
        assert access.holder(gate_of(build))["what"] == DAGSTER
        assert access.holds(build) is None  # no thread holds it: parked
        step(build, 3, purpose="l'exécution Dagster 1a2b3c4d (dbt)")
        assert access.holder(gate_of(build))["what"] == "l'exécution Dagster 1a2b3c4d (dbt)"
        # the dbt step's way: the access alone, dbt opening the file itself
        with access.access(build, "write", "l'exécution Dagster 1a2b3c4d (dbt)", wait=0):
            con = duckdb.connect(str(build))
            con.execute("insert into t values (4)")
            con.close()
        assert wal_of(build).exists()
    # the run's end closes the file and releases the access: another process gets in at once
    assert not wal_of(build).exists()
    assert access.holder(gate_of(build)) is None
    reader = spawn(
        role="access", mode="read", build=build, purpose="kpi status", sql=["select sum(v) from t"]
    )
    entered = reader.event("in")
    assert entered["waited"] < 2.0
    assert entered["rows"] == [[[10]]]
    reader.release()
    assert reader.finish() == 0
    no_lock_error(reader)


def _waiting_reader(spawn, build: Path):
    """A colleague's read command (``kpi status``), started and waiting for the gate."""
    reader = spawn(
        role="access",
        mode="read",
        build=build,
        purpose="kpi status",
        sql=["select sum(v) from t"],
        hold=0,
    )
    wait_until(lambda: access._readers_waiting(build), what="the reader waiting")
    return reader


def test_a_reader_waiting_between_two_steps_goes_before_the_next(spawn, build):
    with access.kept_between_steps(build):
        step(build, 1)
        # a colleague's read command arrives between two steps: it waits for the gate
        reader = _waiting_reader(spawn, build)
        step(build, 2)  # the next step lets it in first, then waits for it to leave
        entered = reader.event("in")
        assert entered["rows"] == [[[1]]]  # read before the next step's insert
        assert reader.finish() == 0
        step(build, 3)
    no_lock_error(reader)
    con = duckdb.connect(str(build), read_only=True)
    assert con.execute("select sum(v) from t").fetchone()[0] == 6
    con.close()


def test_a_reader_waiting_after_the_last_step_gets_in_when_the_run_ends(spawn, build):
    with access.kept_between_steps(build):
        step(build, 1)
        reader = spawn(
            role="access", mode="read", build=build, purpose="kpi status", hold=0, wait=30
        )
        wait_until(lambda: access._readers_waiting(build), what="the reader waiting")
        assert not reader.has("in")
    assert reader.event("in")["waited"] < 20
    assert reader.finish() == 0
    no_lock_error(reader)


def test_a_read_in_the_same_process_closes_the_kept_file(build):
    with access.kept_between_steps(build):
        step(build, 1)
        # the run's own read (the summary) and another thread's, while parked: both get in
        con = access.connect(build, read_only=True, purpose="kpi run", wait=2)
        assert con.execute("select sum(v) from t").fetchone()[0] == 1
        con.close()
        assert not wal_of(build).exists()
        step(build, 2)
        answers: list[int] = []

        def other_thread() -> None:
            with access.connect(build, read_only=True, purpose="le fil 2", wait=5) as other:
                answers.append(other.execute("select sum(v) from t").fetchone()[0])

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join(10)
        assert answers == [3]
        step(build, 3)
    assert not wal_of(build).exists()


def test_a_step_that_fails_leaves_nothing_kept(spawn, build):
    with pytest.raises(ZeroDivisionError), access.kept_between_steps(build):
        step(build, 1)
        with access.connect(build, purpose=DAGSTER, wait=2) as con:
            con.execute("insert into t values (2)")
            raise ZeroDivisionError
    assert not wal_of(build).exists()
    writer = spawn(role="access", mode="write", build=build, purpose="kpi freeze", wait=2, hold=0)
    assert writer.event("in")["waited"] < 2
    assert writer.finish() == 0
    no_lock_error(writer)


def test_a_write_from_another_thread_does_not_wait_for_the_run_to_end(build):
    with access.kept_between_steps(build):
        con = access.connect(build, purpose=DAGSTER, wait=5)  # a step of this thread, writing
        done: list[float] = []

        def other_thread() -> None:
            started = time.monotonic()
            step(build, 10, purpose="le fil 2")  # waits for the step, then gets in
            done.append(time.monotonic() - started)

        thread = threading.Thread(target=other_thread)
        thread.start()
        time.sleep(0.3)
        con.execute("insert into t values (1)")
        con.close()  # parked: the other thread, waiting, takes it instead of waiting it out
        thread.join(15)
        assert done and done[0] < 5
        step(build, 2)
    con = duckdb.connect(str(build), read_only=True)
    assert con.execute("select sum(v) from t").fetchone()[0] == 13
    con.close()


def test_the_publication_reads_the_file_the_run_left_open(build):
    """``reading_kept_file``: after the last step, a connection to the same open file, under
    the run's write access (named for the publication), parked again after; the run's end
    then closes the file."""
    assert _read_kept(build) is None  # no run keeping it: the caller opens the file itself
    with access.kept_between_steps(build):
        assert _read_kept(build) is None  # nothing parked yet
        step(build, 1)
        assert wal_of(build).exists()
        seen = []
        with access.reading_kept_file(build, "la publication") as con:
            assert access.holds(build) == "write"
            assert access.holder(gate_of(build))["what"] == "la publication"
            seen.append(con.execute("select sum(v) from t").fetchone()[0])
            con.execute("checkpoint")  # what the publication's thread does meanwhile
        assert seen == [1]
        assert access.holds(build) is None  # parked again, the file still open
        step(build, 2)
    assert not wal_of(build).exists()
    assert access.holder(gate_of(build)) is None


def test_a_reader_waiting_before_the_publication_goes_first(spawn, build):
    with access.kept_between_steps(build):
        step(build, 1)
        reader = _waiting_reader(spawn, build)
        # the file closed and the access released for it: the publication opens it itself
        assert _read_kept(build) is None
        assert reader.event("in")["rows"] == [[[1]]]
        assert reader.finish() == 0
    no_lock_error(reader)


def _read_kept(build: Path):
    with access.reading_kept_file(build, "la publication") as con:
        return None if con is None else con.execute("select sum(v) from t").fetchone()[0]
