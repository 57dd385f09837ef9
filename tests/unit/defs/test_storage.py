"""The local instance's storage: Dagster's SQLite storage, same files, its engines kept."""

from __future__ import annotations

import os

import pytest
from dagster import AssetKey, AssetMaterialization, DagsterInstance, RunsFilter, job, op
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage

from dagster_project.defs import storage as pooled
from dagster_project.defs.instance import ensure_dagster_home


@pytest.fixture
def instance(tmp_path, monkeypatch):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    home = ensure_dagster_home(tmp_path / "dagster_home")
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


@op
def two_materializations(context):
    for name in ("a", "b"):
        context.log_event(AssetMaterialization(asset_key=AssetKey(["raw", name])))


@job
def a_job():
    two_materializations()


def test_the_generated_instance_uses_the_pooled_storage(instance):
    assert isinstance(instance.event_log_storage, pooled.PooledSqliteEventLogStorage)
    assert isinstance(instance.run_storage, pooled.PooledSqliteRunStorage)
    assert isinstance(instance.schedule_storage, pooled.PooledSqliteScheduleStorage)
    assert instance.event_log_storage.supports_global_concurrency_limits  # the duckdb pool


def test_a_run_is_written_where_and_as_dagsters_own_storage_reads_it(instance):
    result = a_job.execute_in_process(instance=instance)
    assert result.success
    home = os.environ["DAGSTER_HOME"]
    assert os.path.exists(os.path.join(home, "history", "runs", f"{result.run_id}.db"))

    plain = DagsterSqliteStorage.from_local(home)  # what `storage: sqlite` would open
    (run,) = plain.run_storage.get_runs(RunsFilter(run_ids=[result.run_id]))
    assert run.is_success
    ours = [e.dagster_event_type for e in instance.all_logs(result.run_id)]
    theirs = [e.dagster_event_type for e in plain.event_log_storage.get_logs_for_run(result.run_id)]
    assert ours == theirs and len(ours) > 5
    records = plain.event_log_storage.get_asset_records([AssetKey(["raw", "a"])])
    assert records[0].asset_entry.last_materialization.run_id == result.run_id
    plain.dispose()


