"""Writing the analysts' copy of the build database, and the fingerprints that check it.

``write_copy`` copies every table and view of the build (attached read-only by
``build.connect_build``) into a new file as plain tables, *except* the HR restricted schemas
(``RESTRICTED_SCHEMAS``) and any relation with a personal column (``PERSONAL_COLUMNS``); the
values of the rejection problems of personal sources are blanked. The copy is logical
(``create table ... as select``): no byte of the restricted data ever reaches it. It ends
with the ``publication`` schema (``warehouse.schema``): what was published, and each
relation's fingerprint (``relation_fingerprint``: columns, comments, row count and the
order-independent sum of its rows' hashes, ``hash_rows``), computed on the table as written.
The next publication starts from a byte copy of the current one and rewrites only the
relations whose fingerprint changed (``_reusable`` says when it may), and
``publication_check`` checks the copy with the same fingerprints. The file is written in the
storage format ``STORAGE_VERSION`` (every DuckDB 1.x client opens it), not in the writing
library's default. The whole process: ``warehouse.publication``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from dagster_project.lib.hashing import sha256_text
from dagster_project.warehouse.build import quote_ident, quote_literal
from dagster_project.warehouse.relations import insert_rows, transaction
from dagster_project.warehouse.schema import PUBLICATION_SCHEMA, create_publication_tables

RESTRICTED_SCHEMAS = ("raw_restricted", "restricted")
PERSONAL_COLUMNS = ("matricule", "age_months", "date_naissance", "agent_pseudonym")
TARGET_ALIAS = "kpi_publication_target"
FINGERPRINT_ROW = "kpi_fingerprint_row"
MAX_FREE_FRACTION = 0.5  # above it, the next publication rewrites the file whole
# The storage format of the published file (``ATTACH ... (STORAGE_VERSION ...)``), recorded in
# ``publication.info.storage_version``. Analysts' clients (DBeaver's JDBC driver, the CLI they
# installed) lag behind the pipeline's DuckDB: without it the file takes the writing library's
# default (``storage_compatibility_version``: v0.10.2 in DuckDB 1.5, v2.0.0 in 2.x, which no
# 1.x client reads). v1.0.0, the format of the first 1.x release, holds all the copy needs
# (tables, comments, its column types): DuckDB 1.0.0 to 1.5.x and later read it
# (tests/integration/test_storage_compat.py opens a copy with DuckDB 1.0.0 from PyPI). The
# build database keeps the library's default: only the pipeline opens it.
STORAGE_VERSION = "v1.0.0"


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


def _rows_aggregate(source_sql: str) -> str:
    return (
        f"count(*), coalesce(sum(hash({FINGERPRINT_ROW})::hugeint), 0)::varchar "
        f"from ({source_sql}) {FINGERPRINT_ROW}"
    )


def hash_rows(con, source_sql: str) -> tuple[int, str]:
    """Row count and order-independent sum of the rows' hashes (one aggregate)."""
    count, rows_hash = con.execute(f"select {_rows_aggregate(source_sql)}").fetchone()
    return count, rows_hash


