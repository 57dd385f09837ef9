"""Deliveries end to end into DuckDB: lineage, in-force rule, rejection reports, idempotence."""

from __future__ import annotations

import csv
import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest

from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import Ingestor

ACTIVITY_HEADER = [
    "code_insee",
    "mois",
    "controles_spanc_vente",
    "branchements_eu_crees",
    "demandes_eaux_pluviales",
]


@pytest.fixture
def sources(tmp_path):
    folder = tmp_path / "sources" / "2025" / "water"
    folder.mkdir(parents=True)
    return tmp_path / "sources"


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def deliver(workbook, sources, name, rows, mtime, year=2025, department="water"):
    path = workbook({"Activité": [ACTIVITY_HEADER, *rows]}, name=name)
    target = sources / str(year) / department / name
    target.parent.mkdir(parents=True, exist_ok=True)
    path.replace(target)
    os.utime(target, (mtime, mtime))
    return target


def ingest(con, contracts, sources):
    ingestor = Ingestor(con, contracts, today=dt.date(2026, 1, 15))
    return ingestor.ingest_source("assainissement_activite", discover(sources, contracts))


def figures(con):
    return con.execute(
        "select sum(controles_spanc_vente) from raw.assainissement_activite a "
        "join ingest.deliveries d on d.delivery_id = a._delivery_id where d.in_force"
    ).fetchone()[0]


def test_rows_keep_their_lineage(con, contracts, sources, workbook):
    path = deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
    )
    summary = ingest(con, contracts, sources)
    assert len(summary.accepted) == 1
    row = con.execute(
        "select _delivery_id, _file_sha256, _sheet, _row_number, _campaign_year, _department "
        "from raw.assainissement_activite"
    ).fetchone()
    delivery = con.execute(
        "select delivery_id, file_sha256, file_path, outcome, in_force from ingest.deliveries"
    ).fetchone()
    assert row == (delivery[0], delivery[1], "Activité", 2, 2025, "water")
    assert delivery[2] == str(path) and delivery[3:] == ("accepted", True)
    assert len(delivery[1]) == 64


def test_rejected_redelivery_leaves_previous_figures_in_force(con, contracts, sources, workbook):
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0], ["62178", "2025-01", 6, 1, 0]],
        1_700_000_000,
    )
    ingest(con, contracts, sources)
    assert figures(con) == 10
    bad = deliver(
        workbook,
        sources,
        "assainissement_activite_2025_v2.xlsx",
        [["62119", "2025-01", 40, 1, 0], ["62178", "2025-13", 6, 1, 0]],
        1_700_100_000,
    )
    summary = ingest(con, contracts, sources)
    assert len(summary.rejected) == 1 and summary.unchanged == 1
    assert figures(con) == 10  # the accepted delivery stays in force, nothing of v2 entered
    assert con.execute("select count(*) from raw.assainissement_activite").fetchone()[0] == 2
    report = bad.with_name(bad.name + ".rejet.csv")
    with report.open(encoding="utf-8-sig") as handle:
        lines = list(csv.reader(handle, delimiter=";"))
    # see tests/unit/ingest/test_rejection_report.py
    assert lines[0][:3] == ["Fichier", "Feuille", "Lignes"]
    assert lines[1][:5] == [
        "2025/water/assainissement_activite_2025_v2.xlsx",
        "Activité",
        "3",
        "mois",
        "2025-13",
    ]
    stored = con.execute(
        "select row_number, column_name, value from ingest.delivery_problems p "
        "join ingest.deliveries d using (delivery_id) where d.outcome = 'rejected'"
    ).fetchall()
    assert stored == [(3, "mois", "2025-13")]


