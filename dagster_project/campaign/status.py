"""Where each expected delivery of the yearly campaign stands.

``campaign_status`` confronts the campaign file (``plan.py``) with the delivery log written
by ingestion (``ingest.deliveries``, ``ingest.delivery_problems``) and with the files
waiting in the delivery folders: one ``StatusRow`` per (department, source), with its
French label (``status_label``), and the counts of ``summarize``. ``write_status_table``
keeps the result in the warehouse table ``campaign.status``; ``status_report.py`` presents
it, ``reminders.py`` chases what is late, rejected or to confirm.

Every date is judged against a ``today`` argument, never the system clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.campaign.dates import days_fr, fr_date
from dagster_project.campaign.plan import Campaign, load_campaign
from dagster_project.contracts.model import ANY_DEPARTMENT, Contract, default_contracts
from dagster_project.ingest.discovery import NOTICE_SUFFIX, delivery_sha256, discover
from dagster_project.warehouse.relations import (
    column_exists,
    insert_rows,
    table_exists,
    transaction,
)
from dagster_project.warehouse.schema import STATUS_COLUMNS, ensure

# --- status ----------------------------------------------------------------------------------


@dataclass
class StatusRow:
    """Where one (department, source) stands in the campaign of ``year``."""

    year: int
    department: str
    source_id: str
    title_fr: str = ""
    direction_fr: str = ""
    owner: str = ""  # contact name
    email: str = ""
    due_date: dt.date | None = None
    required: bool = False
    expected: bool = True  # False: delivered although the campaign file does not list it
    received: bool = False
    latest_delivery_id: str | None = None
    latest_file: str | None = None
    received_at: dt.datetime | None = None
    latest_sha256: str | None = None
    latest_outcome: str | None = None  # accepted | rejected
    problem_count: int | None = None
    report_path: str | None = None
    in_force_file: str | None = None
    in_force_received_at: dt.datetime | None = None
    days_late: int = 0
    pending_file: str | None = None  # deposited, not processed by ingestion yet
    pending_since: dt.datetime | None = None
    in_force_delivery_id: str | None = None
    atypical_count: int = 0  # values of the delivery in force still to confirm
    status_fr: str = ""

    @property
    def late(self) -> bool:
        return self.days_late > 0

    @property
    def rejected(self) -> bool:
        return self.latest_outcome == "rejected"

    @property
    def accepted_in_force(self) -> bool:
        return self.in_force_file is not None


@dataclass(frozen=True)
class StatusSummary:
    year: int
    expected: int  # required entries of the campaign file
    received: int  # of those, with at least one delivery
    accepted: int  # of those, with a delivery in force
    late: int
    rejected: int  # rows whose latest delivery is rejected
    optional: int  # non-required entries
    unexpected: int  # delivered, not in the campaign file
    pending: int  # files deposited, not processed yet

    def text_fr(self) -> str:
        parts = [
            f"{self.received} reçue{'s' if self.received > 1 else ''} sur "
            f"{self.expected} attendue{'s' if self.expected > 1 else ''} "
            f"({self.accepted} acceptée{'s' if self.accepted > 1 else ''})",
            f"{self.late} en retard",
            f"{self.rejected} rejetée{'s' if self.rejected > 1 else ''}",
        ]
        extra = []
        if self.optional:
            extra.append(f"{self.optional} facultative{'s' if self.optional > 1 else ''}")
        if self.unexpected:
            extra.append(f"{self.unexpected} hors campagne")
        if self.pending:
            extra.append(f"{self.pending} en attente de traitement")
        text = f"Campagne {self.year} : livraisons " + ", ".join(parts)
        if extra:
            text += " ; " + ", ".join(extra)
        return text + "."


def summarize(rows: Sequence[StatusRow], year: int | None = None) -> StatusSummary:
    required = [r for r in rows if r.expected and r.required]
    return StatusSummary(
        year=year if year is not None else (rows[0].year if rows else 0),
        expected=len(required),
        received=sum(r.received for r in required),
        accepted=sum(r.accepted_in_force for r in required),
        late=sum(r.late for r in rows),
        rejected=sum(r.rejected for r in rows),
        optional=sum(1 for r in rows if r.expected and not r.required),
        unexpected=sum(1 for r in rows if not r.expected),
        pending=sum(1 for r in rows if r.pending_file),
    )


def problems_fr(n: int | None) -> str:
    n = n or 0
    return f"{n} problème{'s' if n > 1 else ''}"


def status_label(row: StatusRow, today: dt.date) -> str:
    """The French status of a row, as shown in the terminal, the table and the export."""
    if row.rejected:
        label = f"rejeté ({problems_fr(row.problem_count)})"
        if row.in_force_file:
            label += f", la livraison du {fr_date(row.in_force_received_at)} reste en vigueur"
        elif row.late:
            label += f", en retard de {days_fr(row.days_late)}"
    elif row.accepted_in_force:
        label = "reçu, accepté"
        if row.atypical_count:
            label += (
                f", {row.atypical_count} valeur{'s' if row.atypical_count > 1 else ''} à "
                f"confirmer (voir {row.in_force_file}{NOTICE_SUFFIX})"
            )
    elif row.pending_file:
        label = ""
    elif row.late:
        label = f"en retard de {days_fr(row.days_late)}"
    elif not row.expected:
        label = "non reçu"
    elif not row.required:
        label = (
            f"facultatif, attendu avant le {fr_date(row.due_date)}"
            if row.due_date and today <= row.due_date
            else "facultatif, non reçu"
        )
    else:
        label = f"attendu avant le {fr_date(row.due_date)}"
    if row.pending_file:
        pending = f"déposé le {fr_date(row.pending_since)}, en attente de traitement"
        if not label:
            label = pending
        else:
            label += f" ; nouveau fichier {pending}"
    if not row.expected:
        label += " (hors campagne)"
    elif not row.required and row.received:
        label += " (facultatif)"
    return label


def _deliveries(con: duckdb.DuckDBPyConnection, year: int) -> list[dict]:
    if not table_exists(con, "ingest.deliveries"):
        return []
    # a delivery whose file was removed from sources/ is withdrawn: it no longer counts
    # (its rejection is not chased); its history stays in ingest.deliveries
    present = (
        "and coalesce(present, true) " if column_exists(con, "ingest.deliveries", "present") else ""
    )
    cursor = con.execute(
        "select delivery_id, department, source_id, file_name, file_sha256, received_at, "
        "outcome, problem_count, report_path, in_force from ingest.deliveries "
        f"where campaign_year = ? {present}order by received_at, file_name",
        [year],
    )
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _deposited_files(sources_dir: Path, year: int, contracts: dict[str, Contract]):
    return [d for d in discover(Path(sources_dir), contracts) if d.campaign_year == year]


def campaign_status(
    con: duckdb.DuckDBPyConnection,
    sources_dir: Path,
    year: int,
    today: dt.date,
    *,
    campaign: Campaign | None = None,
    contracts: dict[str, Contract] | None = None,
) -> list[StatusRow]:
    """One row per (department, source) the campaign expects, plus deliveries it did not."""
    contracts = contracts if contracts is not None else default_contracts()
    if campaign is None:
        campaign = load_campaign(sources_dir, year, contracts=contracts)
    by_key: dict[tuple[str, str], list[dict]] = {}
    for delivery in _deliveries(con, year):
        by_key.setdefault((delivery["department"], delivery["source_id"]), []).append(delivery)
    processed = {
        (d["department"], d["source_id"], d["file_name"], d["received_at"])
        for deliveries in by_key.values()
        for d in deliveries
    }
    known_content = {
        (d["department"], d["source_id"], d["file_sha256"])
        for deliveries in by_key.values()
        for d in deliveries
    }
    pending: dict[tuple[str, str], Any] = {}
    for deposit in _deposited_files(sources_dir, year, contracts):
        key = (deposit.department, deposit.source_id)
        if (*key, deposit.path.name, deposit.received_at) in processed:
            continue
        # renamed or touched copy of a file already processed: ingestion skips it as well (a
        # refused file, a link, is known by what it is, never read: ``delivery_sha256``)
        if (*key, delivery_sha256(deposit.path)) in known_content:
            continue
        pending[key] = deposit  # discover() sorts as received: the last one wins

    from dagster_project.quality.notices import atypical_counts

    atypical = atypical_counts(con, year)
    rows: list[StatusRow] = []
    keys = [(e.department, e.source_id) for e in campaign.entries]
    keys += sorted((set(by_key) | set(pending)) - set(keys))
    for department, source_id in keys:
        entry = campaign.entry(department, source_id)
        contract = contracts.get(source_id)
        row = StatusRow(
            year=year,
            department=department,
            source_id=source_id,
            title_fr=contract.title_fr if contract else source_id,
            direction_fr=entry.owner.direction_fr if entry else "",
            owner=entry.owner.contact if entry else "",
            email=entry.owner.email if entry else "",
            due_date=entry.due_date if entry else None,
            required=entry.required if entry else False,
            expected=entry is not None,
        )
        if entry is None and contract is not None and contract.department != ANY_DEPARTMENT:
            row.direction_fr = contract.direction_fr
        deliveries = by_key.get((department, source_id), [])
        if deliveries:
            latest = max(deliveries, key=lambda d: (d["received_at"], d["file_name"]))
            row.received = True
            row.latest_delivery_id = latest["delivery_id"]
            row.latest_file = latest["file_name"]
            row.received_at = latest["received_at"]
            row.latest_sha256 = latest["file_sha256"]
            row.latest_outcome = latest["outcome"]
            row.problem_count = latest["problem_count"]
            row.report_path = latest["report_path"]
            in_force = [d for d in deliveries if d["in_force"]]
            if in_force:
                row.in_force_file = in_force[0]["file_name"]
                row.in_force_received_at = in_force[0]["received_at"]
                row.in_force_delivery_id = in_force[0]["delivery_id"]
                row.atypical_count = atypical.get(row.in_force_delivery_id, 0)
        deposit = pending.get((department, source_id))
        if deposit is not None and (
            row.received_at is None or deposit.received_at >= row.received_at
        ):
            row.pending_file = deposit.path.name
            row.pending_since = deposit.received_at
        if (
            row.expected
            and row.required
            and row.in_force_file is None
            and row.pending_file is None
            and row.due_date is not None
            and today > row.due_date
        ):
            row.days_late = (today - row.due_date).days
        row.status_fr = status_label(row, today)
        rows.append(row)
    rows.sort(key=lambda r: (r.department, not r.expected, r.source_id))
    return rows


# --- warehouse table -------------------------------------------------------------------------


def ensure_status_table(con: duckdb.DuckDBPyConnection) -> None:
    """campaign.status, with the columns it gained since (``warehouse.schema``)."""
    ensure(con, "campaign.status")


def write_status_table(
    con: duckdb.DuckDBPyConnection,
    year: int,
    rows: Sequence[StatusRow],
    *,
    computed_at: dt.datetime | None = None,
) -> int:
    """Replace the rows of ``year`` in ``campaign.status``; returns the number written."""
    computed_at = computed_at or dt.datetime.now().replace(microsecond=0)
    ensure_status_table(con)
    names = [name for name, _ in STATUS_COLUMNS]
    values = []
    for row in rows:
        record = {name: getattr(row, name, None) for name in names}
        record["year"] = year
        record["computed_at"] = computed_at
        values.append([record[name] for name in names])
    with transaction(con):
        con.execute("delete from campaign.status where year = ?", [year])
        if values:
            insert_rows(con, "campaign.status", names, values)
    return len(values)
