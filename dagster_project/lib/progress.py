"""Progress lines for the command line (French, on stderr), silent unless a CLI asked for them."""

from __future__ import annotations

import os
import sys
import time

_START = time.monotonic()


def enabled() -> bool:
    """Whether a CLI asked for progress lines (``KPI_PROGRESS=1``)."""
    return os.environ.get("KPI_PROGRESS") == "1"


def progress(message: str) -> None:
    if enabled():
        print(f"[{time.monotonic() - _START:6.1f} s] {message}", file=sys.stderr, flush=True)
