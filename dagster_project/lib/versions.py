"""The versions of the tools the project runs on, one list for every place that records them.

A release manifest records ``tool_versions()`` (``TOOLS``, « absent » for one not
installed); the benchmark (``bench/run.py``) reports the same tools plus the Excel libraries
its naive peer and the exports use (``EXCEL_TOOLS``). Changing ``TOOLS`` changes the bytes of
the manifests frozen afterwards (never of those already frozen).
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata

TOOLS = [
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "dagster",
    "dagster-dbt",
    "great-expectations",
    "pandas",
    "python-calamine",
]
EXCEL_TOOLS = ["openpyxl", "xlsxwriter"]
ABSENT = "absent"


def tool_versions(tools: Iterable[str] = TOOLS, absent: str | None = ABSENT) -> dict:
    """{distribution name: installed version}, ``absent`` for one that is not installed."""
    versions = {}
    for tool in tools:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = absent
    return versions
