"""A small build database holding every kind of relation and column type the published copy
carries (the warehouse's own tables, a commented mart with VARCHAR, DOUBLE, INTEGER, BIGINT,
DATE, TIMESTAMP and BOOLEAN columns, a view, restricted data), for the tests of the copy's
storage format (tests/unit/warehouse/test_storage_version.py,
tests/integration/test_storage_compat.py)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_project.warehouse import schema


def write_typed_build(path: Path, values: int = 3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        schema.ensure(con, *schema.SCHEMAS)
        con.execute(
            f"""
            create schema if not exists marts;
            create schema if not exists staging;
            create or replace table marts.fct_indicator_values (
                indicator_id varchar not null, year integer not null, code_insee varchar,
                value double not null, row_count bigint, as_of_date date,
                computed_at timestamp, additive boolean);
            comment on table marts.fct_indicator_values is 'Valeurs des indicateurs (é, €, m³).';
            comment on column marts.fct_indicator_values.value is 'Valeur de l''indicateur.';
            insert into marts.fct_indicator_values
                select 'indicator_' || i, 2025, case when i % 2 = 0 then '62119' end,
                       i * 1.5, i * 1000000000, date '2025-12-31' - i::integer,
                       timestamp '2026-01-31 08:00:00' + to_hours(i::integer), i % 2 = 0
                from range({values}) as r(i);
            create or replace view staging.stg_values as
                select indicator_id, value from {path.stem}.marts.fct_indicator_values;
            create or replace table raw_restricted.rh_effectifs (matricule varchar);
            insert into raw_restricted.rh_effectifs values ('c0ffee00deadbeef');
            """
        )
    finally:
        con.close()
