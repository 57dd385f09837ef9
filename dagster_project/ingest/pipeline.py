"""Ingestion of the deliveries of one source: discover, validate, record, report.

Deliveries live in ``sources/<year>/<department>/<source_id>*.xlsx|csv``. Each new (or
changed) file is validated against its contract and accepted or rejected as a whole; a
rejected file leaves the delivery in force untouched and gets a French rejection report
``<file>.rejet.csv`` next to it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import logging
import os
import re
import secrets
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import duckdb

from dagster_project.contracts.model import ANY_DEPARTMENT, Contract, source_of
from dagster_project.ingest import store
from dagster_project.ingest.normalize import CommuneMatcher
from dagster_project.ingest.privacy import PseudonymKeyError, check_key, load_key, pseudonymiser
from dagster_project.ingest.readers.file import OTHER_FORMATS
from dagster_project.ingest.readers.readahead import READ_AHEAD
from dagster_project.ingest.report import REPORT_HEADER, group_problems
from dagster_project.ingest.validation.context import CatalogueEntry, IngestContext
from dagster_project.ingest.validation.driver import validate_delivery
from dagster_project.ingest.validation.results import Problem, ValidationResult
from dagster_project.lib.csv_safety import neutralise_row
from dagster_project.lib.hashing import sha256_bytes, sha256_file
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

REPORT_SUFFIX = ".rejet.csv"
NOTICE_SUFFIX = ".a_confirmer.csv"  # atypical values of an accepted file (quality.notices)
# .xlsx and .csv are read; a file of another format named after a source (.xlsm, .xls,
# .ods...) is a delivery too, refused with a report saying how to save it
# (readers.file.OTHER_FORMATS)
DELIVERY_SUFFIXES = (".xlsx", ".csv", *OTHER_FORMATS)
_YEAR_DIR = re.compile(r"^\d{4}$")
# recorded as ``depends_on`` of a delivery whose judgement failed on an internal error: never
# the key of a later run, so the file is judged again at every run (a fixed bug, a transient
# failure heal by themselves) instead of staying rejected for a reason that was not the file's
UNREADABLE = "(erreur interne)"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryFile:
    path: Path
    campaign_year: int
    department: str
    source_id: str

    @property
    def received_at(self) -> dt.datetime:
        # (the file itself, never what a link points to: a link is refused, see ``refusal_of``)
        return dt.datetime.fromtimestamp(self.path.lstat().st_mtime).replace(microsecond=0)


@dataclass
class SourceSummary:
    source_id: str
    accepted: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    unchanged: int = 0
    problems: int = 0
    in_force: dict[tuple[int, str], str] = field(default_factory=dict)


def is_delivery_file(path: Path) -> bool:
    """A file deposited as a delivery (by its name). A link with such a name is one too, to
    be refused with a report (``refusal_of``), even when it leads nowhere."""
    name = path.name
    return (
        (path.is_file() or path.is_symlink())
        and path.suffix.lower() in DELIVERY_SUFFIXES
        and not name.endswith((REPORT_SUFFIX, NOTICE_SUFFIX))
        and not name.startswith(("~$", "."))
    )


def printable(text: str) -> str:
    """A name as valid text: the bytes of a file name that are not UTF-8 (which Python keeps
    as surrogate escapes, and neither DuckDB, Arrow nor a UTF-8 report can hold) shown as
    « \ufffd »; a valid name is returned as it is."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def report_path_of(path: Path) -> Path:
    """``<file>.rejet.csv`` beside the file (its name made valid text: ``printable``)."""
    return path.with_name(printable(path.name) + REPORT_SUFFIX)


def _linked_folder(path: Path) -> Path | None:
    """The folder of ``sources/`` holding the file (its department's, its year's) that is a
    link to another folder, if any."""
    for folder in (path.parent, path.parent.parent):
        if folder.is_symlink():
            return folder
    return None


def refusal_of(path: Path) -> str | None:
    """Why a file deposited in a delivery folder is refused without being read (French), or
    None. Nothing comes in from outside ``sources/``: a link (symbolic, or hard: the same file
    under another name, possibly elsewhere) and a file reached through a linked folder are
    not deliveries (the collection kit); neither is a name that is not valid text (UTF-8),
    which no report, log or e-mail could name. ``discover`` lists them like any delivery, so
    ``Ingestor.evaluate`` records their rejection and ``kpi status`` and the sensor see them."""
    folder = _linked_folder(path)
    if folder is not None:
        return (
            f"le dossier « {printable(folder.name)} » est un lien vers un autre dossier : les "
            "fichiers qu'il contient ne sont pas lus. Déposez le fichier dans le dossier de la "
            "campagne lui-même (sources/<année>/<direction>/)"
        )
    if path.is_symlink():
        return (
            "ce fichier est un lien (raccourci) vers un autre fichier, pas une livraison : il "
            "n'est pas lu. Déposez le fichier lui-même (une copie) dans le dossier"
        )
    for name, what in ((path.name, "fichier"), (path.parent.name, "dossier")):
        if printable(name) != name:
            return (
                f"nom de {what} illisible : des caractères ne sont pas du texte UTF-8 (montrés "
                "ici « \ufffd »). Renommez-le avec des lettres, des chiffres, des tirets ou des "
                "soulignés (par exemple eau_volumes_2025.xlsx), puis déposez le fichier à nouveau"
            )
    if path.lstat().st_nlink > 1:
        return (
            "ce fichier est un lien physique (le même fichier enregistré sous plusieurs noms ou "
            "dans plusieurs dossiers), pas une livraison : il n'est pas lu. Déposez une copie "
            "indépendante du fichier"
        )
    return None


