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
   ``fsync``. The analysts' paths are fixed links through it (made once, ``_link_in_place``):
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

``verify_publication()`` (run by ``kpi verify``) checks the published copy and the exports
against what was published: ``publication.info``, each relation of ``publication.tables``
with its row count and its fingerprint recomputed from the file, no unlisted relation, the
file read-only, and each ``exports/marts/<table>.parquet`` of the current publication with
the rows of its table (same order-independent sum of row hashes).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.crash import crash_point
from dagster_project.settings import Settings
from dagster_project.warehouse.access import access

RESTRICTED_SCHEMAS = ("raw_restricted", "restricted")
PERSONAL_COLUMNS = ("matricule", "age_months", "date_naissance", "agent_pseudonym")
PUBLICATION_SCHEMA = "publication"
EXPORTED_SCHEMAS = ("marts",)
TARGET_ALIAS = "kpi_publication_target"
LOCK_WAIT_SECONDS = 300.0
FINGERPRINT_ROW = "kpi_fingerprint_row"
MAX_FREE_FRACTION = 0.5  # above it, the next publication rewrites the file whole
# Each publication is one folder, <warehouse folder>/.publications/<id>/ (the copy and its
# Parquet exports); `current` designates the one in place, and the analysts' paths are fixed
# links through it: warehouse.duckdb -> .publications/current/warehouse.duckdb,
# exports/marts -> ../.publications/current/marts. Replacing `current` switches both at once.
PUBLICATIONS = ".publications"
CURRENT = "current"


class PublishError(RuntimeError):
    """The publication could not be made; the previous one stays in place."""


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


# --- the build database ------------------------------------------------------------------------


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


