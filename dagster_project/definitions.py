"""The Dagster code location (``dagster dev -m dagster_project.definitions``, ``kpi ui``).

Its module name is the code location's name, which keys the state Dagster keeps of sensors and
schedules (started, stopped, cursors): it stays ``dagster_project.definitions`` while the
wiring lives in ``dagster_project.defs``. The definitions are built when Dagster loads the
location (``@definitions``), not when this module is imported: preparing the dbt manifest
may start ``dbt parse``.
"""

from dagster import Definitions, definitions

from dagster_project.defs.definitions import build_definitions


@definitions
def defs() -> Definitions:
    return build_definitions()
