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

``publication_check.verify_publication()`` (run by ``kpi verify``) checks the published copy
and its exports against what was published, with the same fingerprints (``hash_rows``,
``columns_of``, ``relation_fingerprint``). The sensor that publishes after a run launched
through Dagster is Dagster wiring: ``dagster_project.defs.sensors``.
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
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.lib.crash import crash_point
from dagster_project.settings import Settings
from dagster_project.warehouse.access import access
from dagster_project.warehouse.recovery import recover_after_crash

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


def _fsync(path: Path) -> None:
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


def _personal_sources() -> list[str]:
    from dagster_project.contracts.model import default_contracts

    return sorted(c.source_id for c in default_contracts().values() if c.sensitivity == "personal")


def list_relations(con, alias: str) -> list[tuple[str, str, str, str | None]]:
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
        f"({', '.join(quote_literal(c) for c in PERSONAL_COLUMNS)})",
        [alias],
    ).fetchall()
    return {(s, t) for s, t in rows}


def _select_list(con, alias: str, schema: str, name: str, personal_sources: list[str]) -> str:
    """``*``, except for the rejection problems: values of personal sources blanked."""
    if (schema, name) != ("ingest", "delivery_problems") or not personal_sources:
        return "*"
    sources = ", ".join(quote_literal(s) for s in personal_sources)
    return (
        "* replace (case when delivery_id in (select delivery_id from "
        f"{quote_ident(alias)}.ingest.deliveries where source_id in ({sources})) "
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


def hash_rows(con, source_sql: str) -> tuple[int, str]:
    """Row count and order-independent sum of the rows' hashes (one aggregate)."""
    count, rows_hash = con.execute(
        f"select count(*), coalesce(sum(hash({FINGERPRINT_ROW})::hugeint), 0)::varchar "
        f"from ({source_sql}) {FINGERPRINT_ROW}"
    ).fetchone()
    return count, rows_hash


def columns_of(con, alias: str) -> dict[tuple[str, str], list[tuple[str, str, str | None]]]:
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


def relation_fingerprint(comment: str | None, columns: list, count: int, rows_hash: str) -> str:
    """A relation's fingerprint, as one digest: its comment, its columns (name, type,
    comment), its row count and the order-independent sum of its rows' hashes
    (``hash_rows``). Equal digests mean the copy holds exactly these rows under these names.
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
            t for s, t, _kind, _comment in list_relations(con, alias) if s in RESTRICTED_SCHEMAS
        }
        if any(
            q.split(".", 1)[1] in restricted_names or tuple(q.split(".", 1)) in personal_now
            for q in reusable
        ):
            reusable = {}
    if reusable:
        shutil.copyfile(previous, target)
    con.execute(f"attach {quote_literal(target)} as {TARGET_ALIAS}")
    existing: dict[str, str] = {}  # schema.name -> table or view, in the copy
    copy_comments: dict[tuple[str, str], str | None] = {}
    copy_columns: dict[tuple[str, str], list] = {}
    if reusable:
        in_copy = [r for r in list_relations(con, TARGET_ALIAS) if r[0] != PUBLICATION_SCHEMA]
        existing = {f"{s}.{t}": kind for s, t, kind, _comment in in_copy}
        copy_comments = {(s, t): comment for s, t, _kind, comment in in_copy}
        copy_columns = columns_of(con, TARGET_ALIAS)
        con.execute(f"drop schema {TARGET_ALIAS}.{PUBLICATION_SCHEMA} cascade")
    build_columns = columns_of(con, alias)
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
    for schema, name, kind, comment in list_relations(con, alias):
        qualified = f"{schema}.{name}"
        if (
            schema in RESTRICTED_SCHEMAS
            or (schema, name) in personal
            or schema == (PUBLICATION_SCHEMA)
        ):
            skipped.append(qualified)
            continue
        if schema not in created_schemas:
            con.execute(f"create schema if not exists {TARGET_ALIAS}.{quote_ident(schema)}")
            created_schemas.add(schema)
        select = _select_list(con, alias, schema, name, personal_sources)
        source_sql = (
            f"select {select} from {quote_ident(alias)}.{quote_ident(schema)}.{quote_ident(name)}"
        )
        key = (schema, name)
        columns = build_columns.get(key, [])
        destination = f"{TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(name)}"
        recorded = reusable.get(qualified) if existing.get(qualified) == "table" else None
        if recorded is not None:
            try:  # a view the build cannot evaluate any more is left out, not fatal
                rows, rows_hash = hash_rows(con, source_sql)
            except duckdb.Error:
                if kind != "view":
                    raise
                skipped.append(qualified)
                continue
            if relation_fingerprint(comment, columns, rows, rows_hash) == recorded:
                # trusted on its content, not on its record: the copied table, one aggregate
                try:
                    actual = relation_fingerprint(
                        copy_comments.get(key),
                        copy_columns.get(key, []),
                        *hash_rows(con, f"select * from {destination}"),
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
            con.execute(f"comment on table {destination} is {quote_literal(comment)}")
        for column, _type, column_comment in columns:
            if column_comment:
                con.execute(
                    f"comment on column {destination}.{quote_ident(column)} "
                    f"is {quote_literal(column_comment)}"
                )
        # fingerprinted as written (the rows a view gave this time), completed below
        rows, rows_hash = hash_rows(con, f"select * from {destination}")
        tables[qualified], kinds[qualified] = rows, kind
        written[qualified] = (key, rows_hash)
    if written:
        comments_now = {(s, t): c for s, t, _kind, c in list_relations(con, TARGET_ALIAS)}
        columns_now = columns_of(con, TARGET_ALIAS)
        for qualified, (key, rows_hash) in written.items():
            fingerprints[qualified] = relation_fingerprint(
                comments_now.get(key), columns_now.get(key, []), tables[qualified], rows_hash
            )
    for qualified, kind in sorted(existing.items()):  # gone from the build, or now left out
        if qualified in tables:
            continue
        schema, name = qualified.split(".", 1)
        con.execute(
            f"drop {'view' if kind == 'view' else 'table'} "
            f"{TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(name)}"
        )
    for (schema,) in con.execute(
        "select schema_name from duckdb_schemas() where database_name = ? and not internal",
        [TARGET_ALIAS],
    ).fetchall():
        if schema not in created_schemas and schema != "main":
            con.execute(f"drop schema {TARGET_ALIAS}.{quote_ident(schema)} cascade")
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
        + quote_literal(
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
        + quote_literal(
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
                f"copy (select * from {TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(name)} "
                f"order by all) to {quote_literal(path)} (format parquet, compression zstd)"
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
    with publication_lock(lock, wait_seconds):
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
            con, alias = connect_build(build, wait_seconds)
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
