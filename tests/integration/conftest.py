"""Everything under tests/integration is slow (end to end, dbt, Dagster, PostgreSQL, browser,
crash, concurrency): marked here by its folder, so `pytest` (``-m 'not slow'``) leaves it out
and `pytest -m slow` runs it: a test of this folder need not mark itself."""

from __future__ import annotations

from pathlib import Path

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # called with every item of the session: mark only this folder's
    for item in items:
        if item.path.resolve().is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.slow)