def recover_after_crash(path: Path) -> bool:
    """Replay the write-ahead log a killed process left, when DuckDB cannot do it alone.

    DuckDB 1.5.5 cannot open a database whose log holds an ``alter table ... add column`` on
    a table with a ``default current_timestamp`` column ("Failure while replaying WAL file:
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


def _connect_build(build: Path, wait_seconds: float = LOCK_WAIT_SECONDS):
    """An in-memory connection with the build attached read-only under its own catalog name
    (the name dbt's views use), waiting while another process writes it."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    alias = build.stem
    while True:
        con = duckdb.connect()
        try:
            con.execute(f"attach {_literal(build)} as {_ident(alias)} (read_only)")
            return con, alias
        except duckdb.IOException:
            con.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


# --- helpers ----------------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive_lock(
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


def _personal_sources() -> list[str]:
    from dagster_project.contracts.model import default_contracts

    return sorted(c.source_id for c in default_contracts().values() if c.sensitivity == "personal")


def _relations(con, alias: str) -> list[tuple[str, str, str, str | None]]:
    """(schema, name, kind, comment) of every table and view of the build."""
    return con.execute(
        """
        select schema_name, table_name, 'table', comment from duckdb_tables()
        where database_name = $1
        union all
        select schema_name, view_name, 'view', comment from duckdb_views()
        where database_name = $1 and not internal
        order by 1, 2
        """,
        [alias],
    ).fetchall()


def _personal_relations(con, alias: str) -> set[tuple[str, str]]:
    rows = con.execute(
        "select distinct schema_name, table_name from duckdb_columns() "
        "where database_name = ? and lower(column_name) in "
        f"({', '.join(_literal(c) for c in PERSONAL_COLUMNS)})",
        [alias],
    ).fetchall()
    return {(s, t) for s, t in rows}


def _select_list(con, alias: str, schema: str, name: str, personal_sources: list[str]) -> str:
    """``*``, except for the rejection problems: values of personal sources blanked."""
    if (schema, name) != ("ingest", "delivery_problems") or not personal_sources:
        return "*"
    sources = ", ".join(_literal(s) for s in personal_sources)
    return (
        "* replace (case when delivery_id in (select delivery_id from "
        f"{_ident(alias)}.ingest.deliveries where source_id in ({sources})) "
        "then null else value end as value)"
    )


# --- publication ------------------------------------------------------------------------------


def new_publication_id() -> str:
    return dt.datetime.now().strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def _remove_leftovers(folder: Path, name: str) -> None:
    """Temporary files of publications that died (SIGKILL, power loss) before their swap."""
    for path in folder.glob(f".{name}.publish-*"):
        with contextlib.suppress(OSError):
            path.unlink()


def _rows_hash(con, source_sql: str) -> tuple[int, str]:
    """Row count and order-independent sum of the rows' hashes (one aggregate)."""
    count, rows_hash = con.execute(
        f"select count(*), coalesce(sum(hash({FINGERPRINT_ROW})::hugeint), 0)::varchar "
        f"from ({source_sql}) {FINGERPRINT_ROW}"
    ).fetchone()
    return count, rows_hash


def _columns_of(con, alias: str) -> dict[tuple[str, str], list[tuple[str, str, str | None]]]:
    """(name, type, comment) of the columns of every table and view of a database, in order
    (one catalog query: ``duckdb_columns()`` costs tens of milliseconds per call)."""
    columns: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
    for schema, name, column, data_type, comment in con.execute(
        "select schema_name, table_name, column_name, data_type, comment from duckdb_columns() "
        "where database_name = ? order by schema_name, table_name, column_index",
        [alias],
    ).fetchall():
        columns.setdefault((schema, name), []).append((column, data_type, comment))
    return columns


def _digest(comment: str | None, columns: list, count: int, rows_hash: str) -> str:
    """A relation's fingerprint, as one digest: its comment, its columns (name, type,
    comment), its row count and the order-independent sum of its rows' hashes
    (``_rows_hash``). Equal digests mean the copy holds exactly these rows under these names.
    The same function fingerprints a relation of the build, a table of a published file
    (``_write_copy``) and a table checked by ``verify_publication``."""
    return hashlib.sha256(
        json.dumps([duckdb.__version__, comment or None, columns, count, rows_hash]).encode()
    ).hexdigest()


def _reusable(published: Path) -> dict[str, str]:
    """Relations of the current publication that a new one may keep as they are, with their
    fingerprints: none when there is no publication, when it comes from another DuckDB version
    or has no fingerprints (older publications), or when half its blocks are free (the file
    is then rewritten whole, which compacts it)."""
    if not published.exists():
        return {}
    try:
        con = duckdb.connect(str(published), read_only=True)
    except duckdb.Error:
        return {}
    try:
        has_fingerprints = con.execute(
            "select count(*) from duckdb_columns() where schema_name = ? and table_name = "
            "'tables' and column_name = 'fingerprint'",
            [PUBLICATION_SCHEMA],
        ).fetchone()[0]
        if not has_fingerprints:
            return {}
        (version,) = con.execute(f"select duckdb_version from {PUBLICATION_SCHEMA}.info").fetchone()
        if version != duckdb.__version__:
            return {}
        total, free = con.execute(
            "select total_blocks, free_blocks from pragma_database_size() "
            "where database_name = current_database()"
        ).fetchone()
        if total and free / total > MAX_FREE_FRACTION:
            return {}
        rows = con.execute(
            f"select schema_name, table_name, fingerprint from {PUBLICATION_SCHEMA}.tables "
            "where fingerprint is not null"
        ).fetchall()
        return {f"{s}.{t}": f for s, t, f in rows}
    except duckdb.Error:
        return {}
    finally:
        con.close()


def _write_copy(
    con,
    alias: str,
    target: Path,
    publication_id: str,
    run_id: str | None,
    note: str | None,
    previous: Path | None = None,
) -> tuple[dict[str, int], list[str], list[str], list[str]]:
    """Write the publication into ``target``; return the tables written (with their rows),
    the relations left out, kept and repaired. With ``previous`` (the current publication),
    start from a byte copy of it and rewrite only the relations whose fingerprint changed:
    a run that rebuilt a few models republishes those, not the whole warehouse. A relation
    is kept only when its table in the copy still has the recorded fingerprint (one
    aggregate per kept table): one changed in the published file since is *repaired*,
    rewritten from the build. The result holds the same relations, rows and comments as a
    copy made from scratch (test), and no restricted data either: the previous publication
    never held any. The fingerprint recorded is that of the table as written (a view whose
    rows vary between two reads, e.g. a float sum, gets the one of the rows it published)."""
    reusable = _reusable(previous) if previous is not None else {}
    if reusable:
        # a relation published before and restricted now (a source that became personal,
        # e.g. rh_arretes moved from raw to raw_restricted): its rows would stay in the freed
        # blocks of a byte copy, so the copy is written whole
        personal_now = _personal_relations(con, alias)
        restricted_names = set(_personal_sources()) | {
            t for s, t, _kind, _comment in _relations(con, alias) if s in RESTRICTED_SCHEMAS
        }
        if any(
            q.split(".", 1)[1] in restricted_names or tuple(q.split(".", 1)) in personal_now
            for q in reusable
        ):
            reusable = {}
    if reusable:
        shutil.copyfile(previous, target)
    con.execute(f"attach {_literal(target)} as {TARGET_ALIAS}")
    existing: dict[str, str] = {}  # schema.name -> table or view, in the copy
    copy_comments: dict[tuple[str, str], str | None] = {}
    copy_columns: dict[tuple[str, str], list] = {}
    if reusable:
        in_copy = [r for r in _relations(con, TARGET_ALIAS) if r[0] != PUBLICATION_SCHEMA]
        existing = {f"{s}.{t}": kind for s, t, kind, _comment in in_copy}
        copy_comments = {(s, t): comment for s, t, _kind, comment in in_copy}
        copy_columns = _columns_of(con, TARGET_ALIAS)
        con.execute(f"drop schema {TARGET_ALIAS}.{PUBLICATION_SCHEMA} cascade")
    build_columns = _columns_of(con, alias)
    personal = _personal_relations(con, alias)
    personal_sources = _personal_sources()
    tables: dict[str, int] = {}
    kinds: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    written: dict[str, tuple[tuple[str, str], str]] = {}  # rewritten: key, rows' hash
    skipped: list[str] = []
    reused: list[str] = []
    repaired: list[str] = []
    created_schemas: set[str] = set()
    for schema, name, kind, comment in _relations(con, alias):
        qualified = f"{schema}.{name}"
        if (
            schema in RESTRICTED_SCHEMAS
            or (schema, name) in personal
            or schema == (PUBLICATION_SCHEMA)
        ):
            skipped.append(qualified)
            continue
        if schema not in created_schemas:
            con.execute(f"create schema if not exists {TARGET_ALIAS}.{_ident(schema)}")
            created_schemas.add(schema)
        select = _select_list(con, alias, schema, name, personal_sources)
        source_sql = f"select {select} from {_ident(alias)}.{_ident(schema)}.{_ident(name)}"
        key = (schema, name)
        columns = build_columns.get(key, [])
        destination = f"{TARGET_ALIAS}.{_ident(schema)}.{_ident(name)}"
        recorded = reusable.get(qualified) if existing.get(qualified) == "table" else None
        if recorded is not None:
            try:  # a view the build cannot evaluate any more is left out, not fatal
                rows, rows_hash = _rows_hash(con, source_sql)
            except duckdb.Error:
                if kind != "view":
                    raise
                skipped.append(qualified)
                continue
            if _digest(comment, columns, rows, rows_hash) == recorded:
                # trusted on its content, not on its record: the copied table, one aggregate
                try:
                    actual = _digest(
                        copy_comments.get(key),
                        copy_columns.get(key, []),
                        *_rows_hash(con, f"select * from {destination}"),
                    )
                except duckdb.Error:  # unreadable in the copy: rewritten
                    actual = None
                if actual == recorded:
                    tables[qualified], kinds[qualified] = rows, kind
                    fingerprints[qualified] = recorded
                    reused.append(qualified)
                    continue
                repaired.append(qualified)
        if qualified in existing:
            dropped = existing.pop(qualified)
            con.execute(f"drop {'view' if dropped == 'view' else 'table'} {destination}")
        try:  # a view the build cannot evaluate any more is left out, not fatal
            con.execute(f"create table {destination} as {source_sql}")
        except duckdb.Error:
            if kind != "view":
                raise
            skipped.append(qualified)
            continue
        if comment:
            con.execute(f"comment on table {destination} is {_literal(comment)}")
        for column, _type, column_comment in columns:
            if column_comment:
                con.execute(
                    f"comment on column {destination}.{_ident(column)} "
                    f"is {_literal(column_comment)}"
                )
        # fingerprinted as written (the rows a view gave this time), completed below
        rows, rows_hash = _rows_hash(con, f"select * from {destination}")
        tables[qualified], kinds[qualified] = rows, kind
        written[qualified] = (key, rows_hash)
    if written:
        comments_now = {(s, t): c for s, t, _kind, c in _relations(con, TARGET_ALIAS)}
        columns_now = _columns_of(con, TARGET_ALIAS)
        for qualified, (key, rows_hash) in written.items():
            fingerprints[qualified] = _digest(
                comments_now.get(key), columns_now.get(key, []), tables[qualified], rows_hash
            )
    for qualified, kind in sorted(existing.items()):  # gone from the build, or now left out
        if qualified in tables:
            continue
        schema, name = qualified.split(".", 1)
        con.execute(
            f"drop {'view' if kind == 'view' else 'table'} "
            f"{TARGET_ALIAS}.{_ident(schema)}.{_ident(name)}"
        )
    for (schema,) in con.execute(
        "select schema_name from duckdb_schemas() where database_name = ? and not internal",
        [TARGET_ALIAS],
    ).fetchall():
        if schema not in created_schemas and schema != "main":
            con.execute(f"drop schema {TARGET_ALIAS}.{_ident(schema)} cascade")
    pub = f"{TARGET_ALIAS}.{PUBLICATION_SCHEMA}"
    con.execute(f"create schema {pub}")
    con.execute(
        f"create table {pub}.info (publication_id varchar, published_at timestamp, "
        "run_id varchar, duckdb_version varchar, note varchar)"
    )
    con.execute(
        f"insert into {pub}.info values (?, ?, ?, ?, ?)",
        [
            publication_id,
            dt.datetime.now().replace(microsecond=0),
            run_id,
            duckdb.__version__,
            note,
        ],
    )
    con.execute(
        f"comment on table {pub}.info is "
        + _literal(
            "Publication de l'entrepôt : identifiant, date, exécution du pipeline d'origine. "
            "Une ligne."
        )
    )
    con.execute(
        f"create table {pub}.tables (schema_name varchar, table_name varchar, "
        "built_as varchar, row_count bigint, fingerprint varchar)"
    )
    con.executemany(
        f"insert into {pub}.tables values (?, ?, ?, ?, ?)",
        [[*q.split(".", 1), kinds[q], n, fingerprints[q]] for q, n in tables.items()],
    )
    con.execute(
        f"comment on table {pub}.tables is "
        + _literal(
            "Tables de la copie publiée, avec leur nombre de lignes ; built_as = view pour "
            "une vue de la base de construction matérialisée en table ; fingerprint = empreinte "
            "du contenu (colonnes, commentaires, lignes) de la table écrite, qui permet à la "
            "publication suivante de garder telle quelle une table inchangée et à kpi verify "
            "de vérifier la copie publiée."
        )
    )
    return tables, skipped, reused, repaired


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
                f"copy (select * from {TARGET_ALIAS}.{_ident(schema)}.{_ident(name)} "
                f"order by all) to {_literal(path)} (format parquet, compression zstd)"
            )
            _fsync(path)
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
        _fsync(folder)
    _fsync(version_dir)


