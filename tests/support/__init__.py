"""Helpers shared by several test files (tests/ is on sys.path: ``from support.x import y``).

One module per subject; a test file never imports another test file. Subprocess scripts that
need a helper put ``TESTS_DIR`` on their ``sys.path`` first.
"""

from __future__ import annotations

from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[1]