def discover(sources_dir: Path, contracts: dict[str, Contract]) -> list[DeliveryFile]:
    """Every delivery file under sources/<year>/<department>/, sorted as received. Links,
    files of a linked folder and names that are not valid text are listed too (their
    department made ``printable``): ``refusal_of`` says why they are refused."""
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
                department = printable(department_dir.name)
                found.append(DeliveryFile(path, int(year_dir.name), department, source_id))
    found.sort(key=lambda d: (d.path.lstat().st_mtime, d.path.name))
    return found


def ingestion_order(contracts: dict[str, Contract], files: list[DeliveryFile]) -> list[str]:
    """The order in which one process ingests the sources: each after the sources it
    references, and among those free to go, the one with the fewest bytes of workbooks first.
    The largest workbooks are read ahead first (``ingest.readers.readahead``): ingested last, their
    reading overlaps the other sources' validation and writing instead of being waited for
    (SF10: 0.5 s of a 5.5 s ingestion, bench/README.md). ``kpi run`` gives Dagster this order
    as step priorities; the benchmark follows it."""
    size: dict[str, int] = dict.fromkeys(contracts, 0)
    for delivery in files:
        if delivery.path.suffix.lower() == ".xlsx" and delivery.source_id in size:
            size[delivery.source_id] += delivery.path.lstat().st_size
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


def _refused_sha256(path: Path, refusal: str) -> str:
    """What stands for the SHA-256 of a refused file, whose content is never read: a hash of
    what it is (name, link target, size, modification time, why it is refused), so the same
    refused file is one delivery, and a refused copy of an accepted file never takes its
    delivery id."""
    stat = path.lstat()
    target = os.readlink(path) if path.is_symlink() else ""
    digest = hashlib.sha256(b"refused\0")
    for part in (refusal, path.name, str(target), str(stat.st_size), str(stat.st_mtime_ns)):
        digest.update(os.fsencode(part) + b"\0")
    return digest.hexdigest()


def delivery_sha256(path: Path) -> str:
    """The SHA-256 a delivery is known by: its content's, or for a refused file
    (``refusal_of``) a hash of what it is, without reading it."""
    refusal = refusal_of(path)
    return (
        sha256_file(path, follow_links=False) if refusal is None else _refused_sha256(path, refusal)
    )


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
    the file named from the sources folder (``2025/water/x.xlsx``), never a server path.

    Nothing is written outside the file's folder nor through a link: the report is written
    into a new temporary file of that folder (created exclusively, never through a link),
    then renamed over ``<file>.rejet.csv`` (``report_path_of``): a link planted at that name
    is replaced, never followed. A text cell that Excel would take for a formula (« =… »,
    « +… », « -… », « @… ») is written with a « ' » before it (``csv_safety``)."""
    report = report_path_of(path)
    name = str(path.relative_to(path.parents[2])) if len(path.parents) > 2 else path.name
    name = printable(name)
    tmp = report.with_name(f".{report.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, 0o666)  # (0o666: the umask decides, as for any file written)
    handle = os.fdopen(fd, "w", encoding="utf-8-sig", errors="replace", newline="")
    try:
        with handle:
            writer = csv.writer(handle, delimiter=";")
            writer.writerow(REPORT_HEADER)
            for group in group_problems(result.problems):
                writer.writerow(neutralise_row(group.report_row(name)))
            if result.omitted_problems:
                writer.writerow(
                    ["", "", "", "", "", f"… et {result.omitted_problems} autres problèmes", ""]
                )
        os.replace(tmp, report)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return report


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


def unreadable_reason(exc: BaseException, path: Path) -> str:
    """The French problem of a delivery whose reading or judging failed on an internal error:
    what the error was, in one line, without the server's paths."""
    detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    for where in (str(path), str(path.parent)):
        detail = detail.replace(where, path.name if where == str(path) else "")
    detail = " ".join(f"{type(exc).__name__} : {detail}".split()).rstrip(" :")
    if len(detail) > 300:
        detail = detail[:299] + "…"
    return printable(
        f"le fichier n'a pas pu être lu jusqu'au bout (erreur interne : {detail}) ; "
        "transmettez-le à la Direction du Pilotage Stratégique"
    )


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
            sha = _refused_sha256(delivery.path, refusal)
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
            if _linked_folder(path) is None:
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
                else _refused_sha256(path, refusal)
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


__all__ = [
    "ANY_DEPARTMENT",
    "DeliveryFile",
    "Ingestor",
    "delivery_sha256",
    "discover",
    "printable",
    "refusal_of",
    "unrecognised_files",
]