def _switch(publications: Path, version: str) -> str | None:
    """Point ``current`` at the new version (a symbolic link replaced atomically): the one
    rename that switches the published copy and its exports together. Returns the version
    it designated before."""
    link = publications / CURRENT
    before = os.readlink(link) if link.is_symlink() else None
    tmp = publications / f".{CURRENT}.link-{version}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(version, tmp)
    os.replace(tmp, link)
    _fsync(publications)
    return before


def _fixed_link(link: Path, target: str) -> bool:
    """``link`` -> ``target`` (relative), replaced atomically; False when it already was."""
    if link.is_symlink() and os.readlink(link) == target:
        return False
    tmp = link.with_name(f".{link.name}.link-tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    _fsync(link.parent)
    return True


def _link_in_place(published: Path, exports: Path, publications: Path, version: str) -> bool:
    """The analysts' paths as fixed links through ``current``: ``warehouse.duckdb`` and
    ``exports/<schema>``. Made once: the first publication in this layout replaces the file
    and the links of the earlier one (``exports/marts -> .versions/<id>/marts``), so only
    then can a reader see the new copy beside the previous exports, for an instant. A real
    folder put at ``exports/<schema>`` by hand is set aside, never deleted. Returns True when
    a link of the earlier layout was replaced (its versions are kept one more publication,
    for readers still in them)."""
    _fixed_link(
        published, os.path.relpath(publications / CURRENT / published.name, published.parent)
    )
    exports.mkdir(parents=True, exist_ok=True)
    migrated = False
    for schema in EXPORTED_SCHEMAS:
        link = exports / schema
        if link.exists() and not link.is_symlink():
            os.replace(link, publications / f"manual-{version}-{schema}")
        migrated |= link.is_symlink() and ".versions" in Path(os.readlink(link)).parts
        _fixed_link(link, os.path.relpath(publications / CURRENT / schema, exports))
    return migrated


def _clean_versions(
    publications: Path, version: str, before: str | None, name: str, exports: Path, migrated: bool
) -> None:
    """Keep the publication in place and the whole previous one (its copy and its exports:
    a reader that resolved ``warehouse.duckdb`` through the link an instant before the switch
    opens the previous file after it, and must find it; measured by test_concurrency, where a
    reader failed with « database does not exist » when the previous file was removed at
    once); remove a log left beside the previous copy, and every other folder, those of
    publications killed before their switch included. A publication is therefore readable
    until the next one after it is made."""
    if before and before != version and (publications / before).is_dir():
        for path in (publications / before).glob(f"{name}.wal"):  # a log beside it only
            with contextlib.suppress(OSError):
                path.unlink()
    for old in publications.iterdir():
        if old.name in (version, before, CURRENT) or old.name.startswith("manual-"):
            continue
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                old.unlink()
    legacy = exports / ".versions"  # the earlier layout, once nothing designates it
    if legacy.is_dir() and not migrated:
        for old in legacy.iterdir():
            if not old.name.startswith("manual-"):
                shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):
            legacy.rmdir()
    for stale in exports.glob(".*.link-*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def publish(
    settings: Settings,
    *,
    run_id: str | None = None,
    note: str | None = None,
    wait_seconds: float = LOCK_WAIT_SECONDS,
) -> Publication:
    """Publish the build database: a read-only copy for analysts, and Parquet exports."""
    started = time.monotonic()
    build = ensure_build(settings)
    if not build.exists():
        raise PublishError(f"rien à publier : la base de construction {build} n'existe pas")
    published = settings.warehouse
    published.parent.mkdir(parents=True, exist_ok=True)
    exports = settings.exports_dir
    lock = build.with_name(build.name + ".publish.lock")
    with _exclusive_lock(lock, wait_seconds):
        _remove_leftovers(published.parent, published.name)  # of the earlier layout
        publications = published.parent / PUBLICATIONS
        publications.mkdir(exist_ok=True)
        publication_id = new_publication_id()
        version_dir = publications / publication_id  # invisible until `current` names it
        version_dir.mkdir()
        target = version_dir / published.name
        # the build is read under the read access (a run's step waits for the copy, the
        # copy waits for a step): the connection is closed before the access is released
        with access(build, "read", "la publication de la copie des analystes", wait=wait_seconds):
            con, alias = _connect_build(build, wait_seconds)
            try:
                tables, skipped, reused, repaired = _write_copy(
                    con, alias, target, publication_id, run_id, note, previous=published
                )
                crash_point("publish:copy")
                _write_exports(con, version_dir, tables, publication_id)
                con.execute(f"checkpoint {TARGET_ALIAS}")
                con.execute(f"detach {TARGET_ALIAS}")
            except BaseException:
                con.close()
                shutil.rmtree(version_dir, ignore_errors=True)
                raise
            con.close()
        crash_point("publish:exports")
        leftover_wal = target.with_name(target.name + ".wal")
        if leftover_wal.exists():  # never expected after a checkpoint and detach
            raise PublishError(f"journal DuckDB inattendu après publication : {leftover_wal}")
        _fsync(target)
        target.chmod(0o444)
        _fsync(version_dir)
        crash_point("publish:ready")
        # a log beside a published file comes from a writer killed there (the pipeline never
        # writes it): DuckDB would replay it onto a file of that name. Each publication has
        # its own folder now; this removes one left beside the file of the earlier layout.
        with contextlib.suppress(FileNotFoundError):
            published.with_name(published.name + ".wal").unlink()
        before = _switch(publications, publication_id)
        crash_point("publish:switched")
        migrated = _link_in_place(published, exports, publications, publication_id)
        _clean_versions(publications, publication_id, before, published.name, exports, migrated)
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
    """``publication.info`` of a published copy, None when there is none."""
    if not path.exists():
        return None
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(
            "select publication_id, published_at, run_id, duckdb_version, note "
            "from publication.info"
        ).fetchone()
    except duckdb.CatalogException:
        return None
    finally:
        con.close()
    keys = ("publication_id", "published_at", "run_id", "duckdb_version", "note")
    return dict(zip(keys, row, strict=True)) if row else None


