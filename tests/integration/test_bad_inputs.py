"""The heaviest deliveries of the bad-input corpus (tests/bad_inputs/generate.py: huge sheets,
zip bombs) are rejected in bounded time and memory, measured in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support.bad_inputs import HEAVY, corpus_def


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs")
    corpus_def.generate(out)
    return out


MEASURE = textwrap.dedent(
    """
    import datetime as dt, json, resource, sys, time
    from pathlib import Path
    import duckdb
    from dagster_project.contracts.model import default_contracts
    from dagster_project.ingest.discovery import discover
    from dagster_project.ingest.pipeline import Ingestor

    corpus, names = Path(sys.argv[1]), sys.argv[2:]
    contracts = default_contracts()
    ingestor = Ingestor(duckdb.connect(), contracts, today=dt.date(2026, 1, 15))

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    baseline = discover(corpus / "_baseline" / "sources", contracts)
    for delivery in sorted(baseline, key=lambda d: d.source_id != "eau_udi"):
        if delivery.source_id in ("eau_udi", "eau_volumes"):
            assert ingestor.ingest_file(delivery)[0] == "accepted"
    result = {"baseline_kib": peak(), "cases": {}}
    for name in names:
        [delivery] = discover(corpus / name / "sources", contracts)
        start = time.perf_counter()
        outcome, _ = ingestor.ingest_file(delivery)
        result["cases"][name] = {
            "outcome": outcome,
            "seconds": time.perf_counter() - start,
            "peak_kib": peak(),
            "file_bytes": delivery.path.stat().st_size,
        }
    print(json.dumps(result))
    """
)


MAX_SECONDS = 5.0  # per file, on a loaded two-core machine (measured: 0.05 to 1 s)
MAX_EXTRA_MIB = 64  # peak memory above the process after a normal ingestion


# about 4 s, most of it starting Python and importing the pipeline
def test_huge_sheets_and_zip_bombs_are_rejected_in_bounded_time_and_memory(corpus):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    run = subprocess.run(
        [sys.executable, "-c", MEASURE, str(corpus), *HEAVY],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for name in HEAVY:
        measured = result["cases"][name]
        assert measured["outcome"] == "rejected", name
        assert measured["seconds"] < MAX_SECONDS, (name, measured)
        extra_mib = (measured["peak_kib"] - result["baseline_kib"]) / 1024
        assert extra_mib < MAX_EXTRA_MIB, (name, extra_mib)
