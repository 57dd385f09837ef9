"""dbt in the step's own process (defs/assets/dbt_inprocess.py): what it hands back and leaves
behind. The build itself runs in every integration test that runs the pipeline."""

import gc
import os
from types import SimpleNamespace

from dagster_project.defs.assets.dbt_inprocess import (
    PARTIAL_PARSE,
    DbtInProcess,
    _result_dict,
    close_adapter_connections,
)
from dagster_project.lib.gc_freeze import frozen


def _build(tmp_path):
    project = tmp_path / "dbt"
    (project / "target").mkdir(parents=True)
    return DbtInProcess(["build"], project, project, project / "target" / "dbt_models-run-1")


def test_partial_parse_seeded_from_the_project_and_kept_only_when_dbt_parsed_again(tmp_path):
    build = _build(tmp_path)
    project_parse = build.project_dir / "target" / PARTIAL_PARSE
    assert build._seed_partial_parse() is None  # no parse yet: dbt parses everything
    project_parse.write_bytes(b"first parse")
    seeded = build._seed_partial_parse()
    assert (build.target_path / PARTIAL_PARSE).read_bytes() == b"first parse"

    build._keep_partial_parse(seeded)  # dbt reused it: the project's is left alone
    assert project_parse.read_bytes() == b"first parse"

    (build.target_path / PARTIAL_PARSE).write_bytes(b"parsed again, profile changed")
    os.utime(build.target_path / PARTIAL_PARSE, ns=(seeded[0] + 10**9, seeded[0] + 10**9))
    build._keep_partial_parse(seeded)
    assert project_parse.read_bytes() == b"parsed again, profile changed"
    # replaced whole, no temporary file left beside it
    assert sorted(p.name for p in project_parse.parent.iterdir() if p.is_file()) == [PARTIAL_PARSE]


def test_result_in_the_shape_of_run_results_json():
    node = SimpleNamespace(unique_id="test.kpi_warehouse.row_rules_stg_x", compiled_code="select 1")
    result = SimpleNamespace(
        node=node,
        status=SimpleNamespace(value="fail"),
        failures=3,
        message="Got 3 results",
        execution_time=0.25,
    )
    assert _result_dict(result) == {
        "unique_id": "test.kpi_warehouse.row_rules_stg_x",
        "status": "fail",
        "failures": 3,
        "message": "Got 3 results",
        "execution_time": 0.25,
        "compiled_code": "select 1",
    }


def test_the_duckdb_database_dbt_opened_is_closed_after_the_build(tmp_path):
    import duckdb
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    path = tmp_path / "warehouse.duckdb"
    held = duckdb.connect(str(path))  # what dbt-duckdb keeps for the process after a build
    held.execute("create table t as select 1 as x")
    DuckDBConnectionManager._ENV = SimpleNamespace(close=held.close)
    try:
        close_adapter_connections()
        assert DuckDBConnectionManager._ENV is None
        # another connection with other settings (the publication, a reader) opens it
        reader = duckdb.connect(str(path), read_only=True)
        assert reader.execute("select x from t").fetchall() == [(1,)]
        reader.close()
    finally:
        DuckDBConnectionManager._ENV = None


def test_garbage_collector_set_aside_objects_only_during_the_outermost_block():
    assert gc.get_freeze_count() == 0
    with frozen():
        outer = gc.get_freeze_count()
        assert outer > 0
        with frozen():
            assert gc.get_freeze_count() >= outer
        assert gc.get_freeze_count() >= outer  # the inner block hands nothing back
    assert gc.get_freeze_count() == 0


def test_after_freeze_for_good_no_block_hands_anything_back(monkeypatch):
    """The warm process sets its objects aside for good before it forks its runs: a run's
    blocks never hand them back (their collections would walk them all again)."""
    from dagster_project.lib import gc_freeze

    assert gc.get_freeze_count() == 0
    monkeypatch.setattr(gc_freeze, "_for_good", False)
    try:
        gc_freeze.freeze_for_good()
        kept = gc.get_freeze_count()
        assert kept > 0
        with frozen(), frozen():
            pass
        assert gc.get_freeze_count() >= kept
    finally:
        gc.unfreeze()


