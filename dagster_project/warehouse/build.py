"""The build database the pipeline writes, and the lock that makes publications one at a time.

The pipeline never writes the file analysts open: it writes the *build* database
(``Settings.build_warehouse``: ``.build/warehouse.duckdb`` beside ``warehouse.duckdb``), which
holds what analysts never see (``raw_restricted``, the delivery history). ``ensure_build``
gives its path, readable after a crash; ``connect_build`` attaches it read-only to copy it;
``publication_lock`` (``.build/<name>.publish.lock``) lets one publication run at a time, and
a verification see none meanwhile. The copy itself: ``warehouse.publication``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from dagster_project.settings import Settings
from dagster_project.warehouse.recovery import recover_after_crash
from dagster_project.warehouse.schema import PUBLICATION_SCHEMA

LOCK_WAIT_SECONDS = 300.0


class PublishError(RuntimeError):
    """The publication could not be made; the previous one stays in place."""


def is_published_copy(path: Path) -> bool:
    """True when the file is a publication (it has the ``publication`` schema)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return bool(
            con.execute(
                "select count(*) from information_schema.schemata where schema_name = ?",
                [PUBLICATION_SCHEMA],
            ).fetchone()[0]
        )
    finally:
        con.close()


def ensure_build(settings: Settings) -> Path:
    """The build database path, its folder created, readable after a crash.

    A warehouse written before the build/publish split (``warehouse.duckdb`` written by the
    pipeline itself, with its delivery history and releases) is moved into place as the build
    database the first time, so no history is lost.

    The build holds what analysts never see (``raw_restricted``, the delivery history): its
    folder ``.build/`` is the pipeline account's only (0700), its database file and log too
    (0600; a database created by a run gets it at the next call, the folder protecting it
    meanwhile).
    """
    build = settings.build_warehouse
    build.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    build.parent.chmod(0o700)  # (a folder created before: mkdir leaves it as it is)
    published = settings.warehouse
    if not build.exists() and published.exists() and not is_published_copy(published):
        wal = published.with_name(published.name + ".wal")
        if wal.exists():
            os.replace(wal, build.with_name(build.name + ".wal"))
        os.replace(published, build)
    for owned in (build, build.with_name(build.name + ".wal")):
        with contextlib.suppress(FileNotFoundError):
            owned.chmod(0o600)
    if build.exists() and build.with_name(build.name + ".wal").exists():
        from dagster_project.warehouse.access import WarehouseBusy, access

        # only when nobody writes it (a writer's own log is not a crash): one attempt, no wait
        with (
            contextlib.suppress(WarehouseBusy, RuntimeError),
            access(build, "write", "la reprise après un arrêt brutal", wait=0),
        ):
            recover_after_crash(build)
    return build


def connect_build(build: Path, wait_seconds: float = LOCK_WAIT_SECONDS):
    """An in-memory connection with the build attached read-only under its own catalog name
    (the name dbt's views use), waiting while another process writes it."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    alias = build.stem
    while True:
        con = duckdb.connect()
        try:
            con.execute(f"attach {quote_literal(build)} as {quote_ident(alias)} (read_only)")
            return con, alias
        except duckdb.IOException:
            con.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- helpers ----------------------------------------------------------------------------------


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def publication_lock(
    path: Path, wait_seconds: float = LOCK_WAIT_SECONDS, *, shared: bool = False
) -> Iterator[None]:
    """One publication at a time (exclusive); ``shared``: no publication meanwhile (a
    verification), taken only when the lock file exists and can be opened."""
    if shared:
        handle = None
        with contextlib.suppress(OSError):
            handle = path.open("r")
        if handle is None:
            yield
            return
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    with handle:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError as exc:
                if time.monotonic() > deadline:
                    raise PublishError(
                        f"une autre publication est en cours (verrou {path})"
                    ) from exc
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
