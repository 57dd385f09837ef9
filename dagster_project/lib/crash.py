"""Named points where a command can be killed on purpose, to test that every kill recovers.

``tests/integration/test_crash_safety.py`` sets ``KPI_CRASH_AT=<point>`` for one ``kpi`` command: when
the command reaches that point it kills itself with SIGKILL, as a crash, the OOM killer or a
power cut would (no ``finally``, no ``atexit``, nothing flushed). Without the variable (in
production) a point does nothing. The points of ``kpi freeze`` (``dagster_project.release.freeze``)
and of a publication (``dagster_project.warehouse.publication``) are listed in ``POINTS``.
"""

from __future__ import annotations

import os
import signal

ENV = "KPI_CRASH_AT"
POINTS = (
    # kpi freeze (dagster_project.release.freeze.freeze)
    "freeze:journal",  # intent written, nothing else yet
    "freeze:values",  # rows inserted (transaction open), values.csv/parquet in the staging
    "freeze:manifest",  # staging complete and read-only, journal holds its manifest's hash
    "freeze:renamed",  # staging renamed to releases/RA-…, database not committed
    "freeze:committed",  # database committed, anchor (SHA256SUMS) not written yet
    "freeze:anchored",  # anchor written, journal not removed yet
    # a publication (dagster_project.warehouse.publication.publish), after kpi run, kpi freeze, kpi publish
    "publish:copy",  # the new copy being written in its version folder
    "publish:exports",  # copy and Parquet exports written, not yet synced and read-only
    "publish:ready",  # version folder complete, not switched yet
    "publish:switched",  # `current` switched, old versions not cleaned yet
)


def crash_point(name: str) -> None:
    """Kill this process here when ``KPI_CRASH_AT`` names this point (tests only)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
