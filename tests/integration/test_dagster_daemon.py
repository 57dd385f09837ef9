"""The pipeline the way Dagster runs it: `kpi ui` (webserver + daemon, the project's instance),
runs launched through the webserver's GraphQL API (the calls the UI's buttons make), the
`new_deliveries` sensor switched on and fed a corrected workbook, `publish_after_run`
publishing what the daemon's runs built; and colleagues reading, freezing and running while
`kpi run` writes.

Slow (`pytest -m slow`); each test starts from a private copy of the session's built demo
(conftest.demo_warehouse) and stops every process it started. Figures (latencies, waits) are
printed with `-s`: they are measurements, never asserted as timings.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest
from support.demo import DEMO_TODAY
from support.sensors import (
    CORRECTED_COMMUNE,
    SUBSCRIBERS_AFTER,
    SUBSCRIBERS_BEFORE,
    water_subscribers,
    write_corrected_reseau,
)
from support.servers import descendants, free_port, running
from support.settings import SETTINGS_VARS

from dagster_project.settings import PROJECT_ROOT

SERVER_TIMEOUT_SECONDS = 180
RUN_TIMEOUT_SECONDS = 900
LOCATION = "dagster_project.definitions"
REPOSITORY = "__repository__"
KPI = [sys.executable, "-c", "import sys; from dagster_project.cli import main; sys.exit(main())"]


# --- a `kpi ui` in a copy of the demo ----------------------------------------------------------


class Dagster:
    """The webserver's GraphQL API, as the UI uses it."""

    def __init__(self, base: str):
        self.base = base

    def query(self, text: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.base}/graphql",
            data=json.dumps({"query": text, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (localhost)
            payload = json.loads(response.read())
        assert "errors" not in payload, payload
        return payload["data"]

    def launch(self, job: str, assets: list[str] | None = None) -> str:
        selector = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}
        selector["jobName"] = job
        if assets is not None:
            selector["assetSelection"] = [{"path": key.split("/")} for key in assets]
        data = self.query(
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                 __typename ... on LaunchRunSuccess { run { runId } }
                 ... on PythonError { message } ... on InvalidSubsetError { message } } }""",
            {"p": {"selector": selector, "runConfigData": {}}},
        )["launchRun"]
        assert data["__typename"] == "LaunchRunSuccess", data
        return data["run"]["runId"]

    def run(self, run_id: str) -> dict:
        return self.query(
            """query($id: ID!) { runOrError(runId: $id) { ... on Run {
                 runId status jobName startTime endTime tags { key value }
                 assetMaterializations { assetKey { path } } } } }""",
            {"id": run_id},
        )["runOrError"]

    def wait(self, run_id: str, timeout: float = RUN_TIMEOUT_SECONDS) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
                return run
            time.sleep(1.0)
        pytest.fail(f"run {run_id} not finished after {timeout} s: {self.run(run_id)['status']}")

    def runs(self) -> list[dict]:
        return self.query(
            """{ runsOrError(limit: 50) { ... on Runs { results {
                 runId status jobName tags { key value } } } } }"""
        )["runsOrError"]["results"]

    def start_sensor(self, name: str) -> None:
        data = self.query(
            """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) {
                 __typename ... on Sensor { sensorState { status } }
                 ... on PythonError { message } } }""",
            {
                "s": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "sensorName": name,
                }
            },
        )["startSensor"]
        assert data["__typename"] == "Sensor", data
        assert data["sensorState"]["status"] == "RUNNING"

    def sensor_ticks(self, name: str) -> list[dict]:
        data = self.query(
            """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
                 ... on Sensor { sensorState { status ticks(limit: 20) {
                   status skipReason runIds timestamp } } } } }""",
            {
                "s": {
                    "repositoryLocationName": LOCATION,
                    "repositoryName": REPOSITORY,
                    "sensorName": name,
                }
            },
        )["sensorOrError"]
        return data["sensorState"]["ticks"]


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["tags"]}


def _materialized(run: dict) -> set[str]:
    return {"/".join(m["assetKey"]["path"]) for m in run["assetMaterializations"]}


def _publication(warehouse: Path) -> dict | None:
    if not warehouse.exists():
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        row = con.execute("select publication_id, run_id from publication.info").fetchone()
    finally:
        con.close()
    return {"publication_id": row[0], "run_id": row[1]}


def _wait_for(predicate, timeout: float, what: str, step: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    pytest.fail(f"{what}: not after {timeout} s")


def _env(demo, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    env.update(
        KPI_SOURCES=str(demo.sources),
        KPI_WAREHOUSE=str(demo.warehouse),
        KPI_RELEASES=str(demo.releases),
        KPI_TODAY=DEMO_TODAY,
        DAGSTER_HOME=str(demo.dagster_home),
        DAGSTER_DISABLE_TELEMETRY="1",
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def kpi_ui(demo, tmp_path: Path):
    """`kpi ui` on a free port, in its own process group as a terminal gives it; stopped with
    Ctrl-C at the end, and no process of it may be left."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "kpi_ui.log"
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [*KPI, "ui", "--port", str(port), "--host", "127.0.0.1"],
            env=_env(demo),
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    processes: set[int] = set()
    try:
        dagster = Dagster(base)

        def loaded():
            if server.poll() is not None:
                pytest.fail(f"kpi ui exited ({server.returncode}): {log.read_text()[-3000:]}")
            with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                data = dagster.query(
                    "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
                )
                return data["repositoriesOrError"].get("nodes")
            return None

        _wait_for(loaded, SERVER_TIMEOUT_SECONDS, "the code location loaded in kpi ui")
        processes = descendants(server.pid)
        yield dagster, log
    finally:
        processes |= descendants(server.pid)
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=90)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        deadline = time.monotonic() + 15
        while any(running(p) for p in processes) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in processes if running(p)]
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        assert not left, f"processes left after kpi ui stopped: {left}"


