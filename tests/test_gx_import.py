"""Great Expectations imported ahead of time in a background thread (validation/gx_import.py)."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys, threading
from dagster_project.validation import gx_import
assert "great_expectations" not in sys.modules
gx_import.preload()
gx_import.preload()  # once per process
threads = [t for t in threading.enumerate() if t.name == "kpi-preload-gx"]
assert len(threads) == 1, threads
gx = gx_import.module()  # waits for the preload
assert not threads[0].is_alive()
assert gx is sys.modules["great_expectations"] and hasattr(gx, "ExpectationSuite")
print("ok")
"""


def test_preload_imports_gx_once_and_module_waits_for_it():
    # a fresh interpreter: this test process may already have imported GX
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "ok"
