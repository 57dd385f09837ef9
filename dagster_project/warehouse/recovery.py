"""Replaying a write-ahead log that DuckDB cannot replay alone, before anyone opens the file.

Every writer of the build database (``access.connect``) and the publication (``ensure_build``)
call ``recover_after_crash`` first: a process killed mid-write leaves a ``.wal`` beside the
file, and one kind of log (below) makes the file unreadable to DuckDB 1.5 (1.5.5, 1.5.6)
until it is replayed this way.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def recover_after_crash(path: Path) -> bool:
    """Replay the write-ahead log a killed process left, when DuckDB cannot do it alone.

    DuckDB 1.5 (1.5.5, 1.5.6) cannot open a database whose log holds an ``alter table ... add
    column`` on a table with a ``default current_timestamp`` column ("Failure while replaying WAL file:
    Calling DatabaseManager::GetDefaultDatabase with no default database set"): a first
    ``kpi freeze`` killed before its checkpoint left the build database unreadable. Attached
    to an in-memory database, the same log replays; a checkpoint then writes it into the file.
    Nothing happens when there is no log (clean close) or another process has the file open.
    Returns True when a log was replayed this way.
    """
    if not path.with_name(path.name + ".wal").exists():
        return False
    try:
        duckdb.connect(str(path)).close()
        return False
    except duckdb.Error as exc:  # in use elsewhere (lock, another configuration): not ours
        if "replaying WAL" not in str(exc):
            return False
    con = duckdb.connect()
    try:
        con.execute(f"attach {_literal(path)} as kpi_recovered")
        con.execute("checkpoint kpi_recovered")
        con.execute("detach kpi_recovered")
    finally:
        con.close()
    return True
