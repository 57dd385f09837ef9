"""The published copy analysts read, replaced atomically after each successful run or freeze.

The pipeline never writes the file analysts open. It writes the *build* database
(``Settings.build_warehouse``: ``.build/warehouse.duckdb`` beside ``warehouse.duckdb``);
``publish()`` then writes a complete copy and swaps it in:

1. under an exclusive lock (``.build/<name>.publish.lock``: one publication at a time), open
   the build read-only and attach a new file in a new folder ``.publications/<id>/`` beside
   ``warehouse.duckdb`` (same file system, hidden, designated by nothing yet);
2. copy every table and view of the build into it as a plain table, *except* the HR
   restricted schemas (``raw_restricted``, ``restricted``) and any relation with a personal
   column; the values of the rejection problems of personal sources are blanked. The copy is
   logical (``create table ... as select``): no byte of the restricted data ever reaches the
   published file, not even in freed blocks. Table and column comments (the French
   descriptions dbt persists) are copied too, plus ``publication.info`` and
   ``publication.tables`` (what was published, when, from which run, and each relation's
   fingerprint: columns, comments, row count and the sum of its rows' hashes, computed on the
   table as written). When a publication made by the same DuckDB version exists, the new one
   starts from a byte copy of it and rewrites only the relations whose fingerprint changed (a
   run that re-processed one delivery republishes what that delivery feeds, not the 4 M rows
   of an untouched register); the previous publication never held restricted data, so neither
   does the copy. When a relation published before is restricted now (a source that became
   personal, e.g. ``rh_arretes``), the copy is written whole instead: its rows must not
   survive in freed blocks. A relation is kept only when the build's fingerprint equals the
   recorded one *and* the fingerprint recomputed from the copied table equals it too: a table
   changed in the published file after its publication (0444 does not stop root) is
   rewritten from the build, not trusted on its record (``Publication.repaired``);
3. write the Parquet exports of the marts beside it (``.publications/<id>/marts/``);
   checkpoint, detach, ``fsync``, make the file read-only (0444), then replace the symbolic
   link ``.publications/current`` atomically (``os.replace``) to designate the new folder,
   ``fsync``. The analysts' paths are fixed links through it (made once, ``link_in_place``):
   ``warehouse.duckdb -> .publications/current/warehouse.duckdb`` and ``exports/marts ->
   ../.publications/current/marts``. That one rename switches the copy *and* its exports:
   nobody ever sees the copy of one publication with the exports of another.

A reader that opened ``warehouse.duckdb`` before the switch keeps reading the old file (its
open descriptor holds it); a connection opened after the switch reads the new one. The
previous publication (its copy and its exports) is kept until the next publication: a reader
that resolved the link just before the switch opens that file after it, and finds it. No
reader ever sees a
half-written state, and a crash (even SIGKILL) at any point leaves the previous publication
in place, or the new one once ``current`` was replaced (the steps where tests kill it are in
``dagster_project.lib.crash``); the folders of killed publications are removed by the next one.
DuckDB writes a log beside the file a link designates, so a log left by a writer killed on
the published copy stays in that publication's folder and never reaches the next one.

``publication_check.verify_publication()`` (run by ``kpi verify``) checks the published copy
and its exports against what was published, with the same fingerprints (``hash_rows``,
``columns_of``, ``relation_fingerprint``). The sensor that publishes after a run launched
through Dagster is Dagster wiring: ``dagster_project.defs.sensors``.

Here: ``publish()``, the exports and ``publication_info``. The build database, ``ensure_build``
and the lock of step 1 are in ``warehouse.build``; writing the copy and its fingerprints
(step 2) in ``warehouse.published_copy``; switching ``current``, the fixed links and the
removal of old publications (step 3) in ``warehouse.publication_links``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.crash import crash_point
from dagster_project.settings import Settings
from dagster_project.warehouse.access import access, reading_kept_file
from dagster_project.warehouse.build import (
    LOCK_WAIT_SECONDS,
    PublishError,
    connect_build,
    ensure_build,
    fsync,
    publication_lock,
    quote_ident,
    quote_literal,
)
from dagster_project.warehouse.publication_links import (
    EXPORTED_SCHEMAS,
    PUBLICATIONS,
    clean_versions,
    link_in_place,
    remove_leftovers,
    switch_current,
)
from dagster_project.warehouse.published_copy import (
    TARGET_ALIAS,
    PreparedCopy,
    prepare_copy,
    write_copy,
)


@dataclass
class Publication:
    publication_id: str
    path: Path
    exports: Path
    tables: dict[str, int] = field(default_factory=dict)  # schema.table -> rows
    skipped: list[str] = field(default_factory=list)  # relations left out (restricted)
    reused: list[str] = field(default_factory=list)  # kept unchanged from the previous one
    # kept by the build's fingerprint, but changed in the published file since: rewritten
    repaired: list[str] = field(default_factory=list)
    seconds: float = 0.0


class CopyAhead:
    """The current publication copied and read while a run goes on (``kpi run``): the new
    publication then starts from that copy (``published_copy.prepare_copy``) instead of copying
    and reading it after the run, unless another publication was made meanwhile. Done by the
    run's Great Expectations worker when it is a copy of the run's process (``helper``: the
    caller's ``quality.gx_worker``, whose ``start_job`` runs a function there — another
    process, idle while the run starts — or returns None), else in a thread."""

    def __init__(self, settings: Settings, helper=None):
        publications = settings.warehouse.parent / PUBLICATIONS
        # beside the publications, a name no reader opens; a publication's cleaning removes it
        # should this process die before using it
        self._staged = publications / f".ahead-{os.getpid()}-{secrets.token_hex(3)}.duckdb"
        self._prepared: PreparedCopy | None = None
        self._helper = helper
        self._job: int | None = None
        self._thread: threading.Thread | None = None
        if publications.is_dir() and settings.warehouse.exists():
            if helper is not None:
                self._job = helper.start_job(
                    "dagster_project.warehouse.published_copy:prepare_copy",
                    settings.warehouse,
                    self._staged,
                )
            if self._job is None:
                self._thread = threading.Thread(
                    target=self._prepare,
                    args=(settings.warehouse,),
                    name="kpi-publication",
                    daemon=True,
                )
                self._thread.start()

    def _prepare(self, published: Path) -> None:
        self._prepared = prepare_copy(published, self._staged)

    def take(self) -> PreparedCopy | None:
        """The prepared copy, once ready (None: none). Before the run's worker stops."""
        if self._job is not None:
            job, self._job = self._job, None
            with contextlib.suppress(Exception):  # failed: the publication copies it itself
                self._prepared = self._helper.job_result(job)
        if self._thread is not None:
            self._thread.join()
        return self._prepared

    def discard(self) -> None:
        """No publication after all (a failed run, blocking checks): the copy is removed."""
        self.take()
        self._staged.unlink(missing_ok=True)