@pytest.fixture
def demo(tmp_path, demo_warehouse):
    assert demo_warehouse.returncode in (0, 3), demo_warehouse.stderr[-3000:]
    return demo_warehouse.copy(tmp_path / "demo")


# --- (a) runs launched from the UI, (b) the sensor, publication after each ---------------------


def test_runs_launched_through_dagster_succeed_and_are_published(demo, tmp_path):
    warehouse = demo.warehouse
    before = water_subscribers(warehouse)
    assert before[CORRECTED_COMMUNE] == SUBSCRIBERS_BEFORE
    timings: dict[str, float] = {}
    with kpi_ui(demo, tmp_path) as (dagster, log):
        # (a) the job `kpi_run`, as « Launch run » on the job's page does
        started = time.monotonic()
        run_id = dagster.launch("kpi_run")
        run = dagster.wait(run_id)
        timings["kpi_run"] = time.monotonic() - started
        assert run["status"] == "SUCCESS", log.read_text()[-5000:]
        materialized = _materialized(run)
        assert {"raw/eau_reseau", "marts/fct_indicator_values"} <= materialized
        # publish_after_run (on by default) publishes what the daemon's run built
        published = _wait_for(
            lambda: (_publication(warehouse) or {}).get("run_id") == run_id,
            120,
            "publication of the kpi_run run",
        )
        assert published
        timings["kpi_run published"] = time.monotonic() - started

        # a selection of assets (« Materialize selected »: Dagster's implicit asset job)
        started = time.monotonic()
        run_id = dagster.launch("__ASSET_JOB", assets=["raw/eau_udi", "staging/stg_eau_udi"])
        run = dagster.wait(run_id)
        timings["selection"] = time.monotonic() - started
        assert run["status"] == "SUCCESS", log.read_text()[-5000:]
        assert _materialized(run) == {"raw/eau_udi", "staging/stg_eau_udi"}

        # the schedule's job: campaign/status materialised, campaign.status written
        run = dagster.wait(dagster.launch("campaign_status"))
        assert run["status"] == "SUCCESS", log.read_text()[-5000:]
        assert _materialized(run) == {"campaign/status"}

        # two runs at once (a colleague clicks while another run is queued): one at a time
        first, second = dagster.launch("campaign_status"), dagster.launch("campaign_status")
        runs = [dagster.wait(first), dagster.wait(second)]
        assert [r["status"] for r in runs] == ["SUCCESS", "SUCCESS"]
        assert runs[1]["startTime"] >= runs[0]["endTime"] - 0.5, "the two runs overlapped"

        # (b) the sensor on: its first evaluation finds every file already recorded
        dagster.start_sensor("new_deliveries")
        first_tick = _wait_for(
            lambda: [t for t in dagster.sensor_ticks("new_deliveries") if t["status"] != "STARTED"],
            120,
            "the first tick of new_deliveries",
        )
        assert first_tick[-1]["runIds"] == [], first_tick
        known = {r["runId"] for r in dagster.runs()}

        # a department drops a corrected workbook next to the first one
        original = demo.sources / "2025" / "water" / "eau_reseau_2025.xlsx"
        dropped = time.monotonic()
        write_corrected_reseau(original, original.with_name("eau_reseau_2025_v2.xlsx"))

        def sensor_run():
            new = [r for r in dagster.runs() if r["runId"] not in known]
            return new[0] if new else None

        requested = _wait_for(sensor_run, 180, "a run requested by new_deliveries")
        timings["drop -> run requested"] = time.monotonic() - dropped
        assert _tags(requested)["kpi/sources"] == "eau_reseau"
        run = dagster.wait(requested["runId"])
        timings["drop -> run finished"] = time.monotonic() - dropped
        assert run["status"] == "SUCCESS", log.read_text()[-5000:]
        rerun = _materialized(run)
        assert {"raw/eau_reseau", "marts/fct_indicator_values", "marts/p2_indicators"} <= rerun
        assert not rerun & {"raw/eau_volumes", "raw/dechets_collecte", "raw/eau_udi"}

        def corrected_in_published_copy():
            return water_subscribers(warehouse).get(CORRECTED_COMMUNE) == SUBSCRIBERS_AFTER

        _wait_for(corrected_in_published_copy, 120, "the corrected figure in warehouse.duckdb")
        timings["drop -> published"] = time.monotonic() - dropped
        assert (_publication(warehouse) or {})["run_id"] == run["runId"]
        after = water_subscribers(warehouse)
        assert after[None] == before[None] + SUBSCRIBERS_AFTER - SUBSCRIBERS_BEFORE
        ticks = dagster.sensor_ticks("publish_after_run")
        assert any("publiée" in (t["skipReason"] or "") for t in ticks), ticks
    print(
        "\n[dagster daemon] "
        + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
        + f"; the sensor's run materialised {len(rerun)} assets: {sorted(rerun)}"
    )


