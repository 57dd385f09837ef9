"""The warehouse resource: a run's steps keep the build database open from one to the next."""

from __future__ import annotations

from pathlib import Path

import duckdb
from dagster import In, Nothing, job, op

from dagster_project.defs.resources import WarehouseResource
from dagster_project.warehouse import access


def _wal(path: str) -> Path:
    return Path(path + ".wal")


@op
def first_step(warehouse: WarehouseResource) -> None:
    with warehouse.connect(step="étape 1") as con:
        con.execute("insert into t values (1)")


@op(ins={"after": In(Nothing)})
def second_step(warehouse: WarehouseResource) -> bool:
    kept = _wal(warehouse.path).exists()  # the first step's rows not yet written back
    with warehouse.connect(step="étape 2") as con:
        con.execute("insert into t values (2)")
    return kept


@job
def two_steps():
    second_step(first_step())


def test_a_runs_steps_keep_the_file_open_and_its_end_closes_it(tmp_path):
    build = tmp_path / ".build" / "warehouse.duckdb"
    build.parent.mkdir()
    with duckdb.connect(str(build)) as con:
        con.execute("create table t (v integer)")
    result = two_steps.execute_in_process(
        resources={"warehouse": WarehouseResource(path=str(build))}
    )
    assert result.success
    assert result.output_for_node("second_step") is True
    assert (
        not _wal(str(build)).exists()
        and access.holder(build.with_name("warehouse.duckdb.gate")) is None
    )
    with duckdb.connect(str(build), read_only=True) as con:
        assert con.execute("select sum(v) from t").fetchone()[0] == 3


def test_outside_a_run_nothing_is_kept(tmp_path):
    build = tmp_path / ".build" / "warehouse.duckdb"
    build.parent.mkdir()
    with duckdb.connect(str(build)) as con:
        con.execute("create table t (v integer)")
    resource = WarehouseResource(path=str(build))
    with resource.connect(step="un capteur") as con:  # a sensor's or a script's use
        con.execute("insert into t values (1)")
    assert not _wal(str(build)).exists()
