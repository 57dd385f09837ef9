"""Questions about the relations of a DuckDB database, asked by several modules, the one way
the project inserts many rows into one (``insert_rows``) and writes several statements as one
transaction (``transaction``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import duckdb

INSERT_CHUNK = 500  # rows per statement of insert_rows


def table_exists(con: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    """Whether ``schema.name`` is a table or a view of the database."""
    schema, table = qualified.split(".", 1)
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def column_names(con: duckdb.DuckDBPyConnection, qualified: str) -> set[str]:
    """The columns of the table or view ``schema.name`` (empty when there is none)."""
    schema, table = qualified.split(".", 1)
    return {
        row[0]
        for row in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()
    }


def column_exists(con: duckdb.DuckDBPyConnection, qualified: str, column: str) -> bool:
    """Whether the table or view ``schema.name`` has the column (a table written before the
    column was added has not)."""
    schema, table = qualified.split(".", 1)
    return bool(
        con.execute(
            "select count(*) from information_schema.columns "
            "where table_schema = ? and table_name = ? and column_name = ?",
            [schema, table, column],
        ).fetchone()[0]
    )


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str] | None, rows: Sequence
) -> int:
    """Insert ``rows`` (sequences of values, in ``columns``' order, or the table's when None)
    into ``table`` with one statement per ``INSERT_CHUNK`` rows. DuckDB's ``executemany`` runs
    one statement per row: 140 rows into a table of a database file took 0.86 s against 0.01 s
    as one ``values`` list (bench/README.md, issue 19), and the runs write a row per dbt node,
    per published relation and per atypical value. Returns the number of rows."""
    rows = [list(row) for row in rows]
    if not rows:
        return 0
    width = len(rows[0])
    if any(len(row) != width for row in rows):
        raise ValueError(f"{table} : lignes de longueurs différentes")
    target = f"{table} ({', '.join(columns)})" if columns is not None else table
    marks = "(" + ", ".join("?" for _ in range(width)) + ")"
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        con.execute(
            f"insert into {target} values {', '.join(marks for _ in chunk)}",
            [value for row in chunk for value in row],
        )
    return len(rows)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """The block's statements as one transaction: committed at its end, rolled back when it
    raises (Ctrl-C included) or its commit fails, then the error raised again (a failed
    rollback never hides it). One commit instead of one per statement, and all or nothing."""
    con.execute("begin transaction")
    try:
        yield con
        con.execute("commit")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("rollback")
        raise
