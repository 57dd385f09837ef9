"""Ingestion of the deliveries of one source: discover, validate, record, report.

Deliveries live in ``sources/<year>/<department>/<source_id>*.xlsx|csv``. Each new (or
changed) file is validated against its contract and accepted or rejected as a whole; a
rejected file leaves the delivery in force untouched and gets a French rejection report
``<file>.rejet.csv`` next to it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb

from dagster_project.contracts import ANY_DEPARTMENT, Contract
from dagster_project.ingest import store
from dagster_project.ingest.engine import (
    CatalogueEntry,
    IngestContext,
    Problem,
    ValidationResult,
    validate_delivery,
)
from dagster_project.ingest.normalize import CommuneMatcher
from dagster_project.ingest.privacy import load_key, pseudonymiser
from dagster_project.ingest.readahead import READ_AHEAD
from dagster_project.ingest.report import REPORT_HEADER, group_problems
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

REPORT_SUFFIX = ".rejet.csv"
NOTICE_SUFFIX = ".a_confirmer.csv"  # atypical values of an accepted file (validation.notices)
DELIVERY_SUFFIXES = (".xlsx", ".csv")
_YEAR_DIR = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class DeliveryFile:
    path: Path
    campaign_year: int
    department: str
    source_id: str

    @property
    def received_at(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.path.stat().st_mtime).replace(microsecond=0)


@dataclass
class SourceSummary:
    source_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: int = 0
    in_force: dict[tuple[int, str], str] = field(default_factory=dict)


def is_delivery_file(path: Path) -> bool:
    name = path.name
    return (
        path.is_file()
        and path.suffix.lower() in DELIVERY_SUFFIXES
        and not name.endswith((REPORT_SUFFIX, NOTICE_SUFFIX))
        and not name.startswith(("~$", "."))
    )


def source_of(file_name: str, source_ids: list[str]) -> str | None:
    """The contract a file belongs to: the longest source id its name starts with."""
    lowered = file_name.lower()
    matches = [s for s in source_ids if lowered.startswith(s)]
    return max(matches, key=len) if matches else None


def discover(sources_dir: Path, contracts: dict[str, Contract]) -> list[DeliveryFile]:
    """Every delivery file under sources/<year>/<department>/, sorted as received."""
    found: list[DeliveryFile] = []
    source_ids = list(contracts)
    if not sources_dir.is_dir():
        return found
    for year_dir in sorted(
        p for p in sources_dir.iterdir() if p.is_dir() and _YEAR_DIR.match(p.name)
    ):
        for department_dir in sorted(p for p in year_dir.iterdir() if p.is_dir()):
            for path in sorted(department_dir.iterdir()):
                if not is_delivery_file(path):
                    continue
                source_id = source_of(path.name, source_ids)
                if source_id is None:
                    continue
                found.append(DeliveryFile(path, int(year_dir.name), department_dir.name, source_id))
    found.sort(key=lambda d: (d.path.stat().st_mtime, d.path.name))
    return found


def ingestion_order(contracts: dict[str, Contract], files: list[DeliveryFile]) -> list[str]:
    """The order in which one process ingests the sources: each after the sources it
    references, and among those free to go, the one with the fewest bytes of workbooks first.
    The largest workbooks are read ahead first (``ingest.readahead``): ingested last, their
    reading overlaps the other sources' validation and writing instead of being waited for
    (SF10: 0.5 s of a 5.5 s ingestion, bench/README.md). ``kpi run`` gives Dagster this order
    as step priorities; the benchmark follows it."""
    size: dict[str, int] = dict.fromkeys(contracts, 0)
    for delivery in files:
        if delivery.path.suffix.lower() == ".xlsx" and delivery.source_id in size:
            size[delivery.source_id] += delivery.path.stat().st_size
    upstream = {
        source_id: contract.referenced_sources & set(contracts)
        for source_id, contract in contracts.items()
    }
    order: list[str] = []
    while len(order) < len(contracts):
        waiting = [s for s in contracts if s not in order]
        ready = [s for s in waiting if upstream[s] <= set(order)] or waiting  # (no cycle)
        order.append(min(ready, key=lambda s: (size[s], s)))
    return order


def unrecognised_files(sources_dir: Path, contracts: dict[str, Contract]) -> list[Path]:
    """Files in delivery folders that match no contract (shown by `kpi status`)."""
    out = []
    if not sources_dir.is_dir():
        return out
    for path in sorted(sources_dir.glob("[0-9][0-9][0-9][0-9]/*/*")):
        if is_delivery_file(path) and source_of(path.name, list(contracts)) is None:
            out.append(path)
    return out


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def delivery_id_of(delivery: DeliveryFile, sha: str) -> str:
    return f"{delivery.source_id}-{delivery.campaign_year}-{delivery.department}-{sha[:12]}"


@cache
def load_communes(path: Path = COMMUNES_CSV) -> CommuneMatcher:
    with path.open(encoding="utf-8") as handle:
        return CommuneMatcher({row["code_insee"]: row["nom"] for row in csv.DictReader(handle)})


@cache
def load_catalogue(path: Path = CATALOGUE_CSV) -> dict[str, CatalogueEntry]:
    extensions_path = path.with_name("indicator_catalogue_extensions.csv")
    allow_negative: set[str] = set()
    if extensions_path.is_file():
        with extensions_path.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if str(row.get("allow_negative", "")).strip().lower() in ("true", "1", "oui"):
                    allow_negative.add(row["indicator_id"])
    with path.open(encoding="utf-8") as handle:
        return {
            row["indicator_id"]: CatalogueEntry(
                row["indicator_id"],
                row["department"],
                row["computation"],
                row["indicator_id"] in allow_negative,
            )
            for row in csv.DictReader(handle)
        }


def write_report(path: Path, delivery: DeliveryFile, result: ValidationResult) -> Path:
    """French rejection report next to the file, readable in Excel (UTF-8 with BOM, `;`):
    one line per kind of problem, with its rows and how many (``report.group_problems``);
    the file named from the sources folder (``2025/water/x.xlsx``), never a server path."""
    report = path.with_name(path.name + REPORT_SUFFIX)
    name = str(path.relative_to(path.parents[2])) if len(path.parents) > 2 else path.name
    with report.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(REPORT_HEADER)
        for group in group_problems(result.problems):
            writer.writerow(group.report_row(name))
        if result.omitted_problems:
            writer.writerow(
                ["", "", "", "", "", f"… et {result.omitted_problems} autres problèmes", ""]
            )
    return report


def _problem_rows(delivery_id: str, problems: list[Problem]) -> list[dict]:
    return [
        {
            "delivery_id": delivery_id,
            "severity": p.severity,
            "sheet": p.sheet,
            "row_number": p.row,
            "column_name": p.column,
            "value": p.value,
            "reason": p.reason,
        }
        for p in problems
    ]


class Ingestor:
    """Ingests deliveries into one warehouse connection."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        contracts: dict[str, Contract],
        *,
        today: dt.date | None = None,
        communes: CommuneMatcher | None = None,
        catalogue: dict[str, CatalogueEntry] | None = None,
    ):
        self.con = con
        self.contracts = contracts
        self.today = today or dt.date.today()
        self.communes = communes or load_communes()
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self._pseudonymise = None
        store.ensure_tables(con, contracts.values())

    def _pseudonymiser(self):
        if self._pseudonymise is None:
            self._pseudonymise = pseudonymiser(load_key())
        return self._pseudonymise

    def _context(self, delivery: DeliveryFile, contract: Contract) -> IngestContext:
        needs_key = any(c.is_pseudonymised for c in contract.columns)

        def references(source_id: str, column: str):
            return store.reference_values(
                self.con, self.contracts[source_id], column, delivery.campaign_year
            )

        return IngestContext(
            campaign_year=delivery.campaign_year,
            department=delivery.department,
            communes=self.communes,
            today=self.today,
            references=references,
            catalogue=self.catalogue,
            pseudonymise=self._pseudonymiser() if needs_key else None,
        )

    def _dependencies_key(self, delivery: DeliveryFile, contract: Contract) -> str:
        """Ids of the deliveries in force this validation depends on (references)."""
        parts = []
        for rule in contract.rules_of("references"):
            parts.append(
                f"{rule['source']}={store.in_force_delivery(self.con, rule['source'], delivery.campaign_year)}"
            )
        return ",".join(parts)

    def ingest_file(self, delivery: DeliveryFile) -> tuple[str, str | None]:
        """Validate and record one file; returns (outcome, delivery id). Idempotent."""
        outcome, delivery_id, write = self.evaluate(delivery)
        if write is not None:
            store.record_deliveries(self.con, self.contracts[delivery.source_id], [write])
        return outcome, delivery_id

    def evaluate(self, delivery: DeliveryFile) -> tuple[str, str, store.DeliveryWrite | None]:
        """Validate one file and write its rejection report; nothing enters the warehouse.
        Returns (outcome, delivery id, what to write), outcome "unchanged" for a file
        already processed."""
        contract = self.contracts[delivery.source_id]
        sha = sha256_of(delivery.path)
        delivery_id = delivery_id_of(delivery, sha)
        depends_on = self._dependencies_key(delivery, contract)
        known = store.known_delivery(self.con, delivery_id)
        if known and (known[0] == "accepted" or known[1] == depends_on):
            return "unchanged", delivery_id, None
        if not contract.accepts_department(delivery.department):
            result = ValidationResult(
                sheet=None,
                problems=[
                    Problem(
                        f"la source « {contract.source_id} » est livrée par la direction "
                        f"« {contract.department} », pas par « {delivery.department} » : "
                        "déposez le fichier dans le bon dossier"
                    )
                ],
                warnings=[],
            )
        else:
            result = validate_delivery(contract, delivery.path, self._context(delivery, contract))
        outcome = "accepted" if result.accepted else "rejected"
        report_path = None
        stale_report = delivery.path.with_name(delivery.path.name + REPORT_SUFFIX)
        if outcome == "rejected":
            report_path = str(write_report(delivery.path, delivery, result))
        elif stale_report.exists():
            stale_report.unlink()
        row = {
            "delivery_id": delivery_id,
            "campaign_year": delivery.campaign_year,
            "department": delivery.department,
            "source_id": delivery.source_id,
            "file_path": str(delivery.path),
            "file_name": delivery.path.name,
            "file_sha256": sha,
            "file_size": delivery.path.stat().st_size,
            "received_at": delivery.received_at,
            "processed_at": store.now(),
            "outcome": outcome,
            "row_count": result.row_count,
            "problem_count": len(result.problems) + result.omitted_problems,
            "warning_count": len(result.warnings),
            "sheet": result.sheet,
            "report_path": report_path,
            "depends_on": depends_on,
        }
        problems = _problem_rows(delivery_id, result.problems + result.warnings)
        return outcome, delivery_id, store.DeliveryWrite(row, result.table, problems)

    def read_ahead(self, files: list[DeliveryFile]) -> list[Path]:
        """Have calamine parse, in the background, the workbooks among ``files`` that the
        warehouse has not recorded yet (``ingest.readahead``); returns them. A file whose
        path, size and modification time match a recorded delivery is taken as recorded
        (only the schedule depends on it: ``evaluate`` still compares the contents' hash)."""
        recorded = set(
            self.con.execute(
                "select file_path, file_size, received_at from ingest.deliveries"
            ).fetchall()
        )
        pending = [
            delivery.path
            for delivery in files
            if delivery.path.suffix.lower() == ".xlsx"
            and self.contracts[delivery.source_id].accepts_department(delivery.department)
            and (str(delivery.path), delivery.path.stat().st_size, delivery.received_at)
            not in recorded
        ]
        READ_AHEAD.schedule(pending)
        return pending

    def ingest_source(
        self,
        source_id: str,
        files: list[DeliveryFile],
        read_ahead: list[DeliveryFile] | None = None,
    ) -> SourceSummary:
        """Ingest the deliveries of ``source_id`` among ``files``. Meanwhile the workbooks
        of ``read_ahead`` (default: all ``files``) not recorded yet are read ahead: the
        deliveries the same process will ingest next."""
        summary = SourceSummary(source_id)
        writes = []
        present: dict[str, dt.datetime] = {}  # delivery id -> newest file holding it
        self.read_ahead(files if read_ahead is None else read_ahead)
        for delivery in files:
            if delivery.source_id != source_id:
                continue
            outcome, delivery_id, write = self.evaluate(delivery)
            present[delivery_id] = max(
                present.get(delivery_id, delivery.received_at), delivery.received_at
            )
            if write is not None and delivery_id in {w.delivery["delivery_id"] for w in writes}:
                outcome, write = "unchanged", None  # the same bytes delivered twice in the batch
            if write is not None:
                writes.append(write)
            if outcome == "accepted":
                summary.accepted.append(delivery_id)
            elif outcome == "rejected":
                summary.rejected.append(delivery_id)
            else:
                summary.unchanged += 1
        # one transaction for the source: every delivery of the batch, or none; then which
        # deliveries are still in sources/ and the in-force rule (docs/ingestion.md)
        store.record_deliveries(self.con, self.contracts[source_id], writes, present)
        for year, department, delivery_id in self.con.execute(
            "select campaign_year, department, delivery_id from ingest.deliveries "
            "where source_id = ? and in_force order by 1, 2",
            [source_id],
        ).fetchall():
            summary.in_force[(year, department)] = delivery_id
        summary.problems = self.con.execute(
            "select count(*) from ingest.delivery_problems p join ingest.deliveries d using (delivery_id) "
            "where d.source_id = ? and p.severity = 'error'",
            [source_id],
        ).fetchone()[0]
        return summary


__all__ = ["ANY_DEPARTMENT", "DeliveryFile", "Ingestor", "discover", "unrecognised_files"]