# --- verification of the published copy (``kpi verify``) --------------------------------------

COPY = "copie publiée"
EXPORTS = "exports Parquet"
CHECK_ALIAS = "kpi_published"


@dataclass
class PublicationCheck:
    """What ``verify_publication`` found, in French: ``problems`` make ``kpi verify`` exit 3."""

    file_name: str
    present: bool = False
    publication_id: str | None = None
    tables: int = 0  # relations of publication.tables checked in the published file
    exports: int = 0  # Parquet files checked
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


@dataclass
class _Listed:
    """A table of ``publication.tables`` and what the published file holds for it."""

    row_count: int  # recorded
    fingerprint: str | None  # recorded, None when it cannot be compared
    comment: str | None = None
    columns: list | None = None  # None: absent or unreadable in the file
    count: int | None = None
    rows_hash: str | None = None

    def matches(self, count: int, rows_hash: str) -> bool:
        """These rows, under this table's comment and columns, are what was published."""
        if count != self.row_count:
            return False
        if self.fingerprint is None:  # nothing better to compare with
            return True
        return _digest(self.comment, self.columns, count, rows_hash) == self.fingerprint

    @property
    def intact(self) -> bool:
        return self.columns is not None and self.matches(self.count, self.rows_hash)


def verify_publication(
    settings: Settings, wait_seconds: float = LOCK_WAIT_SECONDS
) -> PublicationCheck:
    """Check the published copy and its Parquet exports against what was published.

    In ``warehouse.duckdb``: ``publication.info`` (one row) and ``publication.tables``
    present; every relation listed there exists as a table with its recorded row count and
    its fingerprint recomputed from the file (same digest as the publication's: columns,
    comments, rows); no relation outside that list (the ``publication`` schema aside); the
    file read-only (0444) and without a write-ahead log beside it. In ``exports/``: the link
    ``marts`` designates the version of the current ``publication_id``, its
    ``_publication.json`` lists the published marts with their row counts, and each
    ``<table>.parquet`` has the columns, the row count and the rows of its table (the same
    order-independent sum of row hashes, the Parquet columns read as the table's types); no
    other Parquet file. No publication runs meanwhile (shared publication lock).
    Returns a ``PublicationCheck``; nothing is a problem when there is no published copy yet.
    """
    published = settings.warehouse
    check = PublicationCheck(file_name=published.name)
    if not published.exists():
        return check
    check.present = True
    lock = settings.build_warehouse.with_name(settings.build_warehouse.name + ".publish.lock")
    with _exclusive_lock(lock, wait_seconds, shared=True):
        _check_file(published, check)
        con = duckdb.connect()
        try:
            try:
                con.execute(f"attach {_literal(published)} as {CHECK_ALIAS} (read_only)")
            except duckdb.Error as exc:
                check.problems.append(
                    f"{COPY} — {published.name} : illisible ({type(exc).__name__})"
                )
                return check
            contents = _check_tables(con, published.name, check)
            if contents is not None:
                _check_exports(con, settings.exports_dir, contents, check)
        finally:
            con.close()
    return check


