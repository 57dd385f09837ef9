"""Warehouse side of ingestion: the delivery log, problems, raw tables, deliveries in force."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from dagster_project.contracts.model import Contract
from dagster_project.warehouse.relations import column_names, transaction
from dagster_project.warehouse.schema import ensure

LINEAGE_COLUMNS = [
    ("_delivery_id", "VARCHAR"),
    ("_file_sha256", "VARCHAR"),
    ("_sheet", "VARCHAR"),
    ("_row_number", "INTEGER"),
    ("_campaign_year", "INTEGER"),
    ("_department", "VARCHAR"),
]


def ensure_ingest_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The delivery log and its problems (``warehouse.schema``)."""
    ensure(con, "ingest")


def ensure_raw_table(
    con: duckdb.DuckDBPyConnection, contract: Contract, existing: set[str] | None = None
) -> None:
    """Create the raw table, or add the columns a contract gained since (never drops any);
    ``existing``: its columns, when the caller read them (``ensure_tables``)."""
    if not existing:
        con.execute(f"create schema if not exists {contract.raw_schema}")
        existing = column_names(con, f"{contract.raw_schema}.{contract.source_id}")
    wanted = contract.stored_columns + LINEAGE_COLUMNS
    if not existing and _moved_from_other_raw_schema(con, contract):
        return ensure_raw_table(con, contract)
    if not existing:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in wanted)
        con.execute(f"create table {contract.raw_table} ({columns})")
        return
    for name, kind in wanted:
        if name not in existing:
            con.execute(f'alter table {contract.raw_table} add column "{name}" {kind}')


def _moved_from_other_raw_schema(con: duckdb.DuckDBPyConnection, contract: Contract) -> bool:
    """A source whose sensitivity changed (``rh_arretes`` became ``personal`` on 2026-12-05)
    keeps its history: its raw table moves from the other raw schema to its own, in one
    transaction. Returns True when it was moved."""
    other = "raw" if contract.raw_schema == "raw_restricted" else "raw_restricted"
    found = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ? and table_type = 'BASE TABLE'",
        [other, contract.source_id],
    ).fetchone()[0]
    if not found:
        return False
    with transaction(con):
        con.execute(
            f"create table {contract.raw_table} as select * from {other}.{contract.source_id}"
        )
        con.execute(f"drop table {other}.{contract.source_id}")
    return True


def ensure_tables(con: duckdb.DuckDBPyConnection, contracts: Iterable[Contract]) -> None:
    """The delivery log and every contract's raw table (``ensure_raw_table``), their columns
    read in one catalogue query: a query and a statement per table cost every run ≈ 25 ms."""
    ensure_ingest_tables(con)
    contracts = list(contracts)
    columns: dict[tuple[str, str], set[str]] = {}
    for schema, table, column in con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() "
        "where database_name = current_database() and list_contains(?, schema_name)",
        [sorted({c.raw_schema for c in contracts})],
    ).fetchall():
        columns.setdefault((schema, table), set()).add(column)
    for contract in contracts:  # (a table not found this way is looked for as before)
        ensure_raw_table(con, contract, columns.get((contract.raw_schema, contract.source_id)))


def known_delivery(
    con: duckdb.DuckDBPyConnection, delivery_id: str
) -> tuple[str, str | None] | None:
    row = con.execute(
        "select outcome, depends_on from ingest.deliveries where delivery_id = ?", [delivery_id]
    ).fetchone()
    return (row[0], row[1]) if row else None


def in_force_delivery(
    con: duckdb.DuckDBPyConnection, source_id: str, campaign_year: int
) -> str | None:
    row = con.execute(
        "select delivery_id from ingest.deliveries where source_id = ? and campaign_year = ? and in_force",
        [source_id, campaign_year],
    ).fetchone()
    return row[0] if row else None


def reference_values(
    con: duckdb.DuckDBPyConnection, contract: Contract, column: str, campaign_year: int
) -> set | None:
    delivery = in_force_delivery(con, contract.source_id, campaign_year)
    if delivery is None:
        return None
    rows = con.execute(
        f'select distinct "{column}" from {contract.raw_table} where _delivery_id = ?', [delivery]
    ).fetchall()
    return {r[0] for r in rows}


def refresh_in_force(
    con: duckdb.DuckDBPyConnection, source_id: str, campaign_year: int, department: str
) -> str | None:
    """The accepted delivery received last (modification time, then name) is in force."""
    con.execute(
        """
        update ingest.deliveries set in_force = coalesce(delivery_id = (
            select delivery_id from ingest.deliveries
            where source_id = $1 and campaign_year = $2 and department = $3 and outcome = 'accepted'
            order by received_at desc, file_name desc limit 1), false)
        where source_id = $1 and campaign_year = $2 and department = $3
        """,
        [source_id, campaign_year, department],
    )
    row = con.execute(
        "select delivery_id from ingest.deliveries where source_id = ? and campaign_year = ? and department = ? and in_force",
        [source_id, campaign_year, department],
    ).fetchone()
    return row[0] if row else None


@dataclass
class DeliveryWrite:
    """One validated delivery ready to be written: its log row, problems and rows."""

    delivery: dict
    rows: pa.Table | None  # the accepted rows (``ValidationResult.table``), None if rejected
    problems: list[dict]


