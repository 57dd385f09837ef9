"""Warehouse side of ingestion: the delivery log, problems, raw tables, deliveries in force."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import duckdb
import pandas as pd

from dagster_project.contracts import Contract

LINEAGE_COLUMNS = [
    ("_delivery_id", "VARCHAR"),
    ("_file_sha256", "VARCHAR"),
    ("_sheet", "VARCHAR"),
    ("_row_number", "INTEGER"),
    ("_campaign_year", "INTEGER"),
    ("_department", "VARCHAR"),
]

INGEST_DDL = """
create schema if not exists ingest;
create table if not exists ingest.deliveries (
    delivery_id varchar primary key,
    campaign_year integer not null,
    department varchar not null,
    source_id varchar not null,
    file_path varchar not null,
    file_name varchar not null,
    file_sha256 varchar not null,
    file_size bigint,
    received_at timestamp not null,
    processed_at timestamp not null,
    outcome varchar not null,
    row_count integer not null,
    problem_count integer not null,
    warning_count integer not null,
    sheet varchar,
    report_path varchar,
    depends_on varchar,
    in_force boolean not null default false
);
create table if not exists ingest.delivery_problems (
    delivery_id varchar not null,
    severity varchar not null,
    sheet varchar,
    row_number integer,
    column_name varchar,
    value varchar,
    reason varchar not null
);
"""


def ensure_ingest_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(INGEST_DDL)


def ensure_raw_table(con: duckdb.DuckDBPyConnection, contract: Contract) -> None:
    """Create the raw table, or add the columns a contract gained since (never drops any)."""
    con.execute(f"create schema if not exists {contract.raw_schema}")
    wanted = contract.stored_columns + LINEAGE_COLUMNS
    existing = {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ?",
            [contract.raw_schema, contract.source_id],
        ).fetchall()
    }
    if not existing:
        columns = ", ".join(f'"{name}" {kind}' for name, kind in wanted)
        con.execute(f"create table {contract.raw_table} ({columns})")
        return
    for name, kind in wanted:
        if name not in existing:
            con.execute(f'alter table {contract.raw_table} add column "{name}" {kind}')


def ensure_tables(con: duckdb.DuckDBPyConnection, contracts: Iterable[Contract]) -> None:
    ensure_ingest_tables(con)
    for contract in contracts:
        ensure_raw_table(con, contract)


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


def record_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    contract: Contract,
    delivery: dict,
    records: list[dict],
    problems: list[dict],
) -> None:
    """Write one delivery, its problems and (when accepted) its rows, in one transaction."""
    con.execute("begin transaction")
    try:
        con.execute(
            "delete from ingest.delivery_problems where delivery_id = ?", [delivery["delivery_id"]]
        )
        con.execute(
            "delete from ingest.deliveries where delivery_id = ?", [delivery["delivery_id"]]
        )
        con.execute(
            f"delete from {contract.raw_table} where _delivery_id = ?", [delivery["delivery_id"]]
        )
        columns = list(delivery)
        con.execute(
            f"insert into ingest.deliveries ({', '.join(columns)}) values ({', '.join('?' for _ in columns)})",
            [delivery[c] for c in columns],
        )
        if problems:
            frame = pd.DataFrame(problems)
            con.register("problems_frame", frame)
            con.execute(
                "insert into ingest.delivery_problems select delivery_id, severity, sheet, "
                "cast(row_number as integer), column_name, value, reason from problems_frame"
            )
            con.unregister("problems_frame")
        if records:
            _insert_rows(con, contract, delivery, records)
        refresh_in_force(con, contract.source_id, delivery["campaign_year"], delivery["department"])
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def _insert_rows(con, contract: Contract, delivery: dict, records: list[dict]) -> None:
    stored = contract.stored_columns
    data = {name: [r.get(name) for r in records] for name, _ in stored}
    data["_sheet"] = [r["_sheet"] for r in records]
    data["_row_number"] = [r["_row_number"] for r in records]
    frame = pd.DataFrame(data)
    for name, kind in stored:
        if kind == "DATE":
            frame[name] = pd.to_datetime(frame[name])
        elif kind in ("DOUBLE", "BIGINT"):
            frame[name] = pd.to_numeric(frame[name])
        elif kind == "BOOLEAN":
            frame[name] = frame[name].astype("boolean")
        else:
            frame[name] = frame[name].astype("string")
    con.register("rows_frame", frame)
    selects = [f'cast("{name}" as {kind})' for name, kind in stored]
    target = [f'"{name}"' for name, _ in stored] + [c for c, _ in LINEAGE_COLUMNS]
    con.execute(
        f"insert into {contract.raw_table} ({', '.join(target)}) select {', '.join(selects)}, "
        "?, ?, _sheet, cast(_row_number as integer), ?, ? from rows_frame",
        [
            delivery["delivery_id"],
            delivery["file_sha256"],
            delivery["campaign_year"],
            delivery["department"],
        ],
    )
    con.unregister("rows_frame")


def now() -> dt.datetime:
    return dt.datetime.now().replace(microsecond=0)