# --- (c) readers, a freeze and a second run while `kpi run` writes -----------------------------

READERS = (
    ["status", "--year", "2025"],
    ["review", "list", "--year", "2025"],
    ["trace", "water_network_length", "--year", "2025"],
)
READER_LOOP = r"""
import json, subprocess, sys, time
command, stop, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
import os
results = []
while not os.path.exists(stop):
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True)
    results.append([done.returncode, time.monotonic() - started, done.stderr[-2000:]])
with open(out, "w", encoding="utf-8") as handle:
    json.dump(results, handle)
"""


def test_readers_a_freeze_and_a_second_run_during_kpi_run(demo, tmp_path):
    env = _env(demo)
    # the steering department's campaign file, which `kpi status` reads
    shutil.copy(PROJECT_ROOT / "sources" / "2025" / "campagne.yml", demo.sources / "2025")
    # a corrected delivery, so the run ingests, rebuilds and publishes something new
    original = demo.sources / "2025" / "water" / "eau_reseau_2025.xlsx"
    write_corrected_reseau(original, original.with_name("eau_reseau_2025_v2.xlsx"))
    stop = tmp_path / "stop"
    loops = []
    for index, args in enumerate(READERS):
        out = tmp_path / f"reader-{index}.json"
        loops.append(
            (
                out,
                subprocess.Popen(
                    [sys.executable, "-c", READER_LOOP, json.dumps([*KPI, *args]), str(stop)]
                    + [str(out)],
                    env=env,
                    cwd=tmp_path,
                ),
            )
        )
    run = freeze = second = None
    try:
        time.sleep(2)
        started = time.monotonic()
        # the corrected source and what depends on it: a run of a few dozen steps
        run = subprocess.Popen(
            [*KPI, "run", "--select", "eau_reseau"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        time.sleep(6)  # the run is writing: a colleague freezes, another starts a run
        freeze = subprocess.Popen(
            [*KPI, "freeze", "--year", "2025", "--reason", "test : gel pendant une exécution"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        second = subprocess.run(
            [*KPI, "run"],
            env=dict(env, KPI_LOCK_WAIT="3"),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_SECONDS,
        )
        run_out, run_err = run.communicate(timeout=RUN_TIMEOUT_SECONDS)
        run_seconds = time.monotonic() - started
        freeze_out, freeze_err = freeze.communicate(timeout=RUN_TIMEOUT_SECONDS)
    finally:
        stop.touch()
        for _out, loop in loops:
            try:
                loop.wait(timeout=120)
            except subprocess.TimeoutExpired:
                loop.kill()
        for process in (run, freeze):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    # the run: never broken by a reader, a freeze or a second run
    assert run.returncode in (0, 3), run_err.decode()[-4000:]
    assert "Traceback" not in run_err.decode()
    assert "Copie publiée" in run_out.decode()
    # the second `kpi run` (3 s of patience): refused in French, exit code 3, no traceback
    assert second.returncode == 3, second.stderr[-3000:]
    assert "entrepôt occupé par" in second.stderr and "réessayez plus tard" in second.stderr
    assert "Traceback" not in second.stderr
    # the freeze waited for the run, then froze its result
    assert freeze.returncode == 0, freeze_err.decode()[-3000:]
    assert "entrepôt occupé par" in freeze_err.decode()
    assert re.search(r"Publication RA-2025-v\d+ figée", freeze_out.decode())

    worst, answers, busy = 0.0, 0, 0
    for out, _loop in loops:
        results = json.loads(out.read_text(encoding="utf-8"))
        assert results, f"{out.name}: no read at all"
        for returncode, seconds, stderr in results:
            assert returncode == 0, stderr
            assert "Traceback" not in stderr and "IOException" not in stderr, stderr
            answers += 1
            busy += "entrepôt occupé par" in stderr
            worst = max(worst, seconds)
    assert busy, "no reader ever met the run: the test did not test anything"
    build = demo.warehouse.parent / ".build" / demo.warehouse.name
    con = duckdb.connect(str(build), read_only=True)
    try:
        frozen = con.execute(
            "select count(*) from release.release_values v join release.releases r "
            "using (release_id) where r.reason like 'test : gel%'"
        ).fetchone()[0]
    finally:
        con.close()
    assert frozen > 0
    print(
        f"\n[readers during kpi run] kpi run {run_seconds:.1f} s; {answers} reader commands "
        f"answered ({busy} after waiting with « entrepôt occupé »), worst {worst:.1f} s "
        "(a kpi command's own start included)"
    )


# --- the deployment of docs/deployment.md: PostgreSQL instance, webserver and daemon apart ----


def _deployment_yaml() -> str:
    """The `dagster.yaml` of docs/deployment.md, section 2 (kept in step with it: the test
    reads the block from the document)."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "deployment.md").read_text(
        encoding="utf-8"
    )
    block = re.search(r"```yaml\n( *storage:\n.*?)```", text, re.S)
    assert block, "docs/deployment.md has no dagster.yaml block"
    return textwrap.dedent(block[1])


@contextlib.contextmanager
def _postgres_database():
    """A throwaway database for Dagster's storage on the server `.ci/run` starts."""
    import secrets

    psycopg2 = pytest.importorskip("psycopg2")
    if not os.environ.get("KPI_PG_HOST"):
        pytest.skip("no PostgreSQL server (KPI_PG_HOST unset; .ci/run starts one)")
    params = {
        "host": os.environ["KPI_PG_HOST"],
        "port": int(os.environ.get("KPI_PG_PORT", "5432")),
        "user": os.environ.get("KPI_PG_USER", "kpi"),
        "password": os.environ.get("KPI_PG_PASSWORD", ""),
    }
    name = "dagster_test_" + secrets.token_hex(4)
    admin = psycopg2.connect(dbname=os.environ.get("KPI_PG_DBNAME", "postgres"), **params)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"create database {name}")
    try:
        yield {
            "DAGSTER_PG_HOST": params["host"],
            "DAGSTER_PG_PORT": str(params["port"]),
            "DAGSTER_PG_USER": params["user"],
            "DAGSTER_PG_PASSWORD": params["password"],
            "DAGSTER_PG_DB": name,
        }
    finally:
        with admin.cursor() as cur:
            cur.execute(f"drop database if exists {name} with (force)")
        admin.close()


DEPLOYMENT_SELECTION = [
    "raw/eau_udi",
    "staging/stg_eau_udi",
    "marts/fct_indicator_values",
    "marts/p2_indicators",
]


@pytest.mark.usefixtures("postgres_alone")  # one test at a time on the server
def test_the_shared_deployment_runs_and_publishes(demo, tmp_path):
    """docs/deployment.md as written: the instance on PostgreSQL, `dagster-webserver` and
    `dagster-daemon run` started apart (as two systemd services would be), a run launched
    from the webserver, executed by the daemon, published by publish_after_run. Skipped
    without a PostgreSQL server (`.ci/run` starts one)."""
    with _postgres_database() as pg_env:
        home = tmp_path / "dagster_home_pg"
        home.mkdir()
        (home / "dagster.yaml").write_text(_deployment_yaml(), encoding="utf-8")
        env = _env(demo, DAGSTER_HOME=str(home), **pg_env)
        port = free_port()
        bin_dir = Path(sys.executable).parent
        logs = {name: tmp_path / f"{name}.log" for name in ("webserver", "daemon")}
        commands = {
            "webserver": [str(bin_dir / "dagster-webserver"), "-m", LOCATION]
            + ["-h", "127.0.0.1", "-p", str(port)],
            "daemon": [str(bin_dir / "dagster-daemon"), "run", "-m", LOCATION],
        }
        services = {}
        try:
            for name, command in commands.items():
                with logs[name].open("wb") as handle:
                    services[name] = subprocess.Popen(
                        command,
                        env=env,
                        cwd=tmp_path,
                        stdin=subprocess.DEVNULL,
                        stdout=handle,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
            dagster = Dagster(f"http://127.0.0.1:{port}")

            def loaded():
                for name, service in services.items():
                    if service.poll() is not None:
                        pytest.fail(f"{name} exited: {logs[name].read_text()[-3000:]}")
                with contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError):
                    return dagster.query(
                        "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
                    )["repositoriesOrError"].get("nodes")
                return None

            _wait_for(loaded, SERVER_TIMEOUT_SECONDS, "the webserver of the deployment")
            started = time.monotonic()
            # one source and what it feeds (the full job runs in the `kpi ui` test above)
            run_id = dagster.launch("__ASSET_JOB", assets=DEPLOYMENT_SELECTION)
            run = dagster.wait(run_id)
            assert run["status"] == "SUCCESS", logs["daemon"].read_text()[-5000:]
            assert _materialized(run) == set(DEPLOYMENT_SELECTION)
            _wait_for(
                lambda: (_publication(demo.warehouse) or {}).get("run_id") == run_id,
                120,
                "publication of the deployment's run",
            )
            seconds = time.monotonic() - started
        finally:
            for service in services.values():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.pid, signal.SIGTERM)
            for service in services.values():
                try:
                    service.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(service.pid, signal.SIGKILL)
                    service.wait()
    print(
        f"\n[deployment] PostgreSQL instance: {len(DEPLOYMENT_SELECTION)} assets launched → "
        f"published in {seconds:.1f} s"
    )