ARROW_TYPES = {  # a warehouse (DuckDB) type in Arrow
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "DATE": pa.date32(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "TIMESTAMP": pa.timestamp("us"),
}
_PROBLEM_COLUMNS = [
    ("delivery_id", "VARCHAR"),
    ("severity", "VARCHAR"),
    ("sheet", "VARCHAR"),
    ("row_number", "INTEGER"),
    ("column_name", "VARCHAR"),
    ("value", "VARCHAR"),
    ("reason", "VARCHAR"),
]


def _arrow(columns: list[tuple[str, str]], data: dict[str, list]) -> pa.Table:
    return pa.table({name: pa.array(data[name], type=ARROW_TYPES[kind]) for name, kind in columns})


def record_deliveries(
    con: duckdb.DuckDBPyConnection,
    contract: Contract,
    writes: list[DeliveryWrite],
    present: dict[str, dt.datetime] | None = None,
) -> None:
    """Write the deliveries of one source in one transaction: a handful of statements
    whatever their number (rows go through Arrow), then which deliveries are present in
    ``sources/`` (``present``: delivery id -> newest modification time of the files holding
    it; None: leave presence as it is) and the in-force rule are recomputed."""
    if not writes and present is None:
        return
    with transaction(con):
        if writes:
            _write(con, contract, writes)
        if present is not None:
            refresh_presence(con, contract.source_id, present)
        refresh_in_force_all(con, contract.source_id)


def _write(con: duckdb.DuckDBPyConnection, contract: Contract, writes: list[DeliveryWrite]) -> None:
    ids = [w.delivery["delivery_id"] for w in writes]
    log_columns = list(writes[0].delivery)
    log = {c: [w.delivery[c] for w in writes] for c in log_columns}
    problems = [p for w in writes for p in w.problems]
    for table, column in (
        ("ingest.delivery_problems", "delivery_id"),
        ("ingest.deliveries", "delivery_id"),
        (contract.raw_table, "_delivery_id"),
    ):
        con.execute(f"delete from {table} where {column} in (select unnest(?))", [ids])
    con.register("log_rows", pa.table(log))
    con.execute(
        f"insert into ingest.deliveries ({', '.join(log_columns)}) "
        f"select {', '.join(log_columns)} from log_rows"
    )
    con.unregister("log_rows")
    if problems:
        data = {name: [p[name] for p in problems] for name, _ in _PROBLEM_COLUMNS}
        con.register("problem_rows", _arrow(_PROBLEM_COLUMNS, data))
        con.execute(
            "insert into ingest.delivery_problems "
            f"({', '.join(n for n, _ in _PROBLEM_COLUMNS)}) select * from problem_rows"
        )
        con.unregister("problem_rows")
    accepted = [w for w in writes if w.rows is not None and w.rows.num_rows]
    if accepted:
        _insert_rows(con, contract, accepted)


def refresh_presence(
    con: duckdb.DuckDBPyConnection, source_id: str, present: dict[str, dt.datetime]
) -> None:
    """Deliveries of the source whose content is in a file of ``sources/`` are present (seen
    last at that file's modification time); the others are withdrawn (the time they were
    first found missing is kept). Nothing is deleted: the history stays."""
    table = pa.table(
        {
            "delivery_id": pa.array(list(present), pa.string()),
            "seen_at": pa.array(list(present.values()), pa.timestamp("us")),
        }
    )
    con.register("present_files", table)
    try:
        con.execute(
            """
            update ingest.deliveries as d set
                present = p.delivery_id is not null,
                last_seen_at = coalesce(p.seen_at, d.last_seen_at),
                withdrawn_at = case when p.delivery_id is not null then null
                                    else coalesce(d.withdrawn_at, $2) end
            from ingest.deliveries as d2
            left join present_files as p on p.delivery_id = d2.delivery_id
            where d.delivery_id = d2.delivery_id and d.source_id = $1
            """,
            [source_id, now()],
        )
    finally:
        con.unregister("present_files")


def refresh_in_force_all(con: duckdb.DuckDBPyConnection, source_id: str) -> None:
    """The in-force rule for every (year, department) of a source in one statement: the
    accepted delivery whose file is present in ``sources/`` and newest (its file's
    modification time, then its name) is in force; none when no accepted file is present."""
    con.execute(
        """
        update ingest.deliveries set in_force = (delivery_id in (
            select delivery_id from (
                select delivery_id, row_number() over (
                    partition by campaign_year, department
                    order by coalesce(last_seen_at, received_at) desc, file_name desc) as rank
                from ingest.deliveries
                where source_id = $1 and outcome = 'accepted' and coalesce(present, true))
            where rank = 1))
        where source_id = $1
        """,
        [source_id],
    )


def _insert_rows(con, contract: Contract, writes: list[DeliveryWrite]) -> None:
    """Each delivery's Arrow table into the raw table, with its lineage columns (constants
    built in Arrow: a plain ``insert ... select`` is 2-3 times faster than one that adds
    constant or parameter columns in SQL)."""
    stored = [name for name, _ in contract.stored_columns]
    constants = [name for name, _ in LINEAGE_COLUMNS if name not in ("_sheet", "_row_number")]
    columns = stored + ["_sheet", "_row_number"] + constants
    target = ", ".join(f'"{name}"' for name in columns)
    kinds = {name: ARROW_TYPES[kind] for name, kind in LINEAGE_COLUMNS}
    for write in writes:
        table = write.rows.select(stored + ["_sheet", "_row_number"])
        n = table.num_rows
        for name in constants:
            value = write.delivery[name[1:]]
            table = table.append_column(name, pa.array([value] * n, kinds[name]))
        con.register("raw_rows", table)
        con.execute(f"insert into {contract.raw_table} ({target}) select {target} from raw_rows")
        con.unregister("raw_rows")


def now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)