def test_engines_are_kept_between_events_not_made_per_statement(instance, monkeypatch):
    made = []
    real = pooled.create_engine
    monkeypatch.setattr(pooled, "create_engine", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    for _ in range(3):
        assert a_job.execute_in_process(instance=instance).success
    # the index, each run's database, runs.db: one engine each, whatever the events
    assert sorted(made).count(made[0]) == 1
    assert len(made) == len(set(made)) <= 3 + 2
    assert len(instance.event_log_storage._engines) == 1 + 3  # index + 3 runs


def test_at_most_a_few_run_databases_stay_open_the_index_always(instance, monkeypatch):
    monkeypatch.setattr(pooled, "MAX_OPEN_RUN_SHARDS", 2)
    storage = pooled.PooledSqliteEventLogStorage(instance.event_log_storage._base_dir)
    run_ids = [a_job.execute_in_process(instance=instance).run_id for _ in range(4)]
    assert storage.get_asset_records([AssetKey(["raw", "a"])])  # opens the index
    for run_id in run_ids:
        assert len(storage.get_logs_for_run(run_id)) > 5
    open_ = list(storage._engines._engines)
    assert open_ == ["index", *run_ids[-2:]]
    storage.dispose()
    assert len(storage._engines) == 0


def test_a_missing_table_is_asked_again_a_found_one_is_not(instance, monkeypatch):
    storage = instance.event_log_storage
    asked = []
    parent = pooled.SqliteEventLogStorage.has_table
    monkeypatch.setattr(
        pooled.SqliteEventLogStorage, "has_table", lambda s, t: asked.append(t) or parent(s, t)
    )
    assert storage.has_table("asset_keys") and storage.has_table("asset_keys")
    assert not storage.has_table("no_such_table") and not storage.has_table("no_such_table")
    assert asked == ["asset_keys", "no_such_table", "no_such_table"]


def test_a_completed_migration_and_an_added_column_are_asked_once(instance, monkeypatch):
    from dagster._core.storage.event_log.migration import ASSET_KEY_INDEX_COLS

    storage = instance.event_log_storage
    asked = []
    index, column = (
        pooled.SqliteEventLogStorage.has_secondary_index,
        pooled.SqliteEventLogStorage.has_asset_key_col,
    )
    monkeypatch.setattr(
        pooled.SqliteEventLogStorage,
        "has_secondary_index",
        lambda s, n: asked.append(n) or index(s, n),
    )
    monkeypatch.setattr(
        pooled.SqliteEventLogStorage,
        "has_asset_key_col",
        lambda s, c: asked.append(c) or column(s, c),
    )
    for _ in range(3):
        assert storage.has_secondary_index(ASSET_KEY_INDEX_COLS)
        assert storage.can_read_asset_status_cache()  # the cached_status_data column
        assert not storage.has_secondary_index("no_such_migration")
        assert not storage.has_asset_key_col("no_such_column")
    # a migration not completed, a column not there: asked again (another process may add it)
    assert asked == [
        ASSET_KEY_INDEX_COLS,
        "cached_status_data",
        *["no_such_migration", "no_such_column"] * 3,
    ]
    result = a_job.execute_in_process(instance=instance)  # the asset records read as before
    records = storage.get_asset_records([AssetKey(["raw", "b"])])
    assert records[0].asset_entry.last_materialization.run_id == result.run_id
    instance.wipe()  # a wiped storage asks again
    assert storage.has_secondary_index(ASSET_KEY_INDEX_COLS)
    assert asked.count(ASSET_KEY_INDEX_COLS) == 2


def test_wipe_closes_the_engines_before_deleting_and_runs_go_on(instance):
    assert a_job.execute_in_process(instance=instance).success
    instance.wipe()
    assert instance.get_runs() == []
    result = a_job.execute_in_process(instance=instance)
    assert result.success and len(instance.all_logs(result.run_id)) > 5


def test_a_forked_child_does_not_use_its_parents_connections(tmp_path):
    from sqlalchemy import create_engine, text

    cache = pooled.EngineCache(2)
    url = f"sqlite:///{tmp_path / 'x.db'}"
    parent_engine = cache.get("x", lambda: create_engine(url))
    assert cache.get("x", lambda: create_engine(url)) is parent_engine
    with parent_engine.connect() as conn:
        conn.execute(text("create table t (x int)"))
        conn.commit()
    pid = os.fork()
    if pid == 0:  # child: a new engine, and it works
        engine = cache.get("x", lambda: create_engine(url))
        ok = engine is not parent_engine
        with engine.connect() as conn:
            ok = ok and conn.execute(text("select count(*) from t")).scalar() == 0
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert cache.get("x", lambda: create_engine(url)) is parent_engine  # parent's kept


def _planned_events_run(home, monkeypatch, batch_size: str):
    """A run of two assets and a check in a new instance at ``home``, with Dagster's batched
    writes of its planned events at ``batch_size``; the rows it left in the index."""
    from dagster import AssetCheckResult, Definitions, asset, asset_check, define_asset_job

    @asset(key=["raw", "a"])
    def a():
        return 1

    @asset(key=["raw", "b"], deps=[a])
    def b():
        return 2

    @asset_check(asset=a)
    def a_is_fine():
        return AssetCheckResult(passed=True)

    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    job_def = Definitions(
        assets=[a, b], asset_checks=[a_is_fine], jobs=[define_asset_job("both")]
    ).resolve_job_def("both")
    with DagsterInstance.from_config(str(ensure_dagster_home(home))) as instance:
        result = job_def.execute_in_process(instance=instance)
        assert result.success
        storage = instance.event_log_storage
        with storage.index_connection() as conn:
            index = sorted(
                (row[0], row[1])
                for row in conn.exec_driver_sql(
                    "select dagster_event_type, asset_key from event_logs where run_id = ?",
                    (result.run_id,),
                )
            )
            checks = sorted(
                conn.exec_driver_sql(
                    "select asset_key, check_name, execution_status from asset_check_executions"
                ).fetchall()
            )
            keys = sorted(r[0] for r in conn.exec_driver_sql("select asset_key from asset_keys"))
        run_events = [e.dagster_event_type for e in instance.all_logs(result.run_id)]
    return run_events, index, checks, keys


def test_planned_events_written_at_once_leave_the_same_rows(tmp_path, monkeypatch):
    batches = []
    real = pooled.PooledSqliteEventLogStorage.store_event_batch

    def spy(self, events):
        batches.append([e.dagster_event_type for e in events])
        return real(self, events)

    monkeypatch.setattr(pooled.PooledSqliteEventLogStorage, "store_event_batch", spy)
    one_by_one = _planned_events_run(tmp_path / "one", monkeypatch, "0")
    assert batches == []
    at_once = _planned_events_run(tmp_path / "batch", monkeypatch, "500")
    assert [sorted(str(t) for t in batch) for batch in batches] == [
        sorted(
            ["DagsterEventType.ASSET_MATERIALIZATION_PLANNED"] * 2
            + ["DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED"]
        )
    ]
    assert at_once == one_by_one
    run_events, index, checks, _keys = at_once
    assert ("ASSET_MATERIALIZATION_PLANNED", '["raw", "a"]') in index
    assert ("ASSET_CHECK_EVALUATION_PLANNED", None) in index
    assert checks == [('["raw", "a"]', "a_is_fine", "SUCCEEDED")]


def test_an_index_batch_that_fails_is_written_one_by_one(tmp_path, monkeypatch):
    reference = _planned_events_run(tmp_path / "one", monkeypatch, "0")
    real = pooled.PooledSqliteEventLogStorage._store_asset_event
    failed = []

    def fails_once_in_a_batch(self, conn, event, event_id):
        if getattr(self._batch, "index", None) is not None and not failed:
            failed.append(event_id)
            raise RuntimeError("disque plein")
        return real(self, conn, event, event_id)

    monkeypatch.setattr(
        pooled.PooledSqliteEventLogStorage, "_store_asset_event", fails_once_in_a_batch
    )
    assert _planned_events_run(tmp_path / "batch", monkeypatch, "500") == reference
    assert failed  # the batch failed, its rows were rolled back and written one by one


def _schema(path) -> tuple:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        return (
            sorted(con.execute("select type, name, sql from sqlite_master").fetchall()),
            con.execute("select version_num from alembic_version").fetchall(),
            con.execute("pragma journal_mode").fetchone(),
            con.execute("select count(*) from event_logs").fetchone(),
        )
    finally:
        con.close()


def test_a_new_run_database_is_a_copy_of_one_dagster_made(instance, tmp_path):
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    storage = instance.event_log_storage
    with storage._connect("run-one"):
        pass
    with storage._connect("run-two"):
        pass
    template = os.path.join(storage._base_dir, f".kpi-run-template-{pooled.DAGSTER_VERSION}.sqlite")
    assert os.path.exists(template)
    # Dagster's own storage makes a run database in another folder: the same file
    plain = SqliteEventLogStorage(str(tmp_path / "plain"))
    with plain.run_connection("run-one"):
        pass
    reference = _schema(plain.path_for_shard("run-one"))
    assert reference[1] and reference[2] == ("wal",)
    assert _schema(storage.path_for_shard("run-one")) == reference
    assert _schema(storage.path_for_shard("run-two")) == reference
    # not a run for Dagster, no leftover beside the databases
    assert sorted(storage.get_all_run_ids()) == ["run-one", "run-two"]
    assert not [name for name in os.listdir(storage._base_dir) if name.endswith(".part")]
    plain.dispose()


def test_a_run_database_another_process_made_first_is_left_to_dagster(instance, monkeypatch):
    storage = instance.event_log_storage
    made = []
    real = pooled.SqliteEventLogStorage._initdb

    def dagsters(self, engine, for_index_shard=False):
        made.append(engine.url.database)
        return real(self, engine, for_index_shard)

    monkeypatch.setattr(pooled.SqliteEventLogStorage, "_initdb", dagsters)
    monkeypatch.setattr(pooled.os, "link", lambda *_: (_ for _ in ()).throw(FileExistsError()))
    with storage._connect("raced"):
        pass
    assert storage.path_for_shard("raced") in made  # checked, and made, by Dagster's own
    assert a_job.execute_in_process(instance=instance).success