def test_newer_accepted_delivery_replaces_the_previous_whole(con, contracts, sources, workbook):
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0], ["62178", "2025-01", 6, 1, 0]],
        1_700_000_000,
    )
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025_corrige.xlsx",
        [["62119", "2025-01", 5, 1, 0]],
        1_700_100_000,
    )
    ingest(con, contracts, sources)
    assert figures(con) == 5  # replaced, never appended
    outcomes = con.execute(
        "select file_name, outcome, in_force from ingest.deliveries order by received_at"
    ).fetchall()
    assert outcomes == [
        ("assainissement_activite_2025.xlsx", "accepted", False),
        ("assainissement_activite_2025_corrige.xlsx", "accepted", True),
    ]


def test_rerun_without_new_delivery_changes_nothing(con, contracts, sources, workbook):
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
    )
    ingest(con, contracts, sources)
    before = con.execute("select * from ingest.deliveries").fetchall()
    summary = ingest(con, contracts, sources)
    assert summary.unchanged == 1 and not summary.accepted and not summary.rejected
    assert con.execute("select * from ingest.deliveries").fetchall() == before


def test_rejected_file_is_retried_once_its_reference_arrives(
    con, contracts, sources, workbook, tmp_path
):
    header = ["udi", "mois", "volume_produit_m3", "volume_consomme_autorise_m3"]
    path = workbook({"V": [header, ["UDI-LYS", "2025-01", 10, 8]]}, name="eau_volumes_2025.xlsx")
    path.replace(sources / "2025" / "water" / path.name)
    ingestor = Ingestor(con, contracts, today=dt.date(2026, 1, 15))
    files = discover(sources, contracts)
    assert ingestor.ingest_source("eau_volumes", files).rejected  # eau_udi not delivered yet
    udi_rows = [["udi", "nom_udi", "code_insee"]] + [
        ["UDI-LYS", "Lys", code] for code in ingestor.communes.names
    ]
    udi = workbook({"UDI": udi_rows}, name="eau_udi_2025.xlsx")
    udi.replace(sources / "2025" / "water" / udi.name)
    files = discover(sources, contracts)
    assert ingestor.ingest_source("eau_udi", files).accepted
    assert ingestor.ingest_source("eau_volumes", files).accepted
    assert not Path(
        str(sources / "2025" / "water" / "eau_volumes_2025.xlsx") + ".rejet.csv"
    ).exists()


def test_source_delivered_in_the_wrong_department_folder_is_rejected(
    con, contracts, sources, workbook
):
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
        department="waste",
    )
    summary = ingest(con, contracts, sources)
    assert len(summary.rejected) == 1
    reason = con.execute("select reason from ingest.delivery_problems").fetchone()[0]
    assert "water" in reason and "waste" in reason


# --- the lifecycle of a delivery: the newest file present is in force ------------------------


def _states(con):
    return con.execute(
        "select file_name, outcome, in_force, present, withdrawn_at is not null "
        "from ingest.deliveries order by received_at, file_name"
    ).fetchall()


def test_removing_the_file_in_force_restores_the_previous_and_the_history_stays(
    con, contracts, sources, workbook
):
    first = deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
    )
    mistake = deliver(
        workbook,
        sources,
        "assainissement_activite_2025_v2.xlsx",
        [["62119", "2025-01", 4000, 1, 0]],
        1_700_100_000,
    )
    ingest(con, contracts, sources)
    assert figures(con) == 4000
    original_bytes = first.read_bytes()

    # the v2 file is deleted: the original is in force again, v2 stays in the history
    mistake.unlink()
    summary = ingest(con, contracts, sources)
    assert figures(con) == 4
    assert summary.in_force == {(2025, "water"): summary.in_force[(2025, "water")]}
    assert _states(con) == [
        ("assainissement_activite_2025.xlsx", "accepted", True, True, False),
        ("assainissement_activite_2025_v2.xlsx", "accepted", False, False, True),
    ]

    # every file removed: nothing in force (the source is « non reçu »), history kept
    first.unlink()
    ingest(con, contracts, sources)
    assert figures(con) is None
    assert [s[2:] for s in _states(con)] == [(False, False, True), (False, False, True)]

    # the original put back (same bytes, a new modification time): in force again, its
    # figures back, without being read again
    first.write_bytes(original_bytes)
    summary = ingest(con, contracts, sources)
    assert summary.unchanged == 1 and not summary.accepted
    assert figures(con) == 4
    assert _states(con)[0][2:] == (True, True, False)


