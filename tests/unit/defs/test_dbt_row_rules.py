"""The generic dbt tests of each model run in production as a few generated tests
(dagster_project/defs/assets/dbt_row_rules.py): the generator, nothing dropped, the build
arguments, what dbt build skips. The equivalence on data is
tests/integration/test_dbt_row_rules.py."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from dagster_project.defs.assets import dbt_row_rules as row_rules
from dagster_project.defs.assets.dbt import (
    DBT_BUILD_ARGS,
    dbt_tests_result,
    ensure_manifest,
    name_failing_rules,
    project_nodes,
)
from dagster_project.defs.resources import WarehouseResource
from dagster_project.settings import DBT_PROJECT_DIR

RULE = re.compile(r"select '([^']+)' as rule")


def _test(name, kind, model="stg_x", config=None, reads=(), **kwargs):
    """A generic test node of ``model`` (which it reads, with ``reads``) as the manifest has it."""
    return {
        f"test.kpi_warehouse.{name}.abc": {
            "unique_id": f"test.kpi_warehouse.{name}.abc",
            "resource_type": "test",
            "name": name,
            "attached_node": f"model.kpi_warehouse.{model}",
            "original_file_path": f"models/{model}.yml",
            "depends_on": {
                "nodes": [f"model.kpi_warehouse.{m}" for m in (model, *reads)],
                "macros": [],
            },
            "test_metadata": {
                "name": kind,
                "namespace": None,
                "kwargs": {**kwargs, "model": "{{ get_where_subquery(ref('" + model + "')) }}"},
            },
            "config": {
                "enabled": True,
                "severity": "ERROR",
                "warn_if": "!= 0",
                "error_if": "!= 0",
                "fail_calc": "count(*)",
                "where": None,
                "limit": None,
                **(config or {}),
            },
        }
    }


# base -> stg_x; c and stg_y read nothing of the project
PARENTS = {"base": [], "stg_x": ["base"], "stg_y": [], "c": []}


def _manifest(*tests):
    nodes = {
        f"model.kpi_warehouse.{m}": {
            "resource_type": "model",
            "name": m,
            "config": {},
            "depends_on": {"nodes": [f"model.kpi_warehouse.{p}" for p in parents]},
        }
        for m, parents in PARENTS.items()
    }
    for test in tests:
        nodes.update(test)
    return {"nodes": nodes}


def test_one_test_per_model_calling_the_same_macros_with_the_same_arguments():
    manifest = _manifest(
        _test("accepted_range_stg_x_a__0", "accepted_range", column_name="a", min_value=0),
        _test(
            "not_null_columns_stg_x_a__b",
            "not_null_columns",
            config={"fail_calc": "coalesce(sum(null_rows), 0)"},
            columns=["a", "b"],
        ),
        _test(
            "accepted_values_stg_x_k__é__o_k",
            "accepted_values",
            config={"where": "kind = 'value'"},
            column_name="k",
            values=["é", "o'k"],
        ),
        _test(
            "expression_is_true_stg_y_n",
            "expression_is_true",
            model="stg_y",
            expression="n <= (select count(*) from {{ ref('communes') }})",
        ),
        _test("unique_stg_x_a", "unique", column_name="a"),
        _test(
            "unique_combination_of_columns_stg_x_a__k",
            "unique_combination_of_columns",
            combination_of_columns=["a", "k"],
        ),
    )
    files = row_rules.render_all(manifest)
    assert sorted(files) == ["row_rules_stg_x.sql", "row_rules_stg_y.sql"]
    x = files["row_rules_stg_x.sql"]
    assert row_rules.HEADER in x and "models/stg_x.yml" in x
    assert RULE.findall(x) == [
        "accepted_range_stg_x_a__0",
        "accepted_values_stg_x_k__é__o_k",
        "not_null_columns_stg_x_a__b",
        "unique_combination_of_columns_stg_x_a__k",
        "unique_stg_x_a",
    ]
    assert "{{ test_accepted_range(model=ref('stg_x'), column_name=\"a\", min_value=0) }}" in x
    # the test's where, as dbt's get_where_subquery applies it
    assert (
        '{{ test_accepted_values(model="(select * from " ~ ref(\'stg_x\') ~ " where " ~ '
        '"kind = \'value\'" ~ ") dbt_subquery", column_name="k", values=["é", "o\'k"]) }}'
    ) in x
    # each rule counts its failures as the original test would (its fail_calc)
    assert "cast(coalesce(sum(null_rows), 0) as bigint) as failures" in x
    assert "cast(count(*) as bigint) as failures" in x
    # the config comes last: a test macro's own config() (not_null_columns) must not win
    assert x.rstrip().endswith(
        "{{ config(tags=['row_rules'], severity='error', fail_calc='coalesce(sum(failures), 0)') }}"
    )
    # set-level tests too, counted as dbt counts them
    assert "{{ test_unique(model=ref('stg_x'), column_name=\"a\") }}" in x
    assert 'combination_of_columns=["a", "k"]' in x
    # an argument's {{ … }} is rendered by dbt: kept as a Jinja expression
    assert (
        'expression="n <= (select count(*) from " ~ (ref(\'communes\')) ~ ")"'
        in files["row_rules_stg_y.sql"]
    )


def test_a_test_reading_another_model_is_grouped_with_those_of_the_same_dependencies():
    """dbt build skips what is downstream of all a failing test's dependencies, and skips a
    test when one of them is skipped: a test that reads another model goes apart, unless that
    model is an ancestor of the tested one (it changes neither)."""
    manifest = _manifest(
        _test("unique_stg_x_a", "unique", column_name="a"),
        _test(
            "relationships_stg_x_a__ref_c_",
            "relationships",
            reads=("c",),
            column_name="a",
            to="ref('c')",
            field="id",
        ),
        _test(
            "relationships_stg_x_b__ref_c_",
            "relationships",
            reads=("c",),
            column_name="b",
            to="ref('c')",
            field="id",
        ),
        _test(
            "relationships_stg_x_a__ref_base_",
            "relationships",
            reads=("base",),
            column_name="a",
            to="ref('base')",
            field="id",
        ),
    )
    files = row_rules.render_all(manifest)
    assert sorted(files) == ["row_rules_stg_x.sql", "row_rules_stg_x__c.sql"]
    assert RULE.findall(files["row_rules_stg_x.sql"]) == [
        "relationships_stg_x_a__ref_base_",
        "unique_stg_x_a",
    ]
    apart = files["row_rules_stg_x__c.sql"]
    assert RULE.findall(apart) == ["relationships_stg_x_a__ref_c_", "relationships_stg_x_b__ref_c_"]
    assert "Ils lisent aussi c" in apart
    # dbt renders ``to: ref('c')`` as the relation (add_rendered_test_kwargs), not as text
    assert (
        '{{ test_relationships(model=ref(\'stg_x\'), column_name="a", field="id", '
        "to=(ref('c'))) }}"
    ) in apart


def test_only_tests_of_the_same_severity_are_grouped():
    manifest = _manifest(
        _test("not_null_stg_x_a", "not_null", column_name="a"),
        _test("not_null_stg_x_b", "not_null", config={"severity": "WARN"}, column_name="b"),
    )
    files = row_rules.render_all(manifest)
    assert sorted(files) == ["row_rules_stg_x.sql", "row_rules_stg_x__warn.sql"]
    assert "severity='warn'" in files["row_rules_stg_x__warn.sql"]
    assert RULE.findall(files["row_rules_stg_x__warn.sql"]) == ["not_null_stg_x_b"]


@pytest.mark.parametrize(
    "config", [{"error_if": "> 10"}, {"warn_if": "> 1"}, {"limit": 5}, {"store_failures": True}]
)
def test_a_test_whose_verdict_grouping_would_change_is_refused(config):
    manifest = _manifest(_test("not_null_stg_x_a", "not_null", config=config, column_name="a"))
    with pytest.raises(row_rules.RowRulesError):
        row_rules.render_all(manifest)


def test_sync_writes_checks_and_removes_only_generated_files(tmp_path):
    manifest = _manifest(_test("not_null_stg_x_a", "not_null", column_name="a"))
    (tmp_path / "row_rules_gone.sql").write_text("{# " + row_rules.HEADER + " #}\nselect 1\n")
    (tmp_path / "by_hand.sql").write_text("select 1\n")
    assert row_rules.sync_row_rules(manifest, check=True, folder=tmp_path) == [
        "row_rules_stg_x.sql",
        "row_rules_gone.sql (à retirer)",
    ]
    assert not (tmp_path / "row_rules_stg_x.sql").exists()
    row_rules.sync_row_rules(manifest, folder=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["by_hand.sql", "row_rules_stg_x.sql"]
    assert row_rules.sync_row_rules(manifest, check=True, folder=tmp_path) == []


# --- the project's own tests -------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifest() -> dict:
    return json.loads(ensure_manifest().read_text(encoding="utf-8"))


def test_every_row_level_test_is_covered_by_exactly_one_generated_test(manifest):
    row_level = sorted(n["name"] for n in manifest["nodes"].values() if row_rules.is_row_rule(n))
    assert len(row_level) > 100
    covered: list[str] = []
    for path in sorted(row_rules.ROW_RULES_DIR.glob("*.sql")):
        covered += RULE.findall(path.read_text(encoding="utf-8"))
    assert sorted(covered) == row_level  # each once, none dropped, none invented
    assert row_rules.covered_rules(manifest) == set(row_level)  # what project_nodes reads
    generated = sorted(n for n in manifest["nodes"] if row_rules.is_generated(n))
    assert [row_rules.rule_name(n) + ".sql" for n in generated] == sorted(
        p.name for p in row_rules.ROW_RULES_DIR.glob("*.sql")
    )
    for unique_id in generated:
        assert "row_rules" in manifest["nodes"][unique_id]["config"]["tags"]


def test_production_build_runs_the_generated_tests_instead_of_the_fine_grained_ones(manifest):
    exclude = DBT_BUILD_ARGS[DBT_BUILD_ARGS.index("--exclude") + 1].split()
    assert sorted(exclude) == sorted(f"test_name:{t}" for t in row_rules.ROW_RULE_TESTS)
    # the command dbt/README.md gives to run what production runs
    readme = (DBT_PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    assert f'--exclude "{row_rules.EXCLUDE_ROW_RULE_TESTS}"' in readme
    nodes = set(project_nodes(manifest))
    assert not any(
        row_rules.is_row_rule(manifest["nodes"][n]) for n in nodes if n in manifest["nodes"]
    )
    assert {n for n in nodes if n.startswith("exposure.")} == set(manifest["exposures"])
    assert {n for n in manifest["nodes"] if row_rules.is_generated(n)} <= nodes
    # every generic test of the project is grouped: only singular tests are left
    kinds = {row_rules.test_name_of(manifest["nodes"][n]) for n in nodes if n.startswith("test.")}
    assert kinds == {None}, "un test générique que kpi run lance seul : ROW_RULE_TESTS ?"


def test_a_generated_test_skips_and_is_skipped_by_exactly_what_its_tests_were(manifest):
    """In dbt build a failing (erroring, skipped) node skips its descendants in dbt's graph,
    where a test leads to the nodes downstream of all its dependencies (Linker.add_test_edges;
    the default, not the hidden --use-fast-test-edges). Each original test and the generated
    test that runs it have the same ancestors (what skips them) and the same descendants (what
    they skip)."""
    import networkx as nx
    from dbt.compilation import Linker
    from dbt.contracts.graph.manifest import Manifest, WritableManifest

    graph_manifest = Manifest.from_writable_manifest(
        WritableManifest.read_and_check_versions(str(ensure_manifest()))
    )
    linker = Linker()
    linker.link_graph(graph_manifest)
    graph_manifest.build_parent_and_child_maps()
    linker.add_test_edges_1(graph_manifest)
    graph = linker.graph
    by_name = {n["name"]: u for u, n in manifest["nodes"].items() if row_rules.is_row_rule(n)}
    checked = 0
    for unique_id, node in manifest["nodes"].items():
        if not row_rules.is_generated(unique_id):
            continue
        ancestors, descendants = nx.ancestors(graph, unique_id), nx.descendants(graph, unique_id)
        for name in RULE.findall(node["raw_code"]):
            original = by_name[name]
            assert nx.ancestors(graph, original) == ancestors, (name, unique_id)
            assert nx.descendants(graph, original) == descendants, (name, unique_id)
            checked += 1
    assert checked == len(by_name)


def test_a_failing_generated_test_names_its_failing_rules(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table t as select * from (values (1, null), (-1, 'a')) v(n, s)")
    con.close()
    compiled = (
        "select rule, failures from ("
        "select 'accepted_range_t_n__0' as rule, count(*) as failures from t where n < 0 "
        "union all select 'not_null_t_s' as rule, count(*) from t where s is null "
        "union all select 'not_null_t_n' as rule, count(*) from t where n is null"
        ") as r where failures <> 0"
    )
    results = {
        "results": [
            {
                "unique_id": "test.kpi_warehouse.row_rules_t",
                "status": "fail",
                "failures": 2,
                "message": "Got 2 results, configured to fail if != 0",
                "compiled_code": compiled,
            },
            {"unique_id": "test.kpi_warehouse.unique_t_n.abc", "status": "fail", "failures": 1},
        ]
    }
    warehouse = WarehouseResource(path=str(path))
    named = name_failing_rules(warehouse, results)["results"]
    assert named[0]["message"] == (
        "règle(s) en échec : accepted_range_t_n__0 (1), not_null_t_s (1) — Got 2 results, "
        "configured to fail if != 0"
    )
    assert "message" not in named[1]
    from dagster_project.defs.assets.dbt import record_dbt_results

    record_dbt_results(warehouse, "run-1", {"results": named})
    check = dbt_tests_result(warehouse, "run-1")
    listed = check.metadata["échecs"].value
    assert "row_rules_t (2 ligne(s)) — règle(s) en échec : accepted_range_t_n__0 (1)" in listed


def test_a_broken_compiled_sql_leaves_the_results_as_they_were(tmp_path):
    results = {
        "results": [
            {
                "unique_id": "test.kpi_warehouse.row_rules_t",
                "status": "fail",
                "message": "Got 1 result",
                "compiled_code": "select * from nowhere",
            }
        ]
    }
    warehouse = WarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
    assert name_failing_rules(warehouse, results)["results"][0]["message"] == "Got 1 result"


def test_a_row_level_test_no_generated_test_covers_is_not_silently_dropped(manifest):
    """Added to a .yml without `kpi generate`: the build leaves it out, so it stays among the
    project's nodes and is recorded ``not_run`` (blocking) instead of vanishing."""
    nodes = dict(manifest["nodes"])
    nodes.update(
        _test("accepted_range_stg_new_n__0", "accepted_range", column_name="n", min_value=0)
    )
    assert "test.kpi_warehouse.accepted_range_stg_new_n__0.abc" in project_nodes({"nodes": nodes})


@pytest.mark.parametrize(
    "name, rule",
    [
        ("row_rules_stg_eau_reseau", "accepted_range_stg_eau_reseau_capex_eur__0"),
        (
            "row_rules_stg_eau_reseau__communes",
            "relationships_stg_eau_reseau_code_insee__code_insee__ref_communes_",
        ),
    ],
)
def test_a_generated_test_can_be_waived_by_its_name(name, rule):
    from dagster_project.release.gate import apply_waivers

    assert (row_rules.ROW_RULES_DIR / f"{name}.sql").exists()
    failure = {
        "check": f"test.kpi_warehouse.{name}",
        "asset": "dbt",
        "description": f"fail: règle(s) en échec : {rule} (2)",
    }
    remaining, waived = apply_waivers([failure], {name: "justifié"})
    assert remaining == [] and waived[0]["justification"] == "justifié"