def hash_many(con, sources: list[str]) -> list[tuple[int, str]] | None:
    """``hash_rows`` of several queries in one statement (``union all`` of the aggregates):
    the same values, without a statement's fixed cost per relation (138 aggregates of a
    re-publication: 0.2-0.4 s one by one, 0.1 s at once). None when any of them fails (a
    view the build cannot evaluate any more): the caller then hashes them one by one."""
    if not sources:
        return []
    sql = " union all ".join(
        f"select {i} as kpi_position, {_rows_aggregate(source)}" for i, source in enumerate(sources)
    )
    try:
        rows = con.execute(sql).fetchall()
    except duckdb.Error:
        return None
    by_position = {position: (count, rows_hash) for position, count, rows_hash in rows}
    return [by_position[i] for i in range(len(sources))]


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
    (``write_copy``) and a table checked by ``verify_publication``."""
    return sha256_text(json.dumps([duckdb.__version__, comment or None, columns, count, rows_hash]))


def _reusable(con, alias: str) -> dict[str, str]:
    """Relations of the publication attached as ``alias`` (a byte copy of the current one) that
    a new one may keep as they are, with their fingerprints: none when it comes from another
    DuckDB version or storage format (``STORAGE_VERSION``) or has no fingerprints (older
    publications), or when half its blocks are free (the file is then rewritten whole, which
    compacts it)."""
    try:
        columns = set(
            con.execute(
                "select table_name, column_name from duckdb_columns() "
                "where database_name = ? and schema_name = ?",
                [alias, PUBLICATION_SCHEMA],
            ).fetchall()
        )
        if not {("tables", "fingerprint"), ("info", "storage_version")} <= columns:
            return {}
        version, storage = con.execute(
            f"select duckdb_version, storage_version from {alias}.{PUBLICATION_SCHEMA}.info"
        ).fetchone()
        if version != duckdb.__version__ or storage != STORAGE_VERSION:
            return {}
        total, free = con.execute(
            "select total_blocks, free_blocks from pragma_database_size() where database_name = ?",
            [alias],
        ).fetchone()
        if total and free / total > MAX_FREE_FRACTION:
            return {}
        rows = con.execute(
            f"select schema_name, table_name, fingerprint from {alias}.{PUBLICATION_SCHEMA}.tables "
            "where fingerprint is not null"
        ).fetchall()
        return {f"{s}.{t}": f for s, t, f in rows}
    except duckdb.Error:
        return {}


def _file_state(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


@dataclass
class PreparedCopy:
    """The current publication, copied and read while the run was still going
    (``prepare_copy``): what ``write_copy`` would otherwise do first, after the run."""

    previous: Path  # the publication file copied (symbolic links resolved)
    previous_state: tuple[int, int, int]
    staged: Path  # the copy, beside the publications, not yet anyone's
    staged_state: tuple[int, int, int]
    reusable: dict[str, str]
    relations: list[tuple[str, str, str, str | None]]  # list_relations of the copy
    columns: dict[tuple[str, str], list[tuple[str, str, str | None]]]
    hashes: dict[str, tuple[int, str]]  # schema.name -> rows and hash of a table of the copy

    def still_valid(self, published: Path) -> bool:
        """The publication in place is still the one copied, and the copy as it was read."""
        try:
            return (
                published.resolve(strict=True) == self.previous
                and _file_state(self.previous) == self.previous_state
                and _file_state(self.staged) == self.staged_state
            )
        except OSError:
            return False


def prepare_copy(published: Path, staged: Path) -> PreparedCopy | None:
    """Copy the current publication to ``staged`` and read what a new publication needs of it
    (which relations it may keep, their columns and comments, the rows of each kept table
    hashed); None (and no file left) when there is none or it may keep nothing. Reads only
    the publication, never the build: it can run while the run's steps write."""
    try:
        previous = published.resolve(strict=True)
        before = _file_state(previous)
        shutil.copyfile(previous, staged)
        con = duckdb.connect()
        try:
            con.execute(f"attach {quote_literal(staged)} as {TARGET_ALIAS} (read_only)")
            reusable = _reusable(con, TARGET_ALIAS)
            if reusable:  # (else the publication writes the file whole: nothing to read)
                relations = [
                    r for r in list_relations(con, TARGET_ALIAS) if r[0] != PUBLICATION_SCHEMA
                ]
                columns = columns_of(con, TARGET_ALIAS)
                kept = [
                    (s, t)
                    for s, t, kind, _ in relations
                    if kind == "table" and f"{s}.{t}" in reusable
                ]
                hashed = hash_many(
                    con,
                    [
                        f"select * from {TARGET_ALIAS}.{quote_ident(s)}.{quote_ident(t)}"
                        for s, t in kept
                    ],
                )
            con.execute(f"detach {TARGET_ALIAS}")
        finally:
            con.close()
        if not reusable or _file_state(previous) != before:
            staged.unlink(missing_ok=True)
            return None
        return PreparedCopy(
            previous=previous,
            previous_state=before,
            staged=staged,
            staged_state=_file_state(staged),
            reusable=reusable,
            relations=relations,
            columns=columns,
            hashes=(
                {f"{s}.{t}": h for (s, t), h in zip(kept, hashed, strict=True)}
                if hashed is not None
                else {}
            ),
        )
    except (OSError, duckdb.Error):
        staged.unlink(missing_ok=True)
        return None


