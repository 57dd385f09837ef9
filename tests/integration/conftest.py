"""Everything under tests/integration is slow (end to end, dbt, Dagster, PostgreSQL, browser,
crash, concurrency): marked here by its folder, so `pytest` (``-m 'not slow'``) leaves it out
and `pytest -m slow` runs it: a test of this folder need not mark itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.shared import exclusive, session_dir

INTEGRATION_DIR = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # called with every item of the session: mark only this folder's
    for item in items:
        if item.path.resolve().is_relative_to(INTEGRATION_DIR):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def postgres_alone(tmp_path_factory):
    """The PostgreSQL server to this test alone: `make test` runs the tests on 2 processes
    (pytest-xdist), and the tests that use the server share its database KPI_PG_DBNAME when
    the role may not create one of their own. Every test that uses the server takes it
    (``@pytest.mark.usefixtures("postgres_alone")``): they run one after the other."""
    with exclusive(session_dir(tmp_path_factory) / "postgres.lock"):
        yield
