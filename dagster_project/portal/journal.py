"""The portal's journal, copied into the warehouse at each ``kpi run``.

The portal never writes the warehouse; ``kpi run`` (``cli/run.py``), which holds the build
database, copies the journal rows it has not yet from ``.portal/portail.sqlite`` into
``audit.portal_journal``, so auditors query who uploaded, reviewed, sent and froze what in
the published copy with the rest of the audit tables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

JOURNAL_COLUMNS = (
    "id",
    "at",
    "login",
    "role",
    "action",
    "year",
    "department",
    "source_id",
    "detail",
    "client",
)


def copy_journal(state_file: Path, con) -> int:
    """Copy the rows of the portal's journal the warehouse has not yet into
    ``audit.portal_journal`` of the build database ``con`` (opened for writing by its caller,
    ``kpi run``): auditors query it in the published copy with the rest of the audit tables.
    The portal itself never writes the warehouse. Returns the number of rows copied."""
    from dagster_project.warehouse import schema
    from dagster_project.warehouse.relations import insert_rows

    if not state_file.exists():
        return 0
    schema.ensure(con, "audit.portal_journal")
    last = con.execute("select coalesce(max(id), 0) from audit.portal_journal").fetchone()[0]
    source = sqlite3.connect(f"file:{state_file}?mode=ro", uri=True, timeout=30)
    try:
        rows = source.execute(
            f"select {', '.join(JOURNAL_COLUMNS)} from journal where id > ? order by id", [last]
        ).fetchall()
    except sqlite3.OperationalError:  # a portal file without a journal yet
        rows = []
    finally:
        source.close()
    if rows:
        columns = ["logged_at" if c == "at" else c for c in JOURNAL_COLUMNS]
        insert_rows(con, "audit.portal_journal", columns, rows)
    return len(rows)