def _check_file(published: Path, check: PublicationCheck) -> None:
    mode = stat.S_IMODE(published.stat().st_mode)
    if mode != 0o444:
        check.problems.append(
            f"{COPY} — {published.name} : droits {mode:04o} au lieu de 0444 (lecture seule) : "
            "le fichier a pu être modifié depuis sa publication"
        )
    wal = published.with_name(published.name + ".wal")
    if not wal.exists():  # DuckDB writes the log beside the file a link designates
        wal = Path(os.path.realpath(published) + ".wal")
    if wal.exists():
        check.problems.append(
            f"{COPY} — {published.name} : journal d'écriture {wal.name} présent : le fichier "
            "a été ouvert en écriture depuis sa publication"
        )


def _check_tables(con, file_name: str, check: PublicationCheck) -> dict | None:
    """The published relations checked against ``publication.tables``; returns, for each
    listed table present, its row count, rows' hash and columns (for the exports)."""
    problems = check.problems
    present = {
        (s, t): kind
        for s, t, kind, _comment in _relations(con, CHECK_ALIAS)
        if s != PUBLICATION_SCHEMA
    }
    listed_columns = {
        name
        for (name,) in con.execute(
            "select column_name from duckdb_columns() where database_name = ? "
            "and schema_name = ? and table_name = 'tables'",
            [CHECK_ALIAS, PUBLICATION_SCHEMA],
        ).fetchall()
    }
    version = None
    try:
        info = con.execute(
            f"select publication_id, duckdb_version from {CHECK_ALIAS}.{PUBLICATION_SCHEMA}.info"
        ).fetchall()
    except duckdb.Error:
        info = []
    if len(info) != 1:
        problems.append(
            f"{COPY} — {file_name} : publication.info "
            + ("absente" if not info else f"a {len(info)} lignes au lieu d'une")
            + " : on ne sait pas quelle publication ce fichier contient"
        )
    else:
        check.publication_id, version = info[0]
    if not {"schema_name", "table_name", "row_count"} <= listed_columns:
        problems.append(
            f"{COPY} — {file_name} : publication.tables absente : la liste des tables "
            "publiées manque, leur contenu ne peut pas être vérifié"
        )
        return None
    has_fingerprints = "fingerprint" in listed_columns
    listed = con.execute(
        "select schema_name, table_name, row_count, "
        + ("fingerprint" if has_fingerprints else "null")
        + f" from {CHECK_ALIAS}.{PUBLICATION_SCHEMA}.tables order by 1, 2"
    ).fetchall()
    comparable = has_fingerprints and version == duckdb.__version__
    if not has_fingerprints:
        check.warnings.append(
            f"{COPY} : publication antérieure aux empreintes, seuls les nombres de lignes "
            "sont vérifiés (republier : kpi publish)"
        )
    elif not comparable:
        check.warnings.append(
            f"{COPY} : publiée avec DuckDB {version}, vérifiée avec DuckDB "
            f"{duckdb.__version__} : les empreintes ne sont pas comparables, seuls les "
            "nombres de lignes et les exports Parquet sont vérifiés (republier : kpi publish)"
        )
    comments = {
        (s, t): c
        for s, t, c in con.execute(
            "select schema_name, table_name, comment from duckdb_tables() where database_name = ?",
            [CHECK_ALIAS],
        ).fetchall()
    }
    all_columns = _columns_of(con, CHECK_ALIAS)
    contents: dict[tuple[str, str], _Listed] = {}
    for schema, name, row_count, fingerprint in listed:
        label = f"{COPY} — table {schema}.{name}"
        item = contents[(schema, name)] = _Listed(row_count, fingerprint if comparable else None)
        kind = present.pop((schema, name), None)
        if kind is None:
            problems.append(f"{label} : absente (publiée avec {row_count} ligne(s))")
            continue
        if kind != "table":
            problems.append(f"{label} : remplacée par une vue")
            continue
        check.tables += 1
        try:
            item.count, item.rows_hash = _rows_hash(
                con, f"select * from {CHECK_ALIAS}.{_ident(schema)}.{_ident(name)}"
            )
        except duckdb.Error as exc:
            problems.append(f"{label} : illisible ({type(exc).__name__})")
            continue
        item.comment = comments.get((schema, name))
        item.columns = all_columns.get((schema, name), [])
        if item.count != row_count:
            problems.append(f"{label} : {item.count} ligne(s) au lieu de {row_count} publiée(s)")
        elif not item.intact:
            problems.append(
                f"{label} : contenu différent de celui publié (empreinte : valeurs, "
                "colonnes ou commentaires modifiés)"
            )
    for (schema, name), kind in sorted(present.items()):
        problems.append(
            f"{COPY} — {'vue' if kind == 'view' else 'table'} {schema}.{name} : "
            "absente de la liste des tables publiées (publication.tables), ajoutée depuis"
        )
    return contents


