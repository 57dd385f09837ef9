"""Ingestion of the deliveries of one source: judge each file, record it, sum up the source.

The ``Ingestor`` takes the files ``discovery.discover`` found, validates each new (or
changed) one against its contract and accepts or rejects it as a whole; a rejected file
leaves the delivery in force untouched and gets a French rejection report
(``rejection.write_report``). No file can stop a run: one that makes the judging fail is a
rejected delivery, judged again at the next run. A source's deliveries are recorded in one
transaction (``store.record_deliveries``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.contracts.model import Contract
from dagster_project.ingest import store
from dagster_project.ingest.discovery import (
    DeliveryFile,
    delivery_id_of,
    linked_folder,
    printable,
    refusal_of,
    refused_sha256,
)
from dagster_project.ingest.normalize import CommuneMatcher
from dagster_project.ingest.privacy import PseudonymKeyError, check_key, load_key, pseudonymiser
from dagster_project.ingest.readers.readahead import READ_AHEAD
from dagster_project.ingest.reference_data import load_catalogue, load_communes
from dagster_project.ingest.rejection import report_path_of, unreadable_reason, write_report
from dagster_project.ingest.validation.context import CatalogueEntry, IngestContext
from dagster_project.ingest.validation.driver import validate_delivery
from dagster_project.ingest.validation.results import Problem, ValidationResult
from dagster_project.lib.hashing import sha256_bytes, sha256_file

# recorded as ``depends_on`` of a delivery whose judgement failed on an internal error: never
# the key of a later run, so the file is judged again at every run (a fixed bug, a transient
# failure heal by themselves) instead of staying rejected for a reason that was not the file's
UNREADABLE = "(erreur interne)"
log = logging.getLogger(__name__)


@dataclass
class SourceSummary:
    source_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: int = 0
    in_force: dict[tuple[int, str], str] = field(default_factory=dict)


def _problem_rows(delivery_id: str, problems: list[Problem]) -> list[dict]:
    def text(value):
        return printable(value) if isinstance(value, str) else value

    return [
        {
            "delivery_id": delivery_id,
            "severity": p.severity,
            "sheet": text(p.sheet),
            "row_number": p.row,
            "column_name": text(p.column),
            "value": text(p.value),
            "reason": text(p.reason),
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
            key = load_key()
            # another key than the warehouse's is refused before any pseudonym is made;
            # the first key used on a warehouse is recorded (its fingerprint only)
            check_key(self.con, key)
            self._pseudonymise = pseudonymiser(key)
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
        already processed.

        No file can stop a run: an unexpected exception while reading or judging the file
        (a bug the file triggers) makes it a rejected delivery with a French problem saying
        it could not be read to the end (``_unreadable``), and the other deliveries go on.
        Only what is not about the file still raises: the pseudonymisation key, the
        warehouse itself."""
        try:
            return self._evaluate(delivery)
        except (PseudonymKeyError, duckdb.Error):
            raise
        except Exception as exc:
            log.exception("livraison %s illisible (erreur interne)", printable(str(delivery.path)))
            return self._unreadable(delivery, exc)

    def _evaluate(self, delivery: DeliveryFile) -> tuple[str, str, store.DeliveryWrite | None]:
        contract = self.contracts[delivery.source_id]
        refusal = refusal_of(delivery.path)
        if refusal is None:
            sha = sha256_file(delivery.path, follow_links=False)
            depends_on = self._dependencies_key(delivery, contract)
        else:  # a link, a linked folder, a name that is not text: never read
            sha = refused_sha256(delivery.path, refusal)
            depends_on = ""
        delivery_id = delivery_id_of(delivery, sha)
        known = store.known_delivery(self.con, delivery_id)
        if known and (known[0] == "accepted" or known[1] == depends_on):
            return "unchanged", delivery_id, None
        if refusal is not None:
            result = ValidationResult(sheet=None, problems=[Problem(refusal)], warnings=[])
        elif not contract.accepts_department(delivery.department):
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
        return self._outcome(delivery, delivery_id, sha, depends_on, result)

    def _outcome(
        self,
        delivery: DeliveryFile,
        delivery_id: str,
        sha: str,
        depends_on: str,
        result: ValidationResult,
        *,
        last_resort: bool = False,
    ) -> tuple[str, str, store.DeliveryWrite]:
        """The report written (or a stale one removed) and what to record. A report that
        cannot be written (a folder not writable) is logged, the rejection still recorded;
        no report is written in a folder that is a link (it would be outside sources/)."""
        path = delivery.path
        outcome = "accepted" if result.accepted else "rejected"
        report_path = None
        if outcome == "rejected":
            # (as a last resort, whatever the failure; otherwise only the file system's: any
            # other failure of the report goes to ``_unreadable``, which writes a simpler one)
            tolerated = Exception if last_resort else OSError
            if linked_folder(path) is None:
                try:
                    report_path = printable(str(write_report(path, delivery, result)))
                except tolerated as exc:
                    log.warning("rapport de rejet de %s non écrit : %s", printable(str(path)), exc)
        else:
            stale_report = report_path_of(path)
            if os.path.lexists(stale_report):
                try:
                    stale_report.unlink()
                except OSError as exc:
                    log.warning("ancien rapport %s non supprimé : %s", stale_report, exc)
        try:
            stat = path.lstat()
            size = stat.st_size
            received_at = dt.datetime.fromtimestamp(stat.st_mtime).replace(microsecond=0)
        except OSError:  # removed meanwhile
            size, received_at = None, store.now()
        row = {
            "delivery_id": delivery_id,
            "campaign_year": delivery.campaign_year,
            "department": delivery.department,
            "source_id": delivery.source_id,
            "file_path": printable(str(path)),
            "file_name": printable(path.name),
            "file_sha256": sha,
            "file_size": size,
            "received_at": received_at,
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

    def _unreadable(
        self, delivery: DeliveryFile, exc: Exception
    ) -> tuple[str, str, store.DeliveryWrite]:
        """A delivery whose reading or judging raised ``exc``: rejected, recorded, with a
        report saying so in French (no traceback: that goes to the log). Recorded with
        ``depends_on`` = ``UNREADABLE``, it is judged again at the next run."""
        path = delivery.path
        try:
            refusal = refusal_of(path)
            sha = (
                sha256_file(path, follow_links=False)
                if refusal is None
                else refused_sha256(path, refusal)
            )
        except Exception:  # (the file removed or unreadable meanwhile)
            sha = sha256_bytes(b"unreadable\0" + os.fsencode(path.name))
        delivery_id = delivery_id_of(delivery, sha)
        result = ValidationResult(
            sheet=None, problems=[Problem(unreadable_reason(exc, path))], warnings=[]
        )
        return self._outcome(delivery, delivery_id, sha, UNREADABLE, result, last_resort=True)

    def read_ahead(self, files: list[DeliveryFile]) -> list[Path]:
        """Have calamine parse, in the background, the workbooks among ``files`` that the
        warehouse has not recorded yet (``ingest.readers.readahead``); returns them. A file whose
        path, size and modification time match a recorded delivery is taken as recorded
        (only the schedule depends on it: ``evaluate`` still compares the contents' hash)."""
        recorded = set(
            self.con.execute(
                "select file_path, file_size, received_at from ingest.deliveries"
            ).fetchall()
        )
        pending = []
        for delivery in files:
            path = delivery.path
            if path.suffix.lower() != ".xlsx" or not self.contracts[
                delivery.source_id
            ].accepts_department(delivery.department):
                continue
            try:
                if refusal_of(path) is not None:  # never read, not even ahead
                    continue
                key = (str(path), path.lstat().st_size, delivery.received_at)
            except OSError:  # removed meanwhile
                continue
            if key not in recorded:
                pending.append(path)
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
            try:
                seen = delivery.received_at
            except OSError:  # removed since: not present
                seen = None
            if seen is not None:
                present[delivery_id] = max(present.get(delivery_id, seen), seen)
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
