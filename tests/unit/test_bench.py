"""The benchmark's scale generator (bench/scale.py), on a tiny scale.

No timing is asserted anywhere: figures belong in bench/README.md, not in tests. What is
checked is that the generated campaign is one the project accepts: a synthetic referential
with unique codes and names, commune names that the project's matcher resolves, keys that
stay unique across EPCIs, control totals that still add up, and deliveries that the
ingestion engine accepts.
"""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = {"eau_udi", "eau_volumes", "eau_reseau", "dechets_prevention", "rh_arretes"}


def _load_scale():
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scale():
    return _load_scale()


@pytest.fixture(scope="module")
def sf2(scale, tmp_path_factory):
    out = tmp_path_factory.mktemp("sf2")
    manifest = scale.generate(2, out, jobs=1, only=SOURCES)
    return out, manifest


def test_referential_is_synthetic_and_unique(scale):
    rows = scale.referential(3)
    assert len(rows) == 300
    codes = [r["code_insee"] for r in rows]
    assert len(set(codes)) == 300
    assert all(len(c) == 5 and c.startswith("9") for c in codes)
    from dagster_project.ingest.normalize import commune_key

    assert len({commune_key(r["nom"]) for r in rows}) == 300
    assert len({r["siren"] for r in rows}) == 300
    assert scale.referential(1) == scale.real_communes()


def test_copies_average_and_determinism(scale):
    copies = [scale._copies("eau_qualite", f"PRL2025{i:05d}") for i in range(2000)]
    assert set(copies) == {10, 11}
    assert 10.5 < sum(copies) / len(copies) < 10.7
    assert copies == [scale._copies("eau_qualite", f"PRL2025{i:05d}") for i in range(2000)]
    assert scale._copies("eau_reseau", "x") == 1


def test_generated_campaign_layout(sf2):
    out, manifest = sf2
    assert manifest["communes"] == 200
    assert {f["source_id"] for f in manifest["files"]} == SOURCES
    with (out / "dbt" / "seeds" / "communes.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 200
    assert not (out / "dbt" / "target").exists()
    # tests bounding a count of communes by the 100 members follow the referential's size
    assert all("<= 200" in p for p in manifest["dbt_tests_patched"])
    rows = {f["source_id"]: f["rows"] for f in manifest["files"]}
    assert rows["eau_udi"] == 200  # every commune of the referential, once
    assert rows["eau_reseau"] == 400
    assert rows["rh_arretes"] < 200  # agglomeration-wide: delivered once, counts summed
    assert rows["dechets_prevention"] % 20 == 0  # 10 copies per action, 2 EPCIs


def test_project_accepts_the_generated_deliveries(sf2, scale):
    out, _ = sf2
    from dagster_project.contracts.model import default_contracts
    from dagster_project.ingest.discovery import discover
    from dagster_project.ingest.normalize import CommuneMatcher
    from dagster_project.ingest.pipeline import Ingestor

    with (out / "dbt" / "seeds" / "communes.csv").open(encoding="utf-8") as handle:
        communes = CommuneMatcher({r["code_insee"]: r["nom"] for r in csv.DictReader(handle)})
    contracts = default_contracts()
    con = duckdb.connect(":memory:")
    ingestor = Ingestor(con, contracts, communes=communes)
    files = discover(out / "sources", contracts)
    for source_id in ("eau_udi", "eau_volumes", "eau_reseau", "dechets_prevention", "rh_arretes"):
        summary = ingestor.ingest_source(source_id, files)
        problems = con.execute(
            "select reason from ingest.delivery_problems where severity = 'error' limit 3"
        ).fetchall()
        assert summary.accepted and not summary.rejected, (source_id, problems)
    udis = con.execute("select count(distinct udi), count(*) from raw.eau_udi").fetchone()
    assert udis == (16, 200)  # 8 UDIs per EPCI, each EPCI its own
    assert con.execute(
        "select count(*) from raw.eau_udi where udi = 'UDI-BETHUNOIS'"
    ).fetchone() == (11,)
    ids = con.execute(
        "select count(*), count(distinct id_action) from raw.dechets_prevention"
    ).fetchone()
    assert ids[0] == ids[1]


def test_a_target_line_says_when_its_figures_were_measured():
    """results.md must not pass off figures of different runs (another day, another machine)
    as one measurement: a target line combining them says so."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from runner.render import measured_when
    finally:
        sys.path.remove(str(ROOT / "bench"))
    morning, evening = 1796556000.0, 1796556000.0 + 9 * 3600
    one = {"started_at": morning, "bench_run": "a"}
    same_run = {"started_at": morning + 600, "bench_run": "a"}
    other_run = {"started_at": morning + 600, "bench_run": "b"}
    assert measured_when((1, one), (1, same_run)).count(":") == 1  # one time
    assert measured_when((10, one), (10, other_run)).startswith("different runs: ")
    old, later = {"started_at": morning}, {"started_at": evening}  # saved before bench_run
    assert measured_when((10, old), (100, later)).startswith("different runs: SF10 ")
    assert "SF100" in measured_when((10, old), (100, later))
    assert measured_when((1, {}), (1, {})) == "—"


def test_the_re_delivery_target_is_judged_on_medians():
    """Issue 19 measures in pairs and medians: N re-deliveries against the pairs' full runs."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from runner.render import targets
    finally:
        sys.path.remove(str(ROOT / "bench"))
    at = {"started_at": 1796556000.0, "bench_run": "a"}
    result = {
        "stages": {
            "kpi_run": {"wall_seconds": 5.5, "pairs_run_seconds": [5.5, 6.0, 6.5], **at},
            "redelivery": {
                "wall_seconds": 1.8,
                "runs_wall_seconds": [1.7, 1.8, 2.4],
                "full_run_seconds": 6.0,
                "ratio_to_full_run": 0.3,
                "unchanged_run_seconds": 1.75,
                **at,
            },
        }
    }
    (line,) = [t for t in targets({1: result}) if t[0] == "SF1: re-delivery ≤ 0.3 × full run"]
    assert line[1].startswith("median of 3 re-deliveries 1.8 s (1.7, 1.8, 2.4) / median full")
    assert "6.0 s = 0.30" in line[1] and line[2] == "met"


FORKED_MEMORY = """
import os, time
block = bytearray(200 * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
if os.fork() == 0:
    time.sleep(1.5)
    os._exit(0)
time.sleep(1.5)
os.wait()
"""


def test_the_peak_memory_counts_once_the_pages_a_forked_process_shares(monkeypatch):
    """The run and its GX worker are copies of the warm process: summed, their RSS counts the
    pages they share twice; the peak reported is the tree's PSS once it is read."""
    import subprocess
    import sys

    from runner import measure

    monkeypatch.setattr(measure, "PSS_ABOVE_KB", 100 * 2**10)
    monkeypatch.setattr(measure, "PSS_INTERVAL", 0.2)
    proc = subprocess.Popen([sys.executable, "-c", FORKED_MEMORY])
    sampler = measure.TreeSampler(proc.pid, interval=0.05)
    sampler.start()
    proc.wait(30)
    sampler.stop.set()
    sampler.join()
    assert sampler.peak_rss_kb > 380 * 2**10  # 200 MiB, twice
    assert sampler.pss_samples and sampler.peak_kb < 300 * 2**10  # once (with the interpreter)