def _check_exports(con, exports: Path, contents: dict, check: PublicationCheck) -> None:
    problems = check.problems
    for schema in EXPORTED_SCHEMAS:
        published = {name: v for (s, name), v in contents.items() if s == schema}
        link = exports / schema
        where = f"{exports.name}/{schema}"
        if not link.is_symlink():
            if link.exists():
                problems.append(
                    f"{EXPORTS} — {where} : dossier ordinaire au lieu du lien vers la "
                    "publication en place"
                )
            elif published:
                problems.append(f"{EXPORTS} — {where} : absent")
            continue
        version = Path(os.path.realpath(link)).parent.name  # through `current`
        if check.publication_id and version != check.publication_id:
            problems.append(
                f"{EXPORTS} — {where} : désigne la publication {version} au lieu de celle en "
                f"place ({check.publication_id})"
            )
            continue
        if not link.is_dir():
            problems.append(f"{EXPORTS} — {where} : la version {version} est absente")
            continue
        _check_listing(link, where, published, check)
        for name, item in sorted(published.items()):
            _check_parquet(con, link / f"{name}.parquet", where, f"{schema}.{name}", item, check)
        for path in sorted(link.glob("*.parquet")):
            if path.stem not in published:
                problems.append(
                    f"{EXPORTS} — {where}/{path.name} : aucune table publiée de ce nom, "
                    "fichier ajouté depuis"
                )


