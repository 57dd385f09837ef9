"""The generated row_rules tests judge the data as the fine-grained .yml tests they replace in
production (dagster_project/defs/assets/dbt_row_rules.py): on a copy of the demo warehouse with
rows broken on purpose (values out of range or list, empty cells, duplicates, references to
nothing), the same original tests fail, with the same failure counts."""

from __future__ import annotations

import json
import os
import re
import subprocess

import duckdb

from dagster_project.defs.assets import dbt_row_rules as row_rules
from dagster_project.defs.assets.dbt import name_failing_rules
from dagster_project.defs.resources import WarehouseResource, dbt_executable
from dagster_project.settings import DBT_PROJECT_DIR

BREAK = """
update seeds.communes set population_municipale = -5
    where code_insee = (select min(code_insee) from seeds.communes);
update seeds.units set unit_label = '  ' where unit = (select min(unit) from seeds.units);
update seeds.indicator_catalogue set priority = 'P9'
    where indicator_id = (select min(indicator_id) from seeds.indicator_catalogue);
-- outside the test's `where computation = 'derived'`: not a failure
update seeds.indicator_catalogue set definition = null where computation = 'declared';
update intermediate.int_water__volumes_yearly set water_network_yield = -1
    where year = (select min(year) from intermediate.int_water__volumes_yearly);
update intermediate.int_water__volumes_yearly set volume_produced_m3 = null;
-- set-level tests: a duplicated value, a duplicated grain, references to nothing (one of
-- them grouped with the model's other tests, the others apart: they read indicator_catalogue)
update seeds.communes set nom = (
    select nom from seeds.communes where code_insee = (select max(code_insee) from seeds.communes)
) where code_insee = (select min(code_insee) from seeds.communes);
insert into intermediate.int_water__volumes_yearly
    select * from intermediate.int_water__volumes_yearly
    where year = (select max(year) from intermediate.int_water__volumes_yearly);
update seeds.value_comments set indicator_id = 'indicateur_inconnu'
    where indicator_id = (select min(indicator_id) from seeds.value_comments);
update intermediate.int_water__indicator_values set indicator_id = 'indicateur_inconnu'
    where indicator_id = (select min(indicator_id) from intermediate.int_water__indicator_values);
"""
EXPECTED = {
    "accepted_range_communes_population_municipale__0",
    "not_empty_string_units_unit_label",
    "accepted_values_indicator_catalogue_priority__P1__P2__P3__P4__APPUI__TERRITOIRE",
    "accepted_range_int_water__volumes_yearly_water_network_yield__0",
    "unique_communes_nom",
    "unique_combination_of_columns_int_water__volumes_yearly_year",
    "relationships_value_comments_indicator_id__indicator_id__ref_indicator_catalogue_",
    "relationships_int_water__indicator_values_indicator_id__indicator_id__ref_indicator_catalogue_",
}
# the generated tests apart from their model's others (they read another model)
APART = {
    "row_rules_value_comments__indicator_catalogue",
    "row_rules_int_water__indicator_values__indicator_catalogue",
}


def test_generated_row_rules_fail_exactly_where_the_fine_grained_tests_fail(
    demo_warehouse, tmp_path
):
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    demo = demo_warehouse.copy(tmp_path / "demo")
    build = demo.root / ".build" / "warehouse.duckdb"
    con = duckdb.connect(str(build))
    con.execute(BREAK)
    null_cells = con.execute(
        "select count(*) from intermediate.int_water__volumes_yearly"
    ).fetchone()[0]
    renamed = con.execute(
        "select count(*) from intermediate.int_water__indicator_values "
        "where indicator_id = 'indicateur_inconnu'"
    ).fetchone()[0]
    con.close()

    target = tmp_path / "target"
    selection = " ".join(f"test_name:{t}" for t in row_rules.ROW_RULE_TESTS)
    result = subprocess.run(
        [
            dbt_executable(),
            "test",
            "--select",
            f"{selection} tag:{row_rules.TAG}",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ],
        env={
            **os.environ,
            "KPI_BUILD_WAREHOUSE": str(build),
            "KPI_DBT_TARGET": "duckdb",
            "DBT_LOG_PATH": str(tmp_path / "logs"),
        },
        capture_output=True,
        text=True,
        cwd=DBT_PROJECT_DIR,
    )
    run_results = json.loads((target / "run_results.json").read_text(encoding="utf-8"))
    results = run_results["results"]
    assert not [r for r in results if r["status"] == "error"], result.stdout[-3000:]

    fine = {
        row_rules.rule_name(r["unique_id"]): r["failures"]
        for r in results
        if not row_rules.is_generated(r["unique_id"]) and r["status"] == "fail"
    }
    generated = [r for r in results if row_rules.is_generated(r["unique_id"])]
    assert len(generated) == len(list(row_rules.ROW_RULES_DIR.glob("*.sql")))
    assert len(results) - len(generated) > 100  # every fine-grained row test ran too

    grouped: dict[str, int] = {}
    con = duckdb.connect(str(build), read_only=True)
    for r in generated:
        rules = row_rules.failing_rules(con, r["compiled_code"])
        # a generated test fails iff one of its rules does, counting their failures
        assert (r["status"] == "fail") == bool(rules), r["unique_id"]
        assert (r["failures"] or 0) == sum(count for _, count in rules)
        grouped.update(rules)
    con.close()

    assert set(fine) >= EXPECTED
    not_null_volumes = [n for n in fine if n.startswith("not_null_columns_int_water__volumes")]
    assert len(not_null_volumes) == 1 and fine[not_null_volumes[0]] == null_cells
    assert "not_null_indicator_catalogue_definition" not in fine
    # a duplicated value or grain counts once, a reference to nothing once per row
    assert fine["unique_communes_nom"] == 1
    assert fine["unique_combination_of_columns_int_water__volumes_yearly_year"] == 1
    assert (
        fine[
            "relationships_int_water__indicator_values_indicator_id__indicator_id__ref_"
            "indicator_catalogue_"
        ]
        == renamed
    )
    failing = {row_rules.rule_name(r["unique_id"]) for r in generated if r["status"] == "fail"}
    assert failing >= APART
    assert grouped == fine  # the same original tests fail, with the same counts

    # what the production run records: each failing generated test names its rules
    named = name_failing_rules(WarehouseResource(path=str(build)), run_results)["results"]
    messages = " ".join(
        r["message"] for r in named if row_rules.is_generated(r["unique_id"]) and r["message"]
    )
    assert set(re.findall(r"(\w+) \(\d+\)", messages)) == set(fine)
