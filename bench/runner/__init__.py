"""The side-by-side benchmark's machinery (``bench/run.py`` is its command line).

* ``measure``    a child process timed from outside: wall, CPU, memory of its tree;
* ``children``   what each child process runs (raw read, ingestion, ``kpi``, dbt parse,
                 Dagster step timings, analyst queries), and the files the stages touch;
* ``scale_run``  ``ScaleRun``: the stages of one scale factor, on its generated files;
* ``render``     ``results.md`` / ``results.csv`` and the targets' verdicts from the JSON.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
for _path in (ROOT, BENCH):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

RUN_SCRIPT = BENCH / "run.py"  # the children are this script again (``run.py _raw ...``)
RESULTS = BENCH / "results"
WORK = Path(os.environ.get("KPI_BENCH_DIR", "/tmp/kpi_bench"))
TOOLS = WORK / "tools"  # pyinstrument installed with pip --target (never in the project venv)
VENV_BIN = Path(sys.executable).parent
PY = sys.executable
KPI = str(VENV_BIN / "kpi")
BENCH_KEY = "bench-only-key-0123456789abcdef0123456789abcdef"  # fictitious agents only
ALL_STAGES = [
    "raw",
    "naive",
    "naive_calamine",
    "ingest",
    "project",
    "redelivery",
    "queries",
    "fixed",
]
QUERY_RUNS = 50
