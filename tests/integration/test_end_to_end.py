"""Demo campaign → `kpi run` → `kpi freeze`: the released figures equal the published ones.

Slow (dbt and Dagster run for real), run in CI by `make test`. The demo campaign and its
`kpi run` are the session's (conftest.demo_warehouse, shared with test_sensor.py); this module
freezes its own copy.
"""

from __future__ import annotations

import csv
import json
import shutil

import duckdb
import pytest

from dagster_project.cli import main
from dagster_project.quality.published_figures import compare, published_figures


@pytest.fixture(scope="module")
def campaign(demo_warehouse, tmp_path_factory, monkeypatch_module):
    """A private copy of the session's demo warehouse (conftest.demo_warehouse: the demo
    generator's workbooks, one uninterrupted `kpi run`); this module freezes it."""
    built = demo_warehouse.copy(tmp_path_factory.mktemp("e2e") / "campaign")
    monkeypatch_module.setenv("DAGSTER_HOME", str(built.dagster_home))
    return {
        "root": built.root,
        "sources": built.sources,
        "warehouse": built.warehouse,
        "releases": built.releases,
        "run_code": demo_warehouse.returncode,
        "run_output": demo_warehouse.stdout + demo_warehouse.stderr,
    }


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def release(campaign):
    code = main(
        [
            "freeze",
            "--year",
            "2025",
            "--warehouse",
            str(campaign["warehouse"]),
            "--releases",
            str(campaign["releases"]),
        ]
    )
    assert code == 0
    return campaign["releases"] / "RA-2025-v1"


def test_run_accepts_every_demo_delivery(campaign):
    assert campaign["run_code"] == 0, campaign["run_output"][-3000:]
    con = duckdb.connect(str(campaign["warehouse"]), read_only=True)
    outcomes = dict(
        con.execute("select outcome, count(*) from ingest.deliveries group by 1").fetchall()
    )
    con.close()
    assert outcomes.get("rejected", 0) == 0 and outcomes["accepted"] > 40


def test_released_figures_equal_the_published_ones(release):
    with (release / "values.csv").open(encoding="utf-8") as handle:
        values = {
            row["indicator_id"]: float(row["value"])
            for row in csv.DictReader(handle)
            if row["code_insee"] == ""
        }
    comparisons = compare(values)
    wrong = [c for c in comparisons if not c.ok]
    assert not wrong, wrong[:20]
    water = {f.indicator_id for f in published_figures() if f.department == "water"}
    assert water <= {c.indicator_id for c in comparisons if c.ok}


def test_manifest_hashes_inputs_and_outputs(release):
    manifest = json.loads((release / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["release_id"] == "RA-2025-v1"
    assert {d["source_id"] for d in manifest["inputs"]} >= {"eau_reseau", "eau_udi", "eau_volumes"}
    assert all(len(d["file_sha256"]) == 64 for d in manifest["inputs"])
    from dagster_project.lib.hashing import sha256_file

    for name, digest in manifest["outputs"].items():
        assert sha256_file(release / name) == digest
    assert manifest["tools"]["duckdb"] == duckdb.__version__


def test_freeze_refuses_to_overwrite_a_release(campaign, release):
    args = [
        "freeze",
        "--year",
        "2025",
        "--warehouse",
        str(campaign["warehouse"]),
        "--releases",
        str(campaign["releases"]),
    ]
    assert main(args) == 3  # a second version needs a reason
    assert not (campaign["releases"] / "RA-2025-v2").exists()


def test_indicator_with_missing_source_is_absent_not_zero(campaign, tmp_path):
    sources = tmp_path / "sources"
    shutil.copytree(campaign["sources"] / "2025", sources / "2025")
    for path in (sources / "2025" / "water").glob("eau_reseau*"):
        path.unlink()
    warehouse = tmp_path / "w.duckdb"
    assert main(
        ["run", "--sources", str(sources), "--warehouse", str(warehouse), "--today", "2026-01-31"]
    ) in (0, 3)
    # the build database: a run with a blocking failure (exit 3) is not published
    con = duckdb.connect(str(warehouse.parent / ".build" / warehouse.name), read_only=True)
    ids = {
        r[0]
        for r in con.execute(
            "select distinct indicator_id from marts.fct_indicator_values"
        ).fetchall()
    }
    years = {
        r[0] for r in con.execute("select distinct year from marts.fct_indicator_values").fetchall()
    }
    con.close()
    assert "water_network_length" not in ids and "sewer_network_length" not in ids
    assert "water_volume_produced" in ids and years == {2025}


def test_no_analyst_readable_table_holds_a_row_per_agent(campaign):
    """Per-agent HR data lives only in raw_restricted and restricted of the build database,
    never in the published copy analysts open."""
    query = (
        "select distinct table_schema || '.' || table_name from information_schema.columns "
        "where column_name in ('matricule', 'age_months', 'date_naissance')"
    )
    build = campaign["warehouse"].parent / ".build" / campaign["warehouse"].name
    con = duckdb.connect(str(build), read_only=True)
    personal = con.execute(query).fetchall()
    con.close()
    assert personal and all(
        t.split(".")[0] in ("raw_restricted", "restricted") for (t,) in personal
    )
    con = duckdb.connect(str(campaign["warehouse"]), read_only=True)
    published = con.execute(query).fetchall()
    con.close()
    assert published == []


def test_report_contradictions_carry_their_comment(campaign):
    con = duckdb.connect(str(campaign["warehouse"]), read_only=True)
    rows = dict(
        con.execute(
            "select indicator_id, comment from marts.p3_indicators where year = 2025 and code_insee is null "
            "and indicator_id in ('social_housing_new_programmed', 'social_housing_production_units', "
            "'social_housing_state_delegated_credits', 'social_housing_production_envelope')"
        ).fetchall()
    )
    con.close()
    assert len(rows) == 4 and all(comment for comment in rows.values())
