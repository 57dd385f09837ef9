"""warehouse.relations.insert_rows: the same rows as DuckDB's executemany, in few statements."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from dagster_project.warehouse import relations
from dagster_project.warehouse.relations import insert_rows, transaction

ROWS = [
    ["r1", 1, 2.5, None, dt.datetime(2026, 12, 6, 9, 0)],
    ["r2", None, 3, "é « guillemets » ; virgule", None],
    ["r3", 3, None, "", dt.datetime(2025, 1, 1)],
]


def _table(con, name: str) -> None:
    con.execute(f"create table {name} (id varchar, n bigint, x double, t varchar, ts timestamp)")


@pytest.mark.parametrize("chunk", [500, 2])
def test_same_rows_as_executemany(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(relations, "INSERT_CHUNK", chunk)  # 2: rows split over statements
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _table(con, "a")
    _table(con, "b")
    con.executemany("insert into a values (?, ?, ?, ?, ?)", ROWS)
    assert insert_rows(con, "b", None, ROWS) == 3
    assert (
        con.execute("select * from a order by id").fetchall()
        == con.execute("select * from b order by id").fetchall()
    )


def test_named_columns_and_nothing_to_insert(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _table(con, "a")
    assert insert_rows(con, "a", ["t", "id"], []) == 0
    assert insert_rows(con, "a", ["t", "id"], [("texte", "r9")]) == 1
    assert con.execute("select id, n, t from a").fetchall() == [("r9", None, "texte")]


def test_rows_of_different_lengths_are_refused(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    _table(con, "a")
    with pytest.raises(ValueError):
        insert_rows(con, "a", None, [ROWS[0], ROWS[1][:3]])
    assert con.execute("select count(*) from a").fetchone() == (0,)


def test_a_transaction_commits_at_its_end_and_rolls_back_when_it_raises():
    con = duckdb.connect()
    con.execute("create table t (x integer)")
    with transaction(con):
        con.execute("insert into t values (1)")
        con.execute("insert into t values (2)")
    assert con.execute("select count(*) from t").fetchone()[0] == 2
    for error in (ValueError("a step fails"), KeyboardInterrupt()):
        with pytest.raises(type(error)), transaction(con):
            con.execute("insert into t values (3)")
            raise error
    assert con.execute("select count(*) from t").fetchone()[0] == 2  # all or nothing
    # the connection is usable again, outside any transaction
    con.execute("insert into t values (4)")
    assert con.execute("select count(*) from t").fetchone()[0] == 3


def test_a_failed_statement_inside_rolls_the_whole_block_back():
    con = duckdb.connect()
    con.execute("create table t (x integer primary key)")
    with pytest.raises(duckdb.ConstraintException), transaction(con):
        con.execute("insert into t values (1)")
        con.execute("insert into t values (1)")
    assert con.execute("select count(*) from t").fetchone()[0] == 0
