"""The settings a test must not inherit from the process environment."""

from __future__ import annotations

# what `Settings.export()` of an in-process run may have left in os.environ: never inherited
SETTINGS_VARS = (
    "KPI_SOURCES",
    "KPI_WAREHOUSE",
    "KPI_BUILD_WAREHOUSE",
    "KPI_RELEASES",
    "KPI_DBT_TARGET",
    "KPI_TODAY",
)
