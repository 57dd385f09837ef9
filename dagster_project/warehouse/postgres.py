"""The PostgreSQL target: the ingestion tables copied from DuckDB before dbt runs there.

Ingestion always writes DuckDB (the build database). With ``kpi run --target postgres``, dbt
builds staging, intermediate and marts in PostgreSQL, so the tables dbt reads as sources
(schemas ``raw``, ``raw_restricted``, ``ingest``) are copied there first, in one transaction:
a PostgreSQL reader sees the previous copy or the new one, never a mix. No DuckDB extension is
needed (none can be downloaded offline): DuckDB writes CSV, ``psycopg2`` streams it with
``COPY ... FROM STDIN``.

Connection: ``KPI_PG_HOST``, ``KPI_PG_PORT``, ``KPI_PG_USER``, ``KPI_PG_PASSWORD``,
``KPI_PG_DBNAME`` (the same variables as the dbt profile ``postgres``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SOURCE_SCHEMAS = ("raw", "raw_restricted", "ingest")

# DuckDB type -> PostgreSQL type; anything else travels as text.
PG_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BOOLEAN": "boolean",
}


def pg_params() -> dict:
    """Connection parameters from the KPI_PG_* variables (defaults of dbt/profiles.yml)."""
    return {
        "host": os.environ.get("KPI_PG_HOST", "localhost"),
        "port": int(os.environ.get("KPI_PG_PORT", "5432")),
        "user": os.environ.get("KPI_PG_USER", "kpi"),
        "password": os.environ.get("KPI_PG_PASSWORD", ""),
        "dbname": os.environ.get("KPI_PG_DBNAME", "kpi_warehouse"),
    }


def connect_pg():
    import psycopg2

    return psycopg2.connect(**pg_params())


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_type(duck_type: str) -> str:
    if duck_type.startswith("DECIMAL"):
        return "numeric" + duck_type[len("DECIMAL") :]
    return PG_TYPES.get(duck_type, "text")


def copy_to_postgres(
    build: Path, schemas: tuple[str, ...] = SOURCE_SCHEMAS, wait_seconds: float = 120.0
) -> dict[str, int]:
    """Copy every table of ``schemas`` from the DuckDB build to PostgreSQL; rows per table.

    A table whose columns did not change is emptied and refilled (views dbt built on it stay);
    otherwise it is recreated (``drop ... cascade``: dbt rebuilds what depended on it).
    """
    from dagster_project.warehouse.access import connect as open_build

    duck = open_build(
        build, read_only=True, purpose="la copie vers PostgreSQL", wait=max(wait_seconds, 0)
    )
    copied: dict[str, int] = {}
    pg = connect_pg()
    try:
        tables = duck.execute(
            "select schema_name, table_name from duckdb_tables() where schema_name in "
            f"({', '.join('?' for _ in schemas)}) order by 1, 2",
            list(schemas),
        ).fetchall()
        with tempfile.TemporaryDirectory(prefix="kpi-pg-") as tmp, pg.cursor() as cur:
            for schema in sorted({s for s, _ in tables}):
                cur.execute(f"create schema if not exists {_ident(schema)}")
            for schema, table in tables:
                columns = duck.execute(
                    "select column_name, data_type from duckdb_columns() "
                    "where schema_name = ? and table_name = ? order by column_index",
                    [schema, table],
                ).fetchall()
                wanted = [(name, _pg_type(kind)) for name, kind in columns]
                cur.execute(
                    "select column_name, "
                    "case when data_type like 'timestamp without%%' then 'timestamp' "
                    "when data_type like 'timestamp with %%' then 'timestamptz' "
                    "else data_type end "
                    "from information_schema.columns where table_schema = %s "
                    "and table_name = %s order by ordinal_position",
                    [schema, table],
                )
                existing = cur.fetchall()
                qualified = f"{_ident(schema)}.{_ident(table)}"
                if existing and [(n, t) for n, t in existing] == [
                    (n, t if not t.startswith("numeric") else "numeric") for n, t in wanted
                ]:
                    cur.execute(f"truncate {qualified}")
                else:
                    cur.execute(f"drop table if exists {qualified} cascade")
                    cur.execute(
                        f"create table {qualified} ("
                        + ", ".join(f"{_ident(n)} {t}" for n, t in wanted)
                        + ")"
                    )
                csv_path = Path(tmp) / f"{schema}.{table}.csv"
                literal = str(csv_path).replace("'", "''")
                # NULL is written as nothing, an empty string as "": PostgreSQL's CSV rules
                duck.execute(
                    f"copy (select * from {qualified}) to '{literal}' (format csv, header false)"
                )
                with csv_path.open(encoding="utf-8") as handle:
                    cur.copy_expert(
                        f"copy {qualified} ({', '.join(_ident(n) for n, _ in wanted)}) "
                        "from stdin with (format csv)",
                        handle,
                    )
                copied[f"{schema}.{table}"] = cur.rowcount
        pg.commit()
    except BaseException:
        pg.rollback()
        raise
    finally:
        pg.close()
        duck.close()
    return copied


def count_rows(table: str) -> int | None:
    """Rows of a PostgreSQL table, None when it does not exist."""
    pg = connect_pg()
    try:
        with pg.cursor() as cur:
            cur.execute("select to_regclass(%s)", [table])
            if cur.fetchone()[0] is None:
                return None
            cur.execute(f"select count(*) from {table}")
            return cur.fetchone()[0]
    finally:
        pg.close()