def test_an_earlier_file_copied_back_as_the_newest_is_in_force(con, contracts, sources, workbook):
    """The kit's rule: the newest file present is in force, even when its content is that of
    an earlier delivery (a department re-deposits last month's file over a wrong one)."""
    first = deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
    )
    deliver(
        workbook,
        sources,
        "assainissement_activite_2025_v2.xlsx",
        [["62119", "2025-01", 4000, 1, 0]],
        1_700_100_000,
    )
    ingest(con, contracts, sources)
    assert figures(con) == 4000
    copy = sources / "2025" / "water" / "assainissement_activite_2025_v3.xlsx"
    copy.write_bytes(first.read_bytes())
    os.utime(copy, (1_700_200_000, 1_700_200_000))
    ingest(con, contracts, sources)
    assert figures(con) == 4


def test_a_removed_rejected_file_leaves_the_campaign_status(con, contracts, sources, workbook):
    from support.campaigns import CAMPAIGN_2025, write_campaign

    from dagster_project.campaign.status import campaign_status

    good = deliver(
        workbook,
        sources,
        "assainissement_activite_2025.xlsx",
        [["62119", "2025-01", 4, 1, 0]],
        1_700_000_000,
    )
    bad = deliver(
        workbook,
        sources,
        "assainissement_activite_2025_v2.xlsx",
        [["99999", "2025-01", -4, 1, 0]],
        1_700_100_000,
    )
    assert good.exists()
    write_campaign(sources, CAMPAIGN_2025)
    ingest(con, contracts, sources)
    row = _activity_row(campaign_status(con, sources, 2025, dt.date(2026, 1, 15)))
    assert row.rejected
    bad.unlink()
    bad.with_name(bad.name + ".rejet.csv").unlink(missing_ok=True)
    ingest(con, contracts, sources)
    row = _activity_row(campaign_status(con, sources, 2025, dt.date(2026, 1, 15)))
    assert not row.rejected and row.accepted_in_force
    assert row.latest_file == "assainissement_activite_2025.xlsx"


def _activity_row(rows):
    return next(r for r in rows if r.source_id == "assainissement_activite")


def test_raw_tables_are_made_and_grow_with_their_contracts(con, contracts):
    """``store.ensure_tables`` (every run, one catalogue query for all the raw tables) creates
    the missing ones and adds the columns a contract gained, keeping the rows; nothing else."""
    from dagster_project.ingest import store

    store.ensure_tables(con, contracts.values())
    reseau = contracts["eau_reseau"]
    wanted = [name for name, _kind in reseau.stored_columns + store.LINEAGE_COLUMNS]
    assert list(store.column_names(con, reseau.raw_table)) != []
    dropped = wanted[1]
    con.execute(f'insert into {reseau.raw_table} ("{wanted[0]}") values (null)')
    con.execute(f'alter table {reseau.raw_table} drop column "{dropped}"')  # a column gained
    con.execute("drop table raw.eau_udi")  # a new contract
    store.ensure_tables(con, contracts.values())
    assert store.column_names(con, reseau.raw_table) == set(wanted)
    assert con.execute(f"select count(*) from {reseau.raw_table}").fetchone() == (1,)
    assert store.column_names(con, "raw.eau_udi")
    before = con.execute(
        "select schema_name, table_name, column_name from duckdb_columns() order by all"
    ).fetchall()
    store.ensure_tables(con, contracts.values())  # idempotent
    assert (
        before
        == con.execute(
            "select schema_name, table_name, column_name from duckdb_columns() order by all"
        ).fetchall()
    )