def test_the_step_takes_the_parse_started_ahead_else_parses_itself(tmp_path, monkeypatch):
    """The raw checks start the dbt step's parse (parse_ahead); the step of the same project,
    profiles and target takes its manifest and its lines instead of parsing again."""
    import threading

    from dagster_project.defs.assets import dbt_inprocess as inprocess

    parsed_by = []

    def parse(self):
        parsed_by.append(threading.current_thread().name)
        self._queue.put({"info": {"msg": "Running with dbt"}})
        return f"manifest of {self.target_path.name}"

    monkeypatch.setattr(inprocess.DbtInProcess, "parse", parse)
    project = tmp_path / "dbt"
    ahead = inprocess.DbtInProcess([], project, project, project / "target" / "a", "duckdb")
    inprocess.parse_ahead(ahead)
    inprocess.parse_ahead(ahead)  # one at a time: a second call starts nothing
    step = inprocess.DbtInProcess(["build"], project, project, project / "target" / "b", "duckdb")
    assert step._parsed_ahead() == "manifest of a"
    assert parsed_by == ["dbt-parse"] and step._queue.get_nowait()["info"]["msg"]
    assert step._parsed_ahead() is None  # taken once

    other_target = inprocess.DbtInProcess([], project, project, project / "target" / "c", "pg")
    inprocess.parse_ahead(other_target)
    assert step._parsed_ahead() is None  # another target's parse is not this step's
    inprocess.drop_parse_ahead()  # what the dbt resource does when the run ends
    assert inprocess._ahead is None and parsed_by == ["dbt-parse", "dbt-parse"]


def test_a_failed_parse_ahead_leaves_the_step_to_parse(tmp_path, monkeypatch):
    from dagster_project.defs.assets import dbt_inprocess as inprocess

    def broken(self):
        raise RuntimeError("profil illisible")

    monkeypatch.setattr(inprocess.DbtInProcess, "parse", broken)
    project = tmp_path / "dbt"
    ahead = inprocess.DbtInProcess([], project, project, project / "target" / "a")
    inprocess.parse_ahead(ahead)
    step = inprocess.DbtInProcess(["build"], project, project, project / "target" / "b")
    assert step._parsed_ahead() is None  # _invoke then calls parse() itself
    assert ahead.errors == ["RuntimeError: profil illisible"]


def test_a_manifest_kept_before_the_run_is_taken_once_while_nothing_it_read_changed(
    tmp_path, monkeypatch
):
    """The warm process parses the project once and keeps the manifest (keep_parsed); a run's
    dbt step takes it, and no parse is started ahead, only while the project's files and the
    KPI_/DBT_ variables are as the parse found them (else the step parses, as without it)."""
    from dagster_project.defs.assets import dbt_inprocess as inprocess

    monkeypatch.setattr(inprocess, "_kept", None)
    project = tmp_path / "dbt"
    (project / "models").mkdir(parents=True)
    model = project / "models" / "m.sql"
    model.write_text("select 1", encoding="utf-8")
    (project / "target").mkdir()
    monkeypatch.setenv("KPI_SOURCES", "/livraisons")
    parser = inprocess.DbtInProcess([], project, project, tmp_path / "t0", "duckdb")

    def keep():
        inprocess.keep_parsed(parser, "manifest", inprocess.project_stamp(parser))

    step = inprocess.DbtInProcess(["build"], project, project, project / "target" / "b", "duckdb")
    keep()
    (project / "target" / "run_results.json").write_text("{}")  # dbt's own output: no change
    monkeypatch.setenv("KPI_PROGRESS", "1")  # how the run is made: no change
    assert inprocess.has_kept(step)
    inprocess.parse_ahead(step)
    assert inprocess._ahead is None  # nothing to parse ahead
    assert inprocess.take_kept(step) == "manifest"
    assert inprocess.take_kept(step) is None  # taken once

    keep()
    other = inprocess.DbtInProcess(["build"], project, project, tmp_path / "c", "postgres")
    assert inprocess.take_kept(other) is None  # another target's
    stat = model.stat()
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert inprocess.take_kept(step) is None  # a model changed since

    keep()
    monkeypatch.setenv("KPI_SOURCES", "/ailleurs")
    assert inprocess.take_kept(step) is None  # a variable the project may read changed
