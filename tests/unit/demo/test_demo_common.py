"""The demo generator's shared helpers take the reference data from the contracts."""

from __future__ import annotations

from dagster_project.contracts import reference
from dagster_project.demo import _common


def test_the_demo_names_the_months_as_the_contracts_do():
    assert _common.MONTHS_FR is reference.MONTHS_FR  # written once, in the contracts
    assert _common.month_fr(2025, 8) == "août 2025"
    assert _common.month_fr(2025, 2, capital=True) == "Février 2025"
