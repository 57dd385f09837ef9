"""The verdict on an uploaded file: the ingestion engine of `kpi run`, nothing else.

``PortalIngestor`` is the pipeline's ``Ingestor`` (same context: communes, catalogue,
references, pseudonymisation; same department check, same reading of a file that cannot be
read, same French rejection report ``<file>.rejet.csv``), opened on the **published copy**
read-only instead of the build database: the portal never waits for a run to judge a file
and never writes the warehouse. The references a file is checked against (``eau_volumes``
→ the UDI of ``eau_udi`` in force) are those of the published copy; the run that follows an
accepted upload judges the file again against the build database, and its verdict is the
one recorded (the page follows it).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.contracts.model import Contract, default_contracts
from dagster_project.ingest import store as ingest_store
from dagster_project.ingest.discovery import (
    DeliveryFile,
    delivery_id_of,
    delivery_sha256,
    refusal_of,
)
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.privacy import load_key, pseudonymiser
from dagster_project.ingest.reference_data import load_catalogue, load_communes
from dagster_project.ingest.report import group_problems
from dagster_project.ingest.validation.driver import validate_delivery
from dagster_project.ingest.validation.results import Problem, ValidationResult
from dagster_project.lib.hashing import sha256_file


@dataclass
class Verdict:
    accepted: bool
    delivery_id: str
    sha256: str
    problems: list[dict] = field(default_factory=list)  # errors, as ingest.delivery_problems
    warnings: list[dict] = field(default_factory=list)
    row_count: int = 0
    report_path: Path | None = None
    seconds: float = 0.0

    @property
    def problem_count(self) -> int:
        return len(self.problems)

    def groups(self) -> list[dict]:
        """The problems grouped as in the rejection report (``report.group_problems``)."""
        out = []
        for group in group_problems(self.problems):
            out.append(
                {
                    "sheet": group.sheet or "",
                    "rows": group.rows_fr,
                    "column": group.column or "",
                    "value": group.value_fr,
                    "reason": group.reason,
                    "count": group.count,
                }
            )
        return out


class PortalIngestor(Ingestor):
    """``Ingestor`` reading its references from a read-only connection; records nothing."""

    def __init__(self, con: duckdb.DuckDBPyConnection, contracts: dict[str, Contract], today):
        # (not Ingestor.__init__: it creates the warehouse's tables, a write)
        self.con = con
        self.contracts = contracts
        self.today = today
        self.communes = load_communes()
        self.catalogue = load_catalogue()
        self._pseudonymise = None

    def _pseudonymiser(self):
        # the published copy holds no fingerprint of the key (raw_restricted is not
        # published): the run checks the key against the build database
        if self._pseudonymise is None:
            self._pseudonymise = pseudonymiser(load_key())
        return self._pseudonymise

    def judge(self, delivery: DeliveryFile) -> tuple[str, ValidationResult, str, str]:
        """(delivery id, result, sha256, depends_on) of one file, as ``Ingestor._evaluate``
        judges it, without looking whether the warehouse already knows it."""
        contract = self.contracts[delivery.source_id]
        refusal = refusal_of(delivery.path)
        if refusal is not None:
            sha = delivery_sha256(delivery.path)
            return (
                delivery_id_of(delivery, sha),
                ValidationResult(sheet=None, problems=[Problem(refusal)], warnings=[]),
                sha,
                "",
            )
        sha = sha256_file(delivery.path, follow_links=False)
        depends_on = self._dependencies_key(delivery, contract)
        if not contract.accepts_department(delivery.department):
            result = ValidationResult(
                sheet=None,
                problems=[
                    Problem(
                        f"la source « {contract.source_id} » est livrée par la direction "
                        f"« {contract.department} », pas par « {delivery.department} »"
                    )
                ],
                warnings=[],
            )
        else:
            result = validate_delivery(contract, delivery.path, self._context(delivery, contract))
        return delivery_id_of(delivery, sha), result, sha, depends_on


def open_references(published: Path, contracts: dict[str, Contract]) -> duckdb.DuckDBPyConnection:
    """The published copy, read-only; an empty in-memory warehouse before the first
    publication (then a file referencing another source is rejected: not delivered yet)."""
    if published.exists():
        return duckdb.connect(str(published.resolve()), read_only=True)
    con = duckdb.connect(":memory:")
    ingest_store.ensure_tables(con, contracts.values())
    return con


def judge_file(
    path: Path,
    year: int,
    department: str,
    source_id: str,
    published: Path,
    today: dt.date | None = None,
    contracts: dict[str, Contract] | None = None,
) -> Verdict:
    """Judge ``path`` (in a folder ``.../<year>/<department>/``) as a delivery of
    ``source_id``; a rejected file gets its report beside it."""
    started = time.perf_counter()
    contracts = contracts or default_contracts()
    delivery = DeliveryFile(Path(path), year, department, source_id)
    con = open_references(published, contracts)
    try:
        ingestor = PortalIngestor(con, contracts, today or dt.date.today())
        try:
            delivery_id, result, sha, depends_on = ingestor.judge(delivery)
            _outcome, delivery_id, write = ingestor._outcome(
                delivery, delivery_id, sha, depends_on, result
            )
        except Exception as exc:  # what Ingestor.evaluate does with a file that breaks a rule
            _outcome, delivery_id, write = ingestor._unreadable(delivery, exc)
    finally:
        con.close()
    problems = [p for p in write.problems if p["severity"] == "error"]
    warnings = [p for p in write.problems if p["severity"] != "error"]
    report = write.delivery.get("report_path")
    return Verdict(
        accepted=write.delivery["outcome"] == "accepted",
        delivery_id=delivery_id,
        sha256=write.delivery["file_sha256"],
        problems=problems,
        warnings=warnings,
        row_count=write.delivery["row_count"] or 0,
        report_path=Path(report) if report else None,
        seconds=time.perf_counter() - started,
    )