def new_publication_id() -> str:
    return dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _write_exports(con, version_dir: Path, tables: dict[str, int], publication_id: str) -> None:
    for schema in EXPORTED_SCHEMAS:
        folder = version_dir / schema
        folder.mkdir(parents=True)
        listing = {}
        for qualified, rows in sorted(tables.items()):
            table_schema, name = qualified.split(".", 1)
            if table_schema != schema:
                continue
            path = folder / f"{name}.parquet"
            con.execute(
                f"copy (select * from {TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(name)} "
                f"order by all) to {quote_literal(path)} (format parquet, compression zstd)"
            )
            fsync(path)
            listing[name] = rows
        (folder / "_publication.json").write_text(
            json.dumps(
                {"publication_id": publication_id, "tables": listing},
                ensure_ascii=False,
                indent=2,
                sort_keys=True,
            )
            + "\n",
            encoding="utf-8",
        )
        fsync(folder)
    fsync(version_dir)


@contextlib.contextmanager
def _checkpoint_meanwhile(con: duckdb.DuckDBPyConnection, alias: str):
    """The checkpoint of the database attached as ``alias`` (DuckDB moving its changes from its
    log into the file) in a thread, while the publication goes on reading it, on the other
    core: the build's, kept open by ``kpi run`` (what closing it after the publication would
    do, ≈ 0.06 s after a re-delivery at SF1), and the copy's while its exports read it. A
    checkpoint DuckDB refuses meanwhile is done when the file is closed or detached."""
    cursor = con.cursor()

    def run() -> None:
        with contextlib.suppress(duckdb.Error):
            cursor.execute(f"checkpoint {quote_ident(alias)}")

    thread = threading.Thread(target=run, name="kpi-checkpoint", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
        cursor.close()


def publish(
    settings: Settings,
    *,
    run_id: str | None = None,
    note: str | None = None,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    ahead: CopyAhead | None = None,
) -> Publication:
    """Publish the build database: a read-only copy for analysts, and Parquet exports
    (``ahead``: the current publication already copied and read during the run)."""
    started = time.monotonic()
    build = ensure_build(settings)
    if not build.exists():
        raise PublishError(f"rien à publier : la base de construction {build} n'existe pas")
    published = settings.warehouse
    published.parent.mkdir(parents=True, exist_ok=True)
    exports = settings.exports_dir
    lock = build.with_name(build.name + ".publish.lock")
    with publication_lock(lock, wait_seconds):
        remove_leftovers(published.parent, published.name)  # of the earlier layout
        publications = published.parent / PUBLICATIONS
        publications.mkdir(exist_ok=True)
        publication_id = new_publication_id()
        version_dir = publications / publication_id  # invisible until `current` names it
        version_dir.mkdir()
        target = version_dir / published.name
        # the build is read under the read access (a run's step waits for the copy, the
        # copy waits for a step), or under kpi run's write access through the file its last
        # step left open: the connection is closed before the access is released
        purpose = "la publication de la copie des analystes"
        with contextlib.ExitStack() as reading:
            kept = reading.enter_context(reading_kept_file(build, purpose))
            if kept is None:
                reading.enter_context(access(build, "read", purpose, wait=wait_seconds))
                con, alias = connect_build(build, wait_seconds)
            else:  # kpi run's file, still open after its last step
                con = kept.cursor()
                alias = con.execute("select current_database()").fetchone()[0]
                reading.enter_context(_checkpoint_meanwhile(kept, alias))
            try:
                tables, skipped, reused, repaired = write_copy(
                    con,
                    alias,
                    target,
                    publication_id,
                    run_id,
                    note,
                    previous=published,
                    prepared=ahead.take() if ahead is not None else None,
                )
                crash_point("publish:copy")
                # the copy's checkpoint (its new tables written to the file: ≈ 5 ms a table)
                # in a thread while the exports read them; the detach checkpoints what is left
                with _checkpoint_meanwhile(con, TARGET_ALIAS):
                    _write_exports(con, version_dir, tables, publication_id)
                con.execute(f"detach {TARGET_ALIAS}")
            except BaseException:
                if kept is not None:  # the file stays open for the run: the copy leaves it
                    with contextlib.suppress(duckdb.Error):
                        con.execute(f"detach database if exists {TARGET_ALIAS}")
                con.close()
                shutil.rmtree(version_dir, ignore_errors=True)
                raise
            con.close()
        crash_point("publish:exports")
        leftover_wal = target.with_name(target.name + ".wal")
        if leftover_wal.exists():  # never expected after a checkpoint and detach
            raise PublishError(f"journal DuckDB inattendu après publication : {leftover_wal}")
        fsync(target)
        target.chmod(0o444)
        fsync(version_dir)
        crash_point("publish:ready")
        # a log beside a published file comes from a writer killed there (the pipeline never
        # writes it): DuckDB would replay it onto a file of that name. Each publication has
        # its own folder now; this removes one left beside the file of the earlier layout.
        with contextlib.suppress(FileNotFoundError):
            published.with_name(published.name + ".wal").unlink()
        before = switch_current(publications, publication_id)
        crash_point("publish:switched")
        migrated = link_in_place(published, exports, publications, publication_id)
        clean_versions(publications, publication_id, before, published.name, exports, migrated)
    return Publication(
        publication_id=publication_id,
        path=published,
        exports=exports,
        tables=tables,
        skipped=skipped,
        reused=reused,
        repaired=repaired,
        seconds=time.monotonic() - started,
    )


def publication_info(path: Path) -> dict | None:
    """``publication.info`` of a published copy, None when there is none: publication_id,
    published_at, run_id, duckdb_version, note and storage_version (None for a publication
    made before it was recorded)."""
    if not path.exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        cursor = con.execute("select * from publication.info")
        row = cursor.fetchone()
        keys = [column[0] for column in cursor.description]
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    if not row:
        return None
    info = dict(zip(keys, row, strict=True))
    info.setdefault("storage_version", None)
    return info
