"""The warm process's mechanics (cli/warm.py, cli/warm_server.py) with a small command in
place of ``kpi``: what the caller's ``kpi`` gets back (streams, exit codes, Ctrl-C), who may
use it, when it stops. The real ``kpi run`` through it: tests/integration/test_warm_process.py.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dagster_project.cli import warm

# A warm process whose runs are this small command instead of ``kpi`` (no warm-up: the
# mechanics only); it serves under the key its own interpreter computes, as the client's does.
SERVER = """
import os, sys, time
from pathlib import Path
from dagster_project.cli import warm, warm_server

def command(argv):
    what = argv[1]
    if what == "echo":
        print("sortie", os.getcwd(), os.environ.get("TEST_VALUE"))
        print("erreur", file=sys.stderr)
        return int(argv[2])
    if what == "exit-message":
        raise SystemExit("message d'arrêt")
    if what == "stdin":
        print(sys.stdin.readline().strip().upper())
        return 0
    if what == "wait":
        print("prêt", flush=True)
        time.sleep(60)
        return 0
    if what == "in-warm":
        print(os.environ.get(warm.IN_WARM_ENV), warm.enabled())
        return 0

server = warm_server.Server(
    warm.code_key(), warm.runtime_dir(), dict(os.environ), os.getcwd(),
    command=lambda argv: warm_server.run_as_process(command, argv),
)
server.listen()
print(os.getpid(), flush=True)
server.serve()
"""
CLIENT = (
    "import sys; from dagster_project.cli import warm; code = warm.try_run(sys.argv[1:]); "
    "sys.exit(99 if code is None else code)"
)
NO_WARM_PROCESS = 99


@pytest.fixture
def env(tmp_path):
    folder = tmp_path / "w"
    folder.mkdir(mode=0o700)
    out = {k: v for k, v in os.environ.items() if not k.startswith("KPI_WARM")}
    out.update({warm.ENV: "1", warm.DIR_ENV: str(folder), "TEST_VALUE": "valeur"})
    out.pop(warm.IN_WARM_ENV, None)
    return out


@pytest.fixture
def server(env, tmp_path):
    started = []

    def start(**extra):
        process = subprocess.Popen(
            [sys.executable, "-c", SERVER],
            env={**env, **extra},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline().strip() == str(process.pid)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=20)


def client(env, cwd, *argv, **kwargs):
    return subprocess.run(
        [sys.executable, "-c", CLIENT, "run", *argv],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        **kwargs,
    )


def test_a_run_gets_the_callers_streams_folder_environment_and_exit_code(env, server, tmp_path):
    server()
    done = client(env, tmp_path, "echo", "3")
    assert done.returncode == 3, done.stderr
    assert done.stdout == f"sortie {tmp_path} valeur\n"
    assert done.stderr == "erreur\n"
    fed = client(env, tmp_path, "stdin", input="bonjour\n")
    assert (fed.returncode, fed.stdout) == (0, "BONJOUR\n")


def test_an_exit_message_is_printed_with_code_1(env, server, tmp_path):
    server()
    done = client(env, tmp_path, "exit-message")
    assert done.returncode == 1
    assert "message d'arrêt" in done.stderr


def test_a_run_of_the_warm_process_never_asks_for_one_itself(env, server, tmp_path):
    server()
    done = client(env, tmp_path, "in-warm")
    assert done.stdout == "1 False\n"


def test_ctrl_c_on_the_callers_kpi_stops_the_run(env, server, tmp_path):
    server()
    caller = subprocess.Popen(
        [sys.executable, "-c", CLIENT, "run", "wait"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert caller.stdout.readline() == "prêt\n"
    caller.send_signal(signal.SIGINT)
    assert caller.wait(timeout=20) == 128 + signal.SIGINT


def test_a_run_whose_caller_is_killed_stops(env, server, tmp_path):
    process = server()
    caller = subprocess.Popen(
        [sys.executable, "-c", CLIENT, "run", "wait"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert caller.stdout.readline() == "prêt\n"
    assert _status(env, tmp_path)["running"] == 1
    caller.kill()
    caller.wait()
    deadline = time.monotonic() + 20
    while _status(env, tmp_path)["running"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _status(env, tmp_path)["running"] == 0
    assert process.poll() is None  # the warm process itself goes on


def test_two_callers_at_once_each_get_their_own_run(env, server, tmp_path):
    server()
    callers = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, "run", "echo", str(code)],
            env={**env, "TEST_VALUE": f"appel{code}"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        for code in (4, 5)
    ]
    outputs = [(c.communicate(timeout=60)[0], c.returncode) for c in callers]
    assert outputs == [(f"sortie {tmp_path} appel4\n", 4), (f"sortie {tmp_path} appel5\n", 5)]


def test_another_environment_or_folder_or_no_process_runs_here(env, server, tmp_path):
    assert client(env, tmp_path, "echo", "0").returncode == NO_WARM_PROCESS  # none yet
    server()
    other = client({**env, "KPI_SOURCES": "/ailleurs"}, tmp_path, "echo", "0")
    assert other.returncode == NO_WARM_PROCESS
    elsewhere = tmp_path / "ailleurs"
    elsewhere.mkdir()
    assert client(env, elsewhere, "echo", "0").returncode == NO_WARM_PROCESS
    off = client({**env, warm.ENV: "0"}, tmp_path, "echo", "0")
    assert off.returncode == NO_WARM_PROCESS
    assert client(env, tmp_path, "echo", "0").returncode == 0


def _status(env, cwd):
    script = "import json; from dagster_project.cli import warm; print(json.dumps(warm.status()))"
    import json

    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True
    )
    return json.loads(done.stdout)


def test_status_then_stop(env, server, tmp_path):
    process = server()
    client(env, tmp_path, "echo", "0")
    status = _status(env, tmp_path)
    assert status["pid"] == process.pid and status["runs"] == 1 and status["running"] == 0
    script = "from dagster_project.cli import warm; print(warm.stop())"
    stopped = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert stopped.stdout == "True\n"
    assert process.wait(timeout=20) == 0
    assert not list(Path(env[warm.DIR_ENV]).glob("*.sock"))
    assert _status(env, tmp_path) is None
    # its socket is gone: the next kpi runs here
    assert client(env, tmp_path, "echo", "0").returncode == NO_WARM_PROCESS


def test_it_stops_after_its_idle_time(env, server):
    process = server(**{warm.IDLE_ENV: "1"})
    assert process.wait(timeout=30) == 0


def test_a_dead_warm_process_leaves_the_next_run_to_run_here(env, server, tmp_path):
    process = server()
    process.kill()
    process.wait()
    # its socket file is still there, nobody listens
    assert list(Path(env[warm.DIR_ENV]).glob("*.sock"))
    assert client(env, tmp_path, "echo", "0").returncode == NO_WARM_PROCESS


def test_the_sockets_folder_must_be_this_users_alone(tmp_path, monkeypatch):
    folder = tmp_path / "partagé"
    folder.mkdir()
    folder.chmod(0o777)
    monkeypatch.setenv(warm.DIR_ENV, str(folder))
    assert warm.runtime_dir() is None
    folder.chmod(0o700)
    assert warm.runtime_dir() == folder
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_what_is_for_a_warm_process(monkeypatch):
    monkeypatch.setenv(warm.ENV, "1")
    monkeypatch.delenv(warm.IN_WARM_ENV, raising=False)
    assert warm.wanted(["run"]) and warm.wanted(["-q", "run", "--force"])
    assert not warm.wanted(["run", "--help"]) and not warm.wanted(["freeze", "--year", "2025"])
    monkeypatch.setenv(warm.ENV, "0")
    assert not warm.wanted(["run"])
    monkeypatch.setenv(warm.ENV, "1")
    monkeypatch.setenv(warm.IN_WARM_ENV, "1")
    assert not warm.wanted(["run"])


def test_the_key_follows_the_environment_and_folder_it_reads(tmp_path):
    base = {"KPI_SOURCES": "/a", "PATH": "/bin", "TERM": "xterm"}
    key = warm.code_key(base, "/x")
    assert warm.code_key({**base, "TERM": "dumb", "KPI_PROGRESS": "1"}, "/x") == key
    # the telemetry switches the Makefile exports and `settings` sets anyway
    telemetry = {"DAGSTER_DISABLE_TELEMETRY": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    assert warm.code_key({**base, **telemetry}, "/x") == key
    assert warm.code_key({**base, "KPI_SOURCES": "/b"}, "/x") != key
    assert warm.code_key({**base, "DAGSTER_HOME": "/h"}, "/x") != key
    assert warm.code_key(base, "/y") != key


def test_the_key_is_the_one_of_the_environment_kpi_started_with(monkeypatch):
    """What a command sets in its own environment (the telemetry variables when `settings` is
    imported, the paths `Settings.export` sets) does not change which warm process it starts
    or asks for."""
    monkeypatch.delenv("KPI_SOURCES", raising=False)
    monkeypatch.setattr(warm, "_initial_env", None)
    warm.remember_environment()
    key = warm.code_key()
    monkeypatch.setenv("KPI_SOURCES", "/exportées/par/la/commande")
    monkeypatch.setenv("DAGSTER_DISABLE_TELEMETRY", "1")
    assert warm.code_key() == key
    assert "KPI_SOURCES" not in warm._environment()


def test_the_warm_process_leaves_the_contracts_to_each_run(monkeypatch):
    """What the warm process prepares for its runs: never the contracts (``default_contracts``
    keeps them for its process: a contract edited while it lives would be read by no run)."""
    from dagster_project.cli import warm_server
    from dagster_project.contracts.model import default_contracts
    from dagster_project.defs import instance

    monkeypatch.setattr(instance, "keep_instance", lambda: None)  # (no Dagster home here)
    default_contracts.cache_clear()
    try:
        warm_server._warm_definitions()
        assert default_contracts.cache_info().currsize == 0
    finally:
        default_contracts.cache_clear()


def test_the_warm_process_builds_the_constraints_schemas_its_runs_check(monkeypatch):
    """dbt checks each constraint of a contracted model against a JSON schema it builds on first
    use (≈ 40 ms in a run): built by the warm process, its runs (copies) never build it."""
    import mashumaro.jsonschema.builder
    from dbt.adapters.base.impl import BaseAdapter
    from dbt_common.contracts.constraints import ColumnLevelConstraint

    from dagster_project.cli import warm_server

    ColumnLevelConstraint.json_schema.__func__.cache_clear()  # (as in a new process)
    warm_server._warm_constraint_schemas()

    def never(*_args, **_kwargs):
        raise AssertionError("schema built again")

    monkeypatch.setattr(mashumaro.jsonschema.builder, "build_json_schema", never)
    monkeypatch.setattr("dbt_common.dataclass_schema.build_json_schema", never)
    parsed = BaseAdapter._parse_column_constraint({"type": "not_null"})
    assert parsed.type == "not_null"
