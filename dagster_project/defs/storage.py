"""The local Dagster instance's storage: Dagster's own SQLite storage, with its connections kept.

Dagster's SQLite storage (``DagsterSqliteStorage``: ``history/runs.db``, one database per run
under ``history/runs/``, the ``index.db`` of asset events and concurrency slots,
``schedules/schedules.db``) opens a new SQLAlchemy engine and a new SQLite connection for every
statement it runs, and disposes of them after: in a ``kpi run`` at one agglomeration's scale
that is 280 events, each written to its run's database and most to the index too, and the
asset records read back for every materialization — several seconds of the run spent
opening and closing files (bench/README.md, 6 December 2026, issue 19).

``PooledSqliteStorage`` is the same storage, same files, same schema, same transactions (one
per statement, as before; SQLite's own locking and WAL journal between processes: the
webserver, the daemon and ``kpi`` commands still share the files) — only the engines are kept
per database and their connections pooled (SQLAlchemy's ``QueuePool``, the default for SQLite
files), instead of one engine per statement. The instance ``kpi`` writes
(``defs/instance.DAGSTER_YAML``) names it under ``storage: custom``, the way Dagster plugs
a storage class; a shared deployment uses Dagster's PostgreSQL storage instead
(docs/deployment.md), which pools its connections itself.

A process keeps at most ``MAX_OPEN_RUN_SHARDS`` run databases open (the webserver reads many
runs: the least recently used are closed), and a forked child starts with no engine of its
parent's (SQLite connections must not cross a fork).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, BATCH_WRITABLE_EVENTS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlalchemy_compat import db_result
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster.version import __version__ as DAGSTER_VERSION
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool

MAX_OPEN_RUN_SHARDS = 8


class EngineCache:
    """Engines by database, for this process only, the least recently used closed beyond
    ``size`` (``keep`` never is)."""

    def __init__(self, size: int, keep: frozenset[str] = frozenset()):
        self._size, self._keep = size, keep
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, key: str, make: Callable[[], Engine]) -> Engine:
        """The engine of ``key``, made by ``make`` when there is none yet."""
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's connections are not ours
                for engine in self._engines.values():
                    engine.dispose(close=False)
                self._engines.clear()
                self._pid = os.getpid()
            engine = self._engines.get(key)
            if engine is not None:
                self._engines.move_to_end(key)
                return engine
            engine = self._engines[key] = make()
            evictable = [k for k in self._engines if k not in self._keep]
            for old in evictable[: max(0, len(evictable) - self._size)]:
                self._engines.pop(old).dispose()
            return engine

    def clear(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        if self._pid == os.getpid():
            for engine in engines:
                engine.dispose()

    def __len__(self) -> int:
        return len(self._engines)


def _true_once_found(found: set[str], name: str, ask: Callable[[str], bool]) -> bool:
    """``ask(name)`` until it answers True, then True without asking: what the schema has
    gained (a table, a column, a completed data migration) it keeps. ``found``: the names
    found so far, for this process."""
    if name not in found and ask(name):
        found.add(name)
    return name in found


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log, an engine kept per run database and for the index."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines = EngineCache(MAX_OPEN_RUN_SHARDS, keep=frozenset({INDEX_SHARD_NAME}))
        self._tables_found: set[str] = set()
        self._indexes_found: set[str] = set()
        self._asset_key_columns_found: set[str] = set()
        self._batch = threading.local()  # the index connection of a batch being written
        super().__init__(base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """The events Dagster hands over at once (``DAGSTER_EVENT_BATCH_SIZE``, set by
        ``settings``: the asset and check events planned at a run's start, 86 in a run at
        SF1), written as ``store_event`` writes them one by one — the same rows in the run's
        database and the index — in one transaction per database instead of two to four per
        event. When the run's rows cannot be written, nothing is (Dagster then stores the
        events one by one); when the index's cannot, they are written one by one there."""
        if not events:
            return
        run_ids = {event.run_id for event in events}
        if len(run_ids) != 1 or any(
            not event.is_dagster_event or event.dagster_event_type not in BATCH_WRITABLE_EVENTS
            for event in events
        ):
            super().store_event_batch(events)
            return
        statements = [self.prepare_insert_event(event) for event in events]
        with self.run_connection(run_ids.pop()) as conn:
            for statement in statements:
                conn.execute(statement)
        indexed = [
            (event, statement)
            for event, statement in zip(events, statements, strict=True)
            if event.dagster_event_type in ASSET_EVENTS | ASSET_CHECK_EVENTS
        ]
        try:
            with self._connect(INDEX_SHARD_NAME) as conn:
                self._batch.index = conn
                try:
                    for event, statement in indexed:
                        self._index_event(event, statement)
                finally:
                    self._batch.index = None
        except Exception:  # rolled back: one by one, as store_event does
            for event, statement in indexed:
                self._index_event(event, statement)

    def _index_event(self, event: EventLogEntry, statement) -> None:
        """What ``SqliteEventLogStorage.store_event`` writes to the index for an asset or check
        event (the event itself, its tags and asset record, or its check execution)."""
        if event.dagster_event_type in ASSET_EVENTS:
            with self.index_transaction() as conn, db_result(conn, statement) as result:
                event_id = result.inserted_primary_key[0]
                if event_id is None:
                    raise DagsterInvariantViolationError(
                        "Cannot store asset event tags for null event id."
                    )
                self._store_asset_event_tags(conn, [event], [event_id])
                self._store_asset_event(conn, event, event_id)
        if event.dagster_event_type in ASSET_CHECK_EVENTS:
            with self.index_connection() as conn, db_result(conn, statement) as result:
                event_id = result.inserted_primary_key[0]
            self.store_asset_check_event(event, event_id)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        batch = getattr(self._batch, "index", None)
        if shard == INDEX_SHARD_NAME and batch is not None:  # inside store_event_batch
            yield batch
            return
        with self._db_lock:
            engine = self._engines.get(
                shard,
                lambda: create_engine(
                    self.conn_string_for_shard(shard),
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                ),
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _initdb(self, engine: Engine, for_index_shard: bool = False) -> None:
        """A new run's database: a copy of an empty one Dagster made (``_run_template``),
        instead of Dagster making it again (its tables, WAL journal and schema revision: the
        revision scripts read anew each time, ≈ 40 ms of every run). The same file as Dagster
        makes; anything else (the index, a database already there) as Dagster does."""
        path = engine.url.database
        if for_index_shard or not path or os.path.exists(path) or not self._from_template(path):
            super()._initdb(engine, for_index_shard)

    def _run_template(self) -> str:
        """An empty run database made by Dagster's own ``_initdb`` (once per Dagster version, in
        the event log folder; not a run: run databases end in ``.db``)."""
        template = os.path.join(self._base_dir, f".kpi-run-template-{DAGSTER_VERSION}.sqlite")
        if not os.path.exists(template):
            partial = f"{template}.{os.getpid()}.{threading.get_ident()}"
            engine = create_engine(f"sqlite:///{partial}", poolclass=NullPool)
            try:
                super()._initdb(engine)
            finally:
                engine.dispose()  # the last connection closed: its WAL checkpointed, removed
            os.replace(partial, template)
        return template

    def _from_template(self, path: str) -> bool:
        """Put a copy of the template at ``path``, unless another process made a database
        there meanwhile (then False: Dagster checks that one)."""
        partial = f"{path}.{os.getpid()}.{threading.get_ident()}.part"
        try:
            shutil.copyfile(self._run_template(), partial)
            os.link(partial, path)  # never over another process's database
            return True
        except OSError:
            return False
        finally:
            with contextlib.suppress(OSError):
                os.unlink(partial)

    def has_table(self, table_name: str) -> bool:
        # asked before every asset event; a table, once there, stays (a missing one is asked
        # again: a migration may add it)
        return _true_once_found(self._tables_found, table_name, super().has_table)

    def has_secondary_index(self, name: str) -> bool:
        # asked before every read of asset records (twice per materialization of a dbt model:
        # ≈ 50 ms of a re-delivery at SF1); a data migration, once completed, stays, so the
        # answer is kept for the process as Dagster's PostgreSQL and consolidated SQLite event
        # logs keep it (only when completed: another process may complete it meanwhile)
        return _true_once_found(self._indexes_found, name, super().has_secondary_index)

    def has_asset_key_col(self, column_name: str) -> bool:
        # the same for the columns of the asset keys table (SQLAlchemy's inspection of the
        # table each time: ≈ 40 ms of a re-delivery); a column, once added, stays
        return _true_once_found(
            self._asset_key_columns_found, column_name, super().has_asset_key_col
        )

    def wipe(self) -> None:
        self._engines.clear()  # before its files are deleted
        self._indexes_found.clear()
        self._asset_key_columns_found.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engines.clear()


class _PooledConnect:
    """``connect()`` of Dagster's SQLite run and schedule storages, on one kept engine."""

    _conn_string: str

    def __init__(self, *args, **kwargs):
        self._engines = EngineCache(1)
        super().__init__(*args, **kwargs)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        engine = self._engines.get(self._conn_string, lambda: create_engine(self._conn_string))
        with engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engines.clear()


class PooledSqliteRunStorage(_PooledConnect, SqliteRunStorage):
    """Dagster's SQLite run storage (``history/runs.db``), its engine kept."""


class PooledSqliteScheduleStorage(_PooledConnect, SqliteScheduleStorage):
    """Dagster's SQLite schedule and sensor storage (``schedules/schedules.db``), its engine
    kept."""


class PooledSqliteStorage(DagsterSqliteStorage):
    """Dagster's default local storage (same folders as ``storage: sqlite``), its engines kept;
    ``dagster.yaml`` names it under ``storage: custom`` with ``base_dir: {env: DAGSTER_HOME}``
    (``defs/instance.DAGSTER_YAML``)."""

    def __init__(self, base_dir: str, inst_data=None):
        self.base_dir = base_dir
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(
            _schedule_directory(base_dir)
        )
        self._inst_data = inst_data
        DagsterStorage.__init__(self)

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteStorage:
        # Dagster's names its own class here, not ``cls``
        return cls.from_local(inst_data=inst_data, **config_value)
