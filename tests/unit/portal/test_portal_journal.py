"""The portal's journal reaches the warehouse: ``kpi run`` copies it into audit.portal_journal."""

from __future__ import annotations

import duckdb

from dagster_project.portal.journal import copy_journal
from dagster_project.portal.store import PortalStore


def test_the_journal_is_copied_once_and_follows_new_actions(tmp_path):
    store = PortalStore(tmp_path / "portail.sqlite")
    store.log(None, "connexion", login="eau", client="127.0.0.1")
    store.log(None, "dépôt", login="eau", year=2025, department="water", source_id="eau_udi")
    con = duckdb.connect()
    assert copy_journal(tmp_path / "portail.sqlite", con) == 2
    assert copy_journal(tmp_path / "portail.sqlite", con) == 0  # nothing twice
    store.log(None, "gel", login="pilotage", year=2025, detail="RA-2025-v1")
    assert copy_journal(tmp_path / "portail.sqlite", con) == 1
    rows = con.execute(
        "select login, action, year, source_id from audit.portal_journal order by id"
    ).fetchall()
    assert rows == [
        ("eau", "connexion", None, None),
        ("eau", "dépôt", 2025, "eau_udi"),
        ("pilotage", "gel", 2025, None),
    ]


def test_no_portal_no_table(tmp_path):
    con = duckdb.connect()
    assert copy_journal(tmp_path / "absent.sqlite", con) == 0
    assert not con.execute(
        "select count(*) from information_schema.tables where table_name = 'portal_journal'"
    ).fetchone()[0]
