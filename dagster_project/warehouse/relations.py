"""Questions about the relations of a DuckDB database, asked by several modules."""

from __future__ import annotations

import duckdb


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