def _attach_target(con, target: Path) -> None:
    con.execute(
        f"attach {quote_literal(target)} as {TARGET_ALIAS} "
        f"(storage_version {quote_literal(STORAGE_VERSION)})"
    )


def _start_from(
    con, alias: str, previous: Path, target: Path, prepared: PreparedCopy | None
) -> dict[str, str]:
    """Attach ``target`` as ``TARGET_ALIAS``: a byte copy of ``previous`` (``prepared``'s when
    there is one) when a new publication may keep some of its relations (``_reusable``,
    returned), otherwise a new file."""
    try:
        if prepared is not None:
            os.replace(prepared.staged, target)
        else:
            shutil.copyfile(previous, target)
        _attach_target(con, target)
    except (OSError, duckdb.Error):  # none yet, unreadable: a new file
        target.unlink(missing_ok=True)
        _attach_target(con, target)
        return {}
    reusable = dict(prepared.reusable) if prepared is not None else _reusable(con, TARGET_ALIAS)
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
    if not reusable:
        con.execute(f"detach {TARGET_ALIAS}")
        target.unlink()
        _attach_target(con, target)
    return reusable


def write_copy(
    con,
    alias: str,
    target: Path,
    publication_id: str,
    run_id: str | None,
    note: str | None,
    previous: Path | None = None,
    prepared: PreparedCopy | None = None,
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
    if prepared is not None and (previous is None or not prepared.still_valid(previous)):
        prepared.staged.unlink(missing_ok=True)  # another publication since: copied again
        prepared = None
    if previous is not None and previous.exists():
        reusable = _start_from(con, alias, previous, target, prepared)
    else:
        reusable = {}
        _attach_target(con, target)
    existing: dict[str, str] = {}  # schema.name -> table or view, in the copy
    copy_comments: dict[tuple[str, str], str | None] = {}
    copy_columns: dict[tuple[str, str], list] = {}
    copy_hashes: dict[str, tuple[int, str]] = {}  # the copy's tables, hashed during the run
    if reusable:
        if prepared is not None:
            in_copy, copy_columns = prepared.relations, prepared.columns
            copy_hashes = prepared.hashes
        else:
            in_copy = [r for r in list_relations(con, TARGET_ALIAS) if r[0] != PUBLICATION_SCHEMA]
            copy_columns = columns_of(con, TARGET_ALIAS)
        existing = {f"{s}.{t}": kind for s, t, kind, _comment in in_copy}
        copy_comments = {(s, t): comment for s, t, _kind, comment in in_copy}
        con.execute(f"drop schema {TARGET_ALIAS}.{PUBLICATION_SCHEMA} cascade")
    build_columns = columns_of(con, alias)
    personal = _personal_relations(con, alias)
    personal_sources = _personal_sources()
    tables: dict[str, int] = {}
    kinds: dict[str, str] = {}
    fingerprints: dict[str, str] = {}
    written: dict[str, tuple[tuple[str, str], str]] = {}  # rewritten: key, table in the copy
    comment_statements: list[str] = []
    skipped: list[str] = []
    reused: list[str] = []
    repaired: list[str] = []
    created_schemas: set[str] = set()
    # each relation to publish, with the fingerprint recorded for its table in the copy when it
    # may be kept (None: written)
    published: list[tuple[str, str, str, str | None, str, str, str | None]] = []
    for schema, name, kind, comment in list_relations(con, alias):
        qualified = f"{schema}.{name}"
        if (
            schema in RESTRICTED_SCHEMAS
            or (schema, name) in personal
            or schema == (PUBLICATION_SCHEMA)
        ):
            skipped.append(qualified)
            continue
        select = _select_list(con, alias, schema, name, personal_sources)
        source_sql = (
            f"select {select} from {quote_ident(alias)}.{quote_ident(schema)}.{quote_ident(name)}"
        )
        destination = f"{TARGET_ALIAS}.{quote_ident(schema)}.{quote_ident(name)}"
        recorded = reusable.get(qualified) if existing.get(qualified) == "table" else None
        published.append((schema, name, kind, comment, source_sql, destination, recorded))
    # the relations that may be kept: their rows in the build and in the copy, hashed at once
    # (one by one below when that fails)
    # (by source_sql for the build, by destination for the copy; the copy's already hashed
    # when it was read during the run)
    precomputed: dict[str, tuple[int, str]] = {}
    to_hash: dict[str, str] = {}  # key in precomputed -> query
    for schema, name, _kind, _comment, source_sql, destination, recorded in published:
        if recorded is None:
            continue
        to_hash[source_sql] = source_sql
        if f"{schema}.{name}" in copy_hashes:
            precomputed[destination] = copy_hashes[f"{schema}.{name}"]
        else:
            to_hash[destination] = f"select * from {destination}"
    hashed = hash_many(con, list(to_hash.values()))
    if hashed is not None:
        precomputed.update(zip(to_hash, hashed, strict=True))
    for schema, name, kind, comment, source_sql, destination, recorded in published:
        qualified = f"{schema}.{name}"
        if schema not in created_schemas:
            con.execute(f"create schema if not exists {TARGET_ALIAS}.{quote_ident(schema)}")
            created_schemas.add(schema)
        key = (schema, name)
        columns = build_columns.get(key, [])
        if recorded is not None:
            try:  # a view the build cannot evaluate any more is left out, not fatal
                rows, rows_hash = precomputed.get(source_sql) or hash_rows(con, source_sql)
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
                        *(
                            precomputed.get(destination)
                            or hash_rows(con, f"select * from {destination}")
                        ),
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
            comment_statements.append(f"comment on table {destination} is {quote_literal(comment)}")
        for column, _type, column_comment in columns:
            if column_comment:
                comment_statements.append(
                    f"comment on column {destination}.{quote_ident(column)} "
                    f"is {quote_literal(column_comment)}"
                )
        tables[qualified], kinds[qualified] = 0, kind  # its place; its rows once hashed below
        written[qualified] = (key, destination)
    # the comments in one transaction: one commit, not one per comment (444 in a whole
    # publication: 0.65-0.8 s one by one)
    if comment_statements:
        with transaction(con):
            for statement in comment_statements:
                con.execute(statement)
    if written:
        # fingerprinted as written (the rows a view gave this time)
        destinations = [f"select * from {destination}" for _key, destination in written.values()]
        hashed = hash_many(con, destinations) or [hash_rows(con, d) for d in destinations]
        comments_now = {(s, t): c for s, t, _kind, c in list_relations(con, TARGET_ALIAS)}
        columns_now = columns_of(con, TARGET_ALIAS)
        for (qualified, (key, _destination)), (rows, rows_hash) in zip(
            written.items(), hashed, strict=True
        ):
            tables[qualified] = rows
            fingerprints[qualified] = relation_fingerprint(
                comments_now.get(key), columns_now.get(key, []), rows, rows_hash
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
    create_publication_tables(con, TARGET_ALIAS)
    pub = f"{TARGET_ALIAS}.{PUBLICATION_SCHEMA}"
    con.execute(
        f"insert into {pub}.info values (?, ?, ?, ?, ?, ?)",
        [
            publication_id,
            dt.datetime.now().replace(microsecond=0),
            run_id,
            duckdb.__version__,
            note,
            STORAGE_VERSION,
        ],
    )
    insert_rows(
        con,
        f"{pub}.tables",
        None,
        [[*q.split(".", 1), kinds[q], n, fingerprints[q]] for q, n in tables.items()],
    )
    return tables, skipped, reused, repaired