def _check_listing(folder: Path, where: str, published: dict, check: PublicationCheck) -> None:
    listing_path = folder / "_publication.json"
    label = f"{EXPORTS} — {where}/{listing_path.name}"
    try:
        listing = json.loads(listing_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        check.problems.append(f"{label} : absent")
        return
    except (OSError, ValueError):
        check.problems.append(f"{label} : illisible")
        return
    if not isinstance(listing, dict):
        check.problems.append(f"{label} : illisible")
        return
    if check.publication_id and listing.get("publication_id") != check.publication_id:
        check.problems.append(
            f"{label} : publication {listing.get('publication_id')} au lieu de "
            f"{check.publication_id}"
        )
    expected = {name: item.row_count for name, item in published.items()}
    if listing.get("tables") != expected:
        check.problems.append(
            f"{label} : la liste des tables et de leurs lignes diffère de la copie publiée"
        )


def _check_parquet(
    con, path: Path, where: str, table: str, item: _Listed, check: PublicationCheck
) -> None:
    """One Parquet export against its table: compared with the table when the table is
    intact, with the published fingerprint when the table itself changed (so an export
    that still holds the published rows is not reported for a change of its table)."""
    label = f"{EXPORTS} — {where}/{path.name}"
    if not path.is_file():
        check.problems.append(f"{label} : absent (table publiée {table})")
        return
    check.exports += 1
    source = f"read_parquet({_literal(path)})"
    try:
        names = [d[0] for d in con.execute(f"select * from {source} limit 0").description]
        if item.columns is None:  # the table is gone: only its published row count is known
            count, rows_hash = _rows_hash(con, f"select * from {source}")
        elif names != [c[0] for c in item.columns]:
            check.problems.append(
                f"{label} : colonnes différentes de celles de la table publiée {table}"
            )
            return
        else:  # read as the table's types: the same value hashes the same on both sides
            select = ", ".join(f"{_ident(c)}::{t} as {_ident(c)}" for c, t, _ in item.columns)
            count, rows_hash = _rows_hash(con, f"select {select} from {source}")
    except duckdb.Error as exc:
        check.problems.append(f"{label} : illisible ({type(exc).__name__})")
        return
    if count != item.row_count:
        check.problems.append(
            f"{label} : {count} ligne(s) au lieu de {item.row_count} publiée(s) "
            f"dans la table {table}"
        )
    elif item.columns is None:
        return
    elif item.intact and rows_hash != item.rows_hash:
        check.problems.append(f"{label} : contenu différent de celui de la table publiée {table}")
    elif not item.intact and not item.matches(count, rows_hash):
        check.problems.append(
            f"{label} : contenu différent de celui publié (empreinte de la table {table})"
        )


def format_publication_check(check: PublicationCheck) -> str:
    """The French report ``kpi verify`` prints after the releases'."""
    if not check.present:
        return (
            f"Copie publiée : aucune pour l'instant ({check.file_name} absent), rien à "
            "vérifier (information, pas un écart)."
        )
    lines = [f"avertissement : {w}" for w in check.warnings]
    lines += [f"ÉCART : {p}" for p in check.problems]
    what = (
        f"copie publiée {check.publication_id or '(identifiant inconnu)'} ({check.file_name}, "
        f"{check.tables} table(s) vérifiée(s)) et exports Parquet ({check.exports} fichier(s))"
    )
    if check.intact:
        lines.append(f"{what[0].upper()}{what[1:]} : intègres, conformes à ce qui a été publié.")
    else:
        lines.append(f"{len(check.problems)} écart(s) dans la {what}.")
    return "\n".join(lines)


# --- after a run launched by Dagster (UI, sensor, schedule) ------------------------------------


def blocking_failures_of(settings: Settings, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed in the run, read from the build."""
    from dagster_project.release.freeze import blocking_failures

    build = settings.build_warehouse
    if not build.exists():
        return []
    with access(build, "read", "la vérification des contrôles avant publication"):
        con, alias = _connect_build(build)
        try:
            con.execute(f"use {_ident(alias)}")
            return blocking_failures(con, run_id)
        finally:
            con.close()


SENSOR_INTERVAL_SECONDS = 5


def build_publication_sensor(settings: Settings | None = None):
    """``publish_after_run``, a run-status sensor (on by default): after every successful run
    of this code location launched through Dagster (the UI, the ``new_deliveries`` sensor, a
    schedule), publish the analysts' copy and the Parquet exports, unless a blocking check of
    that run failed (then the copy stays as it was, and the tick says why). A failed run
    triggers nothing. Runs of ``kpi run`` are left alone: it publishes by itself.
    """
    from dagster import (
        DagsterRunStatus,
        DefaultSensorStatus,
        SkipReason,
        run_status_sensor,
    )

    from dagster_project.defs.instance import CLI_TRIGGER

    @run_status_sensor(
        name="publish_after_run",
        run_status=DagsterRunStatus.SUCCESS,
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
        description="Après chaque exécution réussie lancée par Dagster (interface, capteur, "
        "planification) et sans contrôle bloquant en échec, publie la copie en lecture seule des "
        "analystes (warehouse.duckdb) et les exports Parquet.",
    )
    def publish_after_run(context):  # RunStatusSensorContext (no annotation: local import)
        run = context.dagster_run
        if run.tags.get("kpi/trigger") == CLI_TRIGGER:
            return SkipReason(f"exécution {run.run_id[:8]} lancée par kpi run, qui publie lui-même")
        current = settings or Settings.from_env()
        failures = blocking_failures_of(current, run.run_id)
        if failures:
            return SkipReason(
                f"exécution {run.run_id[:8]} : {len(failures)} contrôle(s) bloquant(s) en échec, "
                "la copie publiée ne change pas"
            )
        publication = publish(current, run_id=run.run_id)
        context.log.info(f"publication {publication.publication_id} en place")
        if publication.repaired:
            context.log.warning(
                "copie publiée modifiée depuis la publication précédente, tables réécrites "
                "depuis la base de construction : " + ", ".join(publication.repaired)
            )
        return SkipReason(
            f"exécution {run.run_id[:8]} publiée : {publication.publication_id} "
            f"({len(publication.tables)} tables, {publication.seconds:.1f} s)"
        )

    return publish_after_run
