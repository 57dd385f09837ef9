"""The Dagster instance the project writes, and how `kpi` commands wait for its runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus, job, op

from dagster_project.defs.instance import (
    CLI_TRIGGER,
    DAGSTER_YAML,
    HOST_TAG,
    PID_TAG,
    active_runs,
    cli_run_tags,
    describe_run,
    ensure_dagster_home,
    fail_dead_cli_runs,
    wait_for_no_active_run,
)
from dagster_project.warehouse.access import WarehouseBusy


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path / "dagster_home"


def test_the_instance_runs_one_run_at_a_time_with_one_duckdb_step(home):
    ensure_dagster_home(home)
    config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8"))
    assert config["telemetry"] == {"enabled": False}
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 1
    assert config["concurrency"]["pools"] == {"granularity": "op", "default_limit": 1}
    with DagsterInstance.from_config(str(home)) as instance:  # Dagster accepts it
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_a_generated_config_is_brought_up_to_date_an_operators_is_left(home):
    home.mkdir(parents=True)
    old = "# Généré par kpi : ancienne version\ntelemetry:\n  enabled: false\n"
    (home / "dagster.yaml").write_text(old, encoding="utf-8")
    ensure_dagster_home(home)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == DAGSTER_YAML
    operator = "storage:\n  sqlite:\n    base_dir: /srv/dagster\n"
    (home / "dagster.yaml").write_text(operator, encoding="utf-8")
    ensure_dagster_home(home)
    assert (home / "dagster.yaml").read_text(encoding="utf-8") == operator


@op
def nothing():
    return None


@job
def a_job():
    nothing()


def _started_run(instance, tags):
    """A run recorded as in progress, as a `kpi run` killed mid-run leaves it."""
    from dagster._core.events import DagsterEvent, DagsterEventType

    run = instance.create_run_for_job(a_job, tags=tags)

    instance.report_dagster_event(
        DagsterEvent(DagsterEventType.RUN_START.value, job_name=a_job.name), run.run_id
    )
    return instance.get_run_by_id(run.run_id)


def test_a_killed_kpi_run_is_marked_failed_a_live_one_is_not(home):
    ensure_dagster_home(home)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with DagsterInstance.from_config(str(home)) as instance:
        killed = _started_run(instance, dict(cli_run_tags(), **{PID_TAG: str(dead.pid)}))
        alive = _started_run(instance, cli_run_tags())  # this process: alive
        assert killed.status == DagsterRunStatus.STARTED
        assert fail_dead_cli_runs(instance) == [killed.run_id]
        assert instance.get_run_by_id(killed.run_id).status == DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(alive.run_id).status == DagsterRunStatus.STARTED
        assert [r.run_id for r in active_runs(instance)] == [alive.run_id]


def test_commands_wait_for_runs_in_progress_then_stop_in_french(home):
    ensure_dagster_home(home)
    with DagsterInstance.from_config(str(home)) as instance:
        assert wait_for_no_active_run(instance, "kpi run", 1, print) < 1  # nothing in progress
        run = _started_run(instance, {"kpi/trigger": "sensor", "dagster/sensor_name": "x"})
        notices = []
        with pytest.raises(WarehouseBusy) as raised:
            wait_for_no_active_run(instance, "kpi freeze", 1.5, notices.append)
        message = str(raised.value)
        assert f"l'exécution {run.run_id[:8]} (a_job, lancée par le capteur, en cours)" in message
        assert "kpi freeze a attendu" in message and "réessayez plus tard" in message
        assert notices and "attend son tour" in notices[0]
        assert describe_run(run).startswith("l'exécution")


def test_cli_run_tags_name_this_process():
    tags = cli_run_tags()
    assert tags["kpi/trigger"] == CLI_TRIGGER
    assert tags[PID_TAG] == str(os.getpid()) and tags[HOST_TAG]


def test_the_kept_instance_serves_once_and_only_the_folder_it_was_made_for(home, monkeypatch):
    import shutil

    from dagster_project.defs import instance as module

    monkeypatch.setenv("DAGSTER_HOME", str(home))
    module.keep_instance()
    kept = module._kept_instance[1]
    assert module.get_instance() is kept  # the warm process's run takes it
    assert module.get_instance() is not kept  # once
    # the folder emptied and made again (a fresh campaign, tests): a new instance
    module.keep_instance()
    kept = module._kept_instance[1]
    shutil.rmtree(home)
    fresh = module.get_instance()
    assert fresh is not kept
    assert fresh.get_runs() == []  # it writes where the folder now is
    # another configuration: a new instance too
    module.keep_instance()
    kept = module._kept_instance[1]
    (home / "dagster.yaml").write_text("# operator's\n" + DAGSTER_YAML, encoding="utf-8")
    assert module.get_instance() is not kept
