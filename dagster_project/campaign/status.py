"""The yearly collection campaign: who delivers what, by when, and where it stands.

``sources/<year>/campagne.yml`` (format in ``docs/campaign.md``) lists, per department and
source, the owner (direction, contact, e-mail), the due date and whether the delivery is
required. ``campaign_status`` confronts it with the delivery log written by ingestion
(``ingest.deliveries``, ``ingest.delivery_problems``) and with the files waiting in the
delivery folders; ``write_status_table`` keeps the result in ``campaign.status``,
``export_status_xlsx`` and ``format_status`` present it, ``write_reminders`` writes one
French e-mail (``.eml``) per owner with something late or rejected, and
``send_reminders`` sends them through SMTP (only when called).

Every date is judged against a ``today`` argument, never the system clock.
"""

from __future__ import annotations

import csv
import datetime as dt
import difflib
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

import duckdb
import yaml

from dagster_project.contracts.model import ANY_DEPARTMENT, Contract, default_contracts
from dagster_project.ingest.pipeline import (
    NOTICE_SUFFIX,
    REPORT_SUFFIX,
    delivery_sha256,
    discover,
    printable,
)
from dagster_project.lib.csv_safety import neutralise_row
from dagster_project.settings import CATALOGUE_CSV
from dagster_project.warehouse.relations import table_exists

CAMPAIGN_FILE = "campagne.yml"
DECLARED_SOURCE = "indicateurs_declares"
DEFAULT_SENDER = "pilotage@bethunebruay.fr"
DEFAULT_SENDER_NAME = "Direction du Pilotage Stratégique"
MAX_PROBLEMS_IN_REMINDER = 10
REMINDER_PREFIX = "relance"

TOP_KEYS = {
    "campaign_year",
    "opening_date",
    "default_due_date",
    "steering",
    "departments",
    "comment_fr",
}
STEERING_KEYS = {"direction_fr", "contact", "email"}
OWNER_KEYS = {"direction_fr", "contact", "email"}
DEPARTMENT_KEYS = OWNER_KEYS | {"due_date", "required", "sources", "comment_fr"}
SOURCE_KEYS = OWNER_KEYS | {"due_date", "required", "comment_fr"}
_EMAIL = re.compile(r"^[^@\s<>\"',;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")


class CampaignError(ValueError):
    """A campaign file that cannot be used; ``problems`` lists every reason, in French."""

    def __init__(self, path: Path | str, problems: list[str]):
        self.path = Path(path)
        self.problems = list(problems)
        if len(self.problems) == 1:
            message = f"{self.path} : {self.problems[0]}"
        else:
            message = f"{self.path} : {len(self.problems)} erreurs\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(message)


# --- the campaign file -----------------------------------------------------------------------


@dataclass(frozen=True)
class Owner:
    direction_fr: str
    contact: str
    email: str


@dataclass(frozen=True)
class Expectation:
    """One (department, source) the campaign expects."""

    department: str
    source_id: str
    owner: Owner
    due_date: dt.date
    required: bool = True
    comment_fr: str = ""


@dataclass(frozen=True)
class Campaign:
    year: int
    opening_date: dt.date
    default_due_date: dt.date
    entries: tuple[Expectation, ...]
    steering: Owner | None = None
    comment_fr: str = ""
    path: Path | None = None

    def entry(self, department: str, source_id: str) -> Expectation | None:
        for entry in self.entries:
            if entry.department == department and entry.source_id == source_id:
                return entry
        return None

    @property
    def departments(self) -> list[str]:
        return sorted({e.department for e in self.entries})


def campaign_path(sources_dir: Path, year: int) -> Path:
    return Path(sources_dir) / str(year) / CAMPAIGN_FILE


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key written twice in the same mapping."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"clé « {key} » écrite deux fois (lignes {seen[key]} et {line})",
                key_node.start_mark,
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _construct_timestamp(loader: _UniqueKeyLoader, node: yaml.ScalarNode):
    """An impossible date (2026-02-31) stays text, so that validation names it."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


def _fr_date(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value else ""


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        text = value.strip()
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    return None


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (vouliez-vous dire « {close[0]} » ?)" if close else ""


def _declared_departments(catalogue_path: Path) -> tuple[set[str], set[str]]:
    """(every department of the catalogue, those owning `declared` indicators)."""
    import csv

    every, declared = set(), set()
    with Path(catalogue_path).open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            every.add(row["department"])
            if row["computation"] == "declared":
                declared.add(row["department"])
    return every, declared


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def error(self, message: str) -> None:
        self.problems.append(message)

    def keys(self, data: dict, allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                self.error(
                    f"{where} : clé inconnue « {key} »{_suggest(key, allowed)} "
                    f"(clés possibles : {', '.join(sorted(allowed))})"
                )

    def date(self, value: Any, key: str, where: str) -> dt.date | None:
        parsed = _parse_date(value)
        if parsed is None:
            self.error(
                f"{where} : date invalide « {value} » pour « {key} » "
                "(format attendu AAAA-MM-JJ ou JJ/MM/AAAA)"
            )
        return parsed

    def boolean(self, value: Any, where: str) -> bool:
        if isinstance(value, bool):
            return value
        self.error(f"{where} : « required » doit valoir true ou false, pas « {value} »")
        return True

    def mapping(self, value: Any, where: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(f"{where} : une liste de clés (clé: valeur) est attendue, pas « {value} »")
            return {}
        return value


def parse_campaign(
    data: Any,
    year: int,
    *,
    path: Path | str = CAMPAIGN_FILE,
    contracts: dict[str, Contract] | None = None,
    catalogue_path: Path = CATALOGUE_CSV,
) -> Campaign:
    """Validate the content of a campaign file; raises CampaignError listing every problem."""
    contracts = contracts if contracts is not None else default_contracts()
    catalogue_departments, declared_departments = _declared_departments(catalogue_path)
    known_departments = catalogue_departments | {
        c.department for c in contracts.values() if c.department != ANY_DEPARTMENT
    }
    check = _Checker()
    if not isinstance(data, dict):
        raise CampaignError(
            path, ["le fichier doit décrire une campagne (clé: valeur), il est vide ou mal formé"]
        )
    check.keys(data, TOP_KEYS, "campagne")
    for key in ("campaign_year", "opening_date", "default_due_date", "departments"):
        if key not in data:
            check.error(f"clé obligatoire manquante « {key} »")
    if check.problems:
        raise CampaignError(path, check.problems)

    campaign_year = data["campaign_year"]
    if campaign_year != year:
        check.error(
            f"l'année de campagne « {campaign_year} » ne correspond pas au dossier "
            f"sources/{year}/ où se trouve le fichier"
        )
    opening = check.date(data["opening_date"], "opening_date", "campagne")
    default_due = check.date(data["default_due_date"], "default_due_date", "campagne")
    if opening and default_due and default_due < opening:
        check.error(
            f"l'échéance par défaut ({_fr_date(default_due)}) précède l'ouverture de la "
            f"campagne ({_fr_date(opening)})"
        )

    steering = None
    if "steering" in data:
        raw = check.mapping(data["steering"], "steering")
        check.keys(raw, STEERING_KEYS, "steering")
        email = str(raw.get("email") or "").strip()
        if email and not _EMAIL.match(email):
            check.error(f"steering : adresse électronique invalide « {email} »")
        steering = Owner(
            str(raw.get("direction_fr") or DEFAULT_SENDER_NAME).strip(),
            str(raw.get("contact") or "").strip(),
            email or DEFAULT_SENDER,
        )

    raw_departments = data["departments"]
    departments = check.mapping(raw_departments, "departments")
    if not departments and (raw_departments is None or isinstance(raw_departments, dict)):
        check.error("« departments » ne liste aucune direction : la campagne n'attend rien")
    entries: list[Expectation] = []
    for department, raw_department in departments.items():
        where_department = f"direction « {department} »"
        department_data = check.mapping(raw_department, where_department)
        check.keys(department_data, DEPARTMENT_KEYS, where_department)
        if department not in known_departments:
            check.error(
                f"{where_department} inconnue : ni dans le catalogue des indicateurs ni dans "
                f"les contrats{_suggest(department, known_departments)}"
            )
        department_due = default_due
        if "due_date" in department_data:
            department_due = check.date(department_data["due_date"], "due_date", where_department)
        department_required = True
        if "required" in department_data:
            department_required = check.boolean(department_data["required"], where_department)
        sources = check.mapping(department_data.get("sources"), f"{where_department}, sources")
        if not sources:
            check.error(
                f"{where_department} : aucune source attendue (clé « sources » vide ou absente)"
            )
        for source_id, raw_source in sources.items():
            where = f"direction « {department} », source « {source_id} »"
            source_data = check.mapping(raw_source, where)
            check.keys(source_data, SOURCE_KEYS, where)
            contract = contracts.get(source_id)
            if contract is None:
                check.error(
                    f"{where} : source inconnue, aucun contrat sources/contracts/{source_id}.yml"
                    f"{_suggest(source_id, contracts)}"
                )
            elif not contract.accepts_department(department):
                check.error(
                    f"{where} : d'après son contrat, la source « {source_id} » est livrée par "
                    f"la direction « {contract.department} » ({contract.direction_fr}), "
                    f"pas par « {department} »"
                )
            elif (
                source_id == DECLARED_SOURCE
                and department in known_departments
                and department not in declared_departments
            ):
                check.error(
                    f"{where} : la direction « {department} » ne porte aucun indicateur "
                    "déclaré du catalogue, elle n'a rien à livrer dans « indicateurs_declares »"
                )
            owner_values = {
                key: str(source_data.get(key, department_data.get(key)) or "").strip()
                for key in OWNER_KEYS
            }
            missing = [key for key in ("direction_fr", "contact", "email") if not owner_values[key]]
            if missing:
                check.error(f"{where} : responsable incomplet, il manque {', '.join(missing)}")
            email = owner_values["email"]
            if email and not _EMAIL.match(email):
                check.error(f"{where} : adresse électronique invalide « {email} »")
            due = department_due
            if "due_date" in source_data:
                due = check.date(source_data["due_date"], "due_date", where)
            if due and opening and due < opening:
                check.error(
                    f"{where} : l'échéance {_fr_date(due)} précède l'ouverture de la campagne "
                    f"({_fr_date(opening)})"
                )
            required = department_required
            if "required" in source_data:
                required = check.boolean(source_data["required"], where)
            entries.append(
                Expectation(
                    department=str(department),
                    source_id=str(source_id),
                    owner=Owner(
                        owner_values["direction_fr"], owner_values["contact"], email.lower()
                    ),
                    due_date=due or default_due or dt.date(year + 1, 1, 31),
                    required=required,
                    comment_fr=str(source_data.get("comment_fr") or "").strip(),
                )
            )
    if check.problems:
        raise CampaignError(path, check.problems)
    return Campaign(
        year=year,
        opening_date=opening,
        default_due_date=default_due,
        entries=tuple(entries),
        steering=steering,
        comment_fr=str(data.get("comment_fr") or "").strip(),
        path=Path(path),
    )


def load_campaign(
    sources_dir: Path,
    year: int,
    *,
    contracts: dict[str, Contract] | None = None,
    catalogue_path: Path = CATALOGUE_CSV,
) -> Campaign:
    """Read and validate ``sources/<year>/campagne.yml``."""
    path = campaign_path(sources_dir, year)
    if not path.is_file():
        raise CampaignError(
            path,
            [
                f"aucun fichier de campagne pour {year} : créez sources/{year}/{CAMPAIGN_FILE} "
                "(format décrit dans docs/campaign.md)"
            ],
        )
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (ligne {mark.line + 1}, colonne {mark.column + 1})" if mark else ""
        raise CampaignError(path, [f"YAML illisible{where} : {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise CampaignError(path, [f"YAML illisible : {exc}"]) from exc
    return parse_campaign(data, year, path=path, contracts=contracts, catalogue_path=catalogue_path)


def uncovered(
    campaign: Campaign,
    *,
    contracts: dict[str, Contract] | None = None,
    catalogue_path: Path = CATALOGUE_CSV,
) -> list[tuple[str, str]]:
    """(department, source) pairs the kit defines but the campaign does not expect."""
    contracts = contracts if contracts is not None else default_contracts()
    _, declared_departments = _declared_departments(catalogue_path)
    wanted = {
        (c.department, c.source_id) for c in contracts.values() if c.department != ANY_DEPARTMENT
    } | {(d, DECLARED_SOURCE) for d in declared_departments}
    have = {(e.department, e.source_id) for e in campaign.entries}
    return sorted(wanted - have)


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


def _days(n: int) -> str:
    return f"{n} jour{'s' if n > 1 else ''}"


def _problems(n: int | None) -> str:
    n = n or 0
    return f"{n} problème{'s' if n > 1 else ''}"


def status_label(row: StatusRow, today: dt.date) -> str:
    """The French status of a row, as shown in the terminal, the table and the export."""
    if row.rejected:
        label = f"rejeté ({_problems(row.problem_count)})"
        if row.in_force_file:
            label += f", la livraison du {_fr_date(row.in_force_received_at)} reste en vigueur"
        elif row.late:
            label += f", en retard de {_days(row.days_late)}"
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
        label = f"en retard de {_days(row.days_late)}"
    elif not row.expected:
        label = "non reçu"
    elif not row.required:
        label = (
            f"facultatif, attendu avant le {_fr_date(row.due_date)}"
            if row.due_date and today <= row.due_date
            else "facultatif, non reçu"
        )
    else:
        label = f"attendu avant le {_fr_date(row.due_date)}"
    if row.pending_file:
        pending = f"déposé le {_fr_date(row.pending_since)}, en attente de traitement"
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
        "and coalesce(present, true) "
        if con.execute(
            "select count(*) from duckdb_columns() where schema_name = 'ingest' "
            "and table_name = 'deliveries' and column_name = 'present'"
        ).fetchone()[0]
        else ""
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

STATUS_COLUMNS = [
    ("year", "INTEGER"),
    ("department", "VARCHAR"),
    ("source_id", "VARCHAR"),
    ("owner", "VARCHAR"),
    ("email", "VARCHAR"),
    ("due_date", "DATE"),
    ("required", "BOOLEAN"),
    ("received", "BOOLEAN"),
    ("latest_file", "VARCHAR"),
    ("received_at", "TIMESTAMP"),
    ("latest_outcome", "VARCHAR"),
    ("problem_count", "INTEGER"),
    ("report_path", "VARCHAR"),
    ("in_force_file", "VARCHAR"),
    ("days_late", "INTEGER"),
    ("status_fr", "VARCHAR"),
    ("computed_at", "TIMESTAMP"),
    ("expected", "BOOLEAN"),
    ("direction_fr", "VARCHAR"),
    ("title_fr", "VARCHAR"),
    ("latest_delivery_id", "VARCHAR"),
    ("latest_sha256", "VARCHAR"),
    ("in_force_received_at", "TIMESTAMP"),
    ("pending_file", "VARCHAR"),
    ("atypical_count", "INTEGER"),
]


def ensure_status_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists campaign")
    if not table_exists(con, "campaign.status"):
        columns = ", ".join(f"{name} {kind}" for name, kind in STATUS_COLUMNS)
        con.execute(f"create table campaign.status ({columns})")
        return
    existing = {
        r[0]
        for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'campaign' and table_name = 'status'"
        ).fetchall()
    }
    for name, kind in STATUS_COLUMNS:
        if name not in existing:
            con.execute(f"alter table campaign.status add column {name} {kind}")


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
    con.execute("begin transaction")
    try:
        con.execute("delete from campaign.status where year = ?", [year])
        if values:
            con.executemany(
                f"insert into campaign.status ({', '.join(names)}) "
                f"values ({', '.join('?' for _ in names)})",
                values,
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return len(values)


# --- presentation ----------------------------------------------------------------------------

OUTCOME_FR = {"accepted": "accepté", "rejected": "rejeté"}

EXPORT_COLUMNS = [  # (header, width, value)
    ("Année", 7, lambda r: r.year),
    ("Direction", 34, lambda r: r.direction_fr),
    ("Code direction", 16, lambda r: r.department),
    ("Source", 24, lambda r: r.source_id),
    ("Intitulé", 40, lambda r: r.title_fr),
    ("Responsable", 22, lambda r: r.owner),
    ("Courriel", 32, lambda r: r.email),
    ("Échéance", 12, lambda r: r.due_date),
    ("Obligatoire", 12, lambda r: "oui" if r.required else "non"),
    ("Prévu par la campagne", 12, lambda r: "oui" if r.expected else "non"),
    ("Reçu", 8, lambda r: "oui" if r.received else "non"),
    ("Dernier fichier", 30, lambda r: r.latest_file),
    ("Reçu le", 17, lambda r: r.received_at),
    ("Résultat", 11, lambda r: OUTCOME_FR.get(r.latest_outcome or "", "")),
    ("Problèmes", 11, lambda r: r.problem_count if r.rejected else None),
    ("Rapport de rejet", 40, lambda r: r.report_path if r.rejected else None),
    ("Fichier en vigueur", 30, lambda r: r.in_force_file),
    ("En vigueur depuis le", 17, lambda r: r.in_force_received_at),
    ("Jours de retard", 10, lambda r: r.days_late or None),
    ("Statut", 60, lambda r: r.status_fr),
]


def export_status_xlsx(rows: Sequence[StatusRow], path: Path) -> Path:
    """A formatted workbook to send around: one row per expected delivery, late rows in red."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    late_fill = PatternFill("solid", fgColor="F8CBAD")
    rejected_fill = PatternFill("solid", fgColor="FFE699")
    accepted_fill = PatternFill("solid", fgColor="E2EFDA")
    header_fill = PatternFill("solid", fgColor="1F4E78")

    workbook = Workbook()
    sheet = workbook.active
    year = rows[0].year if rows else ""
    sheet.title = f"Campagne {year}".strip()
    sheet.append([header for header, _, _ in EXPORT_COLUMNS])
    for cell in sheet[1]:
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = header_fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    sheet.row_dimensions[1].height = 32
    for row in rows:
        sheet.append([value(row) for _, _, value in EXPORT_COLUMNS])
        for cell in sheet[sheet.max_row]:  # a text is text, never a formula (« =… »)
            if cell.data_type == "f":
                cell.data_type = "s"
        fill = (
            late_fill
            if row.late
            else rejected_fill
            if row.rejected
            else accepted_fill
            if row.accepted_in_force
            else None
        )
        for index, (header, _, _) in enumerate(EXPORT_COLUMNS, start=1):
            cell = sheet.cell(row=sheet.max_row, column=index)
            if header == "Échéance":
                cell.number_format = "DD/MM/YYYY"
            elif header in ("Reçu le", "En vigueur depuis le"):
                cell.number_format = "DD/MM/YYYY HH:MM"
            if fill is not None:
                cell.fill = fill
            if row.late and header in ("Statut", "Jours de retard"):
                cell.font = Font(bold=True, color="9C0006")
    for index, (_, width, _) in enumerate(EXPORT_COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(EXPORT_COLUMNS))}{max(sheet.max_row, 2)}"

    about = workbook.create_sheet("Résumé")
    about.append([summarize(rows).text_fr() if rows else "Aucune livraison attendue."])
    about.append([])
    about.append(["Légende"])
    about["A3"].font = Font(bold=True)
    about.append(["en retard : rien d'accepté n'est en vigueur et l'échéance est dépassée"])
    about["A4"].fill = late_fill
    about.append(["rejeté : la dernière livraison a été rejetée (voir le rapport de rejet)"])
    about["A5"].fill = rejected_fill
    about.append(["reçu, accepté : une livraison acceptée est en vigueur"])
    about["A6"].fill = accepted_fill
    about.column_dimensions["A"].width = 100

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path


def format_status(rows: Sequence[StatusRow], unrecognised: Iterable[Path] = ()) -> str:
    """A terminal table (one line per expected delivery) and the summary line."""
    headers = ("Direction", "Source", "Échéance", "Responsable", "Statut")
    lines_data = [
        (
            r.department,
            r.source_id,
            _fr_date(r.due_date),
            r.owner,
            ("! " if r.late or r.rejected else "  ") + r.status_fr,
        )
        for r in rows
    ]
    widths = [
        max([len(h)] + [len(line[i]) for line in lines_data]) for i, h in enumerate(headers[:-1])
    ]

    def fmt(values: Sequence[str]) -> str:
        return "  ".join(
            [v.ljust(w) for v, w in zip(values[:-1], widths, strict=True)] + [values[-1]]
        ).rstrip()

    out = [fmt(headers), fmt(["-" * w for w in widths] + ["-" * 6])]
    previous = None
    for department, line in zip((r.department for r in rows), lines_data, strict=True):
        if previous is not None and department != previous:
            out.append("")
        out.append(fmt(line))
        previous = department
    unrecognised = list(unrecognised)
    if unrecognised:
        out.append("")
        out.append("Fichiers déposés qui ne correspondent à aucune source (nom à corriger) :")
        out += [f"  {printable(str(p))}" for p in unrecognised]
    out.append("")
    out.append(summarize(rows).text_fr() if rows else "Aucune livraison attendue.")
    return "\n".join(out)


# --- reminders -------------------------------------------------------------------------------


@dataclass
class ReminderItem:
    row: StatusRow
    problems: list = field(default_factory=list)  # ingest.report.ProblemGroup
    atypical: list[str] = field(default_factory=list)  # values to confirm (French lines)


def reminder_subject(year: int) -> str:
    return f"Campagne {year} du rapport d'activité : livraisons attendues"


def _needs_reminder(row: StatusRow) -> bool:
    if not row.expected or not row.email or row.pending_file:
        return False
    return row.late or row.rejected or row.atypical_count > 0


def _problem_groups(con: duckdb.DuckDBPyConnection, delivery_id: str) -> list:
    """The rejection's problems grouped as in its report (``ingest.report.group_problems``:
    the same reason on many rows is one line with its row ranges), in the order found."""
    from dagster_project.ingest.report import group_problems

    if not table_exists(con, "ingest.delivery_problems"):
        return []
    cursor = con.execute(
        "select sheet, row_number, column_name, value, reason from ingest.delivery_problems "
        "where delivery_id = ? and severity = 'error' order by rowid",
        [delivery_id],
    )
    names = [d[0] for d in cursor.description]
    return group_problems(dict(zip(names, r, strict=True)) for r in cursor.fetchall())


def reminder_body(
    year: int,
    contact: str,
    items: Sequence[ReminderItem],
    sources_dir: Path,
    today: dt.date,
    sender_name: str = DEFAULT_SENDER_NAME,
    sender: str = DEFAULT_SENDER,
) -> str:
    late = [i for i in items if i.row.late and not i.row.rejected]
    rejected = [i for i in items if i.row.rejected]
    to_confirm = [i for i in items if i.atypical and not i.row.rejected]
    lines = [
        f"Bonjour {contact}," if contact else "Bonjour,",
        "",
        f"Dans le cadre de la campagne {year} du rapport d'activité, voici, au "
        f"{_fr_date(today)}, les livraisons de données qui nous manquent encore de votre part.",
    ]
    if late:
        lines += ["", "Livraisons en retard (aucun fichier reçu) :"]
        for item in late:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), {row.direction_fr} : attendue le "
                f"{_fr_date(row.due_date)}, en retard de {_days(row.days_late)}."
            )
            lines.append(
                f"    Fichier à déposer dans le dossier de la campagne {year} de votre direction "
                f"({year}/{row.department}), sous le nom {row.source_id}_{year}.xlsx : le modèle "
                "vierge est joint à ce message."
            )
    if rejected:
        lines += ["", "Livraisons rejetées (fichier reçu mais refusé au contrôle) :"]
        for item in rejected:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), {row.direction_fr} : le fichier "
                f"{row.latest_file} reçu le {_fr_date(row.received_at)} a été rejeté "
                f"({_problems(row.problem_count)})."
            )
            if row.in_force_file:
                lines.append(
                    f"    La livraison précédente ({row.in_force_file}, reçue le "
                    f"{_fr_date(row.in_force_received_at)}) reste en vigueur d'ici la correction."
                )
            elif row.late:
                lines.append(
                    f"    Aucune livraison n'est en vigueur : échéance du {_fr_date(row.due_date)} "
                    f"dépassée de {_days(row.days_late)}."
                )
            else:
                lines.append(
                    f"    Aucune livraison n'est en vigueur ; échéance le {_fr_date(row.due_date)}."
                )
            if item.problems:
                shown = item.problems[:MAX_PROBLEMS_IN_REMINDER]
                total = len(item.problems)
                lines.append(
                    "    Motifs du rejet"
                    + (f" ({len(shown)} premiers sur {total})" if total > len(shown) else "")
                    + " :"
                )
                for number, group in enumerate(shown, start=1):
                    lines.append(f"      {number}. {group.line_fr()}")
            if row.report_path:
                lines.append(
                    f"    Rapport complet joint à ce message : {row.latest_file}{REPORT_SUFFIX} "
                    "(les mêmes motifs, avec toutes les lignes concernées, à ouvrir avec Excel)."
                )
    if to_confirm:
        lines += [
            "",
            "Chiffres à confirmer (fichier accepté, mais ces valeurs semblent anormales) :",
        ]
        for item in to_confirm:
            row = item.row
            lines.append(
                f"  - {row.title_fr} ({row.source_id}), fichier {row.in_force_file} : "
                f"{row.atypical_count} valeur(s) à confirmer, détail joint : "
                f"{row.in_force_file}{NOTICE_SUFFIX}."
            )
            lines += [f"      {line}" for line in item.atypical[:MAX_PROBLEMS_IN_REMINDER]]
        lines.append(
            "    Si ces chiffres sont justes, dites-le-nous en répondant à ce message ; "
            "sinon déposez un fichier corrigé."
        )
    lines += [
        "",
        "Merci de déposer le fichier (ou le fichier corrigé) dans le dossier de votre direction "
        f"pour la campagne {year} ; un fichier déposé remplace entièrement le précédent.",
        "Pour toute question, répondez simplement à ce message.",
        "",
        "Cordialement,",
        sender_name,
        sender,
    ]
    return "\n".join(lines) + "\n"


def _file_slug(email: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "_", email.lower().replace("@", "_at_"))


def write_reminders(
    con: duckdb.DuckDBPyConnection,
    sources_dir: Path,
    year: int,
    today: dt.date,
    out_dir: Path,
    *,
    sender: str | None = None,
    sender_name: str | None = None,
    campaign: Campaign | None = None,
    rows: Sequence[StatusRow] | None = None,
) -> list[Path]:
    """One ``.eml`` per owner with something late, rejected or to confirm; returns their
    paths, ``out_dir/<today>/relance_<year>_<address>.eml``.

    Each message carries what the department needs to act (the rejection report, the notice
    of values to confirm, the blank template). Reminders of earlier days are kept, and each
    one written is recorded in ``out_dir/journal_des_relances.csv`` (``record_reminder``);
    nothing is sent here (``send_reminders``). The sender is, in order: ``sender``, env ``KPI_REMINDER_FROM``,
    the campaign's ``steering.email``, ``pilotage@bethunebruay.fr``.
    """
    if campaign is None:
        campaign = load_campaign(sources_dir, year)
    if rows is None:
        rows = campaign_status(con, sources_dir, year, today, campaign=campaign)
    steering = campaign.steering
    sender = (
        sender
        or os.environ.get("KPI_REMINDER_FROM")
        or (steering.email if steering else None)
        or DEFAULT_SENDER
    )
    sender_name = sender_name or (steering.direction_fr if steering else DEFAULT_SENDER_NAME)

    from dagster_project.quality.notices import atypical_lines

    by_owner: dict[str, list[ReminderItem]] = {}
    for row in rows:
        if not _needs_reminder(row):
            continue
        problems = (
            _problem_groups(con, row.latest_delivery_id)
            if row.rejected and row.latest_delivery_id
            else []
        )
        atypical = (
            atypical_lines(con, year, row.in_force_delivery_id)
            if row.atypical_count and row.in_force_delivery_id
            else []
        )
        by_owner.setdefault(row.email.lower(), []).append(ReminderItem(row, problems, atypical))

    # every day's reminders are kept in a folder of their own (what was written, for whom);
    # a second `kpi remind` the same day replaces that day's files only
    day_dir = Path(out_dir) / today.isoformat()
    day_dir.mkdir(parents=True, exist_ok=True)
    for stale in day_dir.glob(f"{REMINDER_PREFIX}_{year}_*.eml"):
        stale.unlink()
    sent_at = dt.datetime.combine(today, dt.time(8, 0)).astimezone()
    with tempfile.TemporaryDirectory(prefix="kpi-modeles-") as folder:
        templates = _blank_templates(Path(folder), year, campaign, by_owner)
        return _write_messages(
            by_owner,
            templates,
            day_dir,
            Path(out_dir),
            sources_dir,
            year,
            today,
            sent_at,
            sender,
            sender_name,
        )


def _write_messages(
    by_owner, templates, day_dir, out_dir, sources_dir, year, today, sent_at, sender, sender_name
) -> list[Path]:
    written = []
    for email, items in sorted(by_owner.items()):
        contact = items[0].row.owner
        message = EmailMessage(policy=policy.SMTP)
        message["Subject"] = reminder_subject(year)
        message["From"] = formataddr((sender_name, sender))
        message["To"] = formataddr((contact, email)) if contact else email
        message["Date"] = format_datetime(sent_at)
        message["Message-ID"] = (
            f"<campagne-{year}-{today.isoformat()}-{_file_slug(email)}@{sender.split('@')[-1]}>"
        )
        message.set_content(
            reminder_body(year, contact, items, sources_dir, today, sender_name, sender),
            charset="utf-8",
            cte="quoted-printable",
        )
        attached = []
        for attachment in _attachments(sources_dir, year, items, templates):
            message.add_attachment(
                attachment.read_bytes(),
                maintype="application",
                subtype=_SUBTYPES.get(attachment.suffix.lower(), "octet-stream"),
                filename=attachment.name,
            )
            attached.append(attachment.name)
        path = day_dir / f"{REMINDER_PREFIX}_{year}_{_file_slug(email)}.eml"
        path.write_bytes(message.as_bytes())
        written.append(path)
        record_reminder(
            out_dir,
            written_on=today,
            contact=contact,
            email=email,
            subject=reminder_subject(year),
            path=path,
            sources=[i.row.source_id for i in items],
            attachments=attached,
        )
    return written


_SUBTYPES = {
    ".csv": "csv",
    ".xlsx": "vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
JOURNAL = "journal_des_relances.csv"
JOURNAL_HEADER = [
    "Écrite le",
    "Destinataire",
    "Adresse",
    "Objet",
    "Fichier",
    "Sources concernées",
    "Pièces jointes",
    "Envoyée le",
]


def _blank_templates(folder: Path, year: int, campaign, by_owner) -> dict:
    """(department, source_id) -> the blank template to attach, for late or rejected items
    (written by ``templates.write_templates`` into ``folder``, a temporary one)."""
    wanted = {
        (i.row.department, i.row.source_id)
        for items in by_owner.values()
        for i in items
        if i.row.late or i.row.rejected
    }
    if not wanted:
        return {}
    from dagster_project.campaign.templates import write_templates

    steering = campaign.steering.email if campaign.steering else None
    deadlines = {
        (e.department, e.source_id): (e.due_date, steering or e.owner.email)
        for e in campaign.entries
    }
    paths = write_templates(
        year, folder, departments=sorted({d for d, _ in wanted}), deadlines=deadlines
    )
    return {
        (p.parent.name, p.name.removesuffix(f"_{year}.xlsx")): p
        for p in paths
        if (p.parent.name, p.name.removesuffix(f"_{year}.xlsx")) in wanted
    }


def _attachments(sources_dir: Path, year: int, items, templates: dict) -> list[Path]:
    """What a department needs to act: the rejection report, the notice of the values to
    confirm, the blank template; only files that exist, never through a link."""
    found = []
    for item in items:
        row = item.row
        folder = Path(sources_dir) / str(year) / row.department
        if row.rejected and row.latest_file:
            found.append(folder / f"{row.latest_file}{REPORT_SUFFIX}")
        if item.atypical and row.in_force_file:
            found.append(folder / f"{row.in_force_file}{NOTICE_SUFFIX}")
        template = templates.get((row.department, row.source_id))
        if template is not None:
            found.append(template)
    return [p for p in found if p.is_file() and not p.is_symlink()]


def record_reminder(
    out_dir: Path,
    *,
    written_on: dt.date,
    contact: str,
    email: str,
    subject: str,
    path: Path,
    sources: Sequence[str],
    attachments: Sequence[str],
    sent_at: dt.datetime | None = None,
) -> Path:
    """Append one line to the reminders' journal (``journal_des_relances.csv``, French
    Excel): what was written or sent, to whom, when. Never rewritten: the history stays."""
    journal = Path(out_dir) / JOURNAL
    new = not journal.exists()
    with journal.open("a", encoding="utf-8-sig" if new else "utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        if new:
            writer.writerow(JOURNAL_HEADER)
        writer.writerow(  # (text neutralised: csv_safety)
            neutralise_row(
                [
                    _fr_date(written_on),
                    contact,
                    email,
                    subject,
                    f"{path.parent.name}/{path.name}",
                    ", ".join(sources),
                    ", ".join(attachments),
                    sent_at.strftime("%d/%m/%Y %H:%M") if sent_at else "",
                ]
            )
        )
    return journal


def read_reminder(path: Path) -> EmailMessage:
    with Path(path).open("rb") as handle:
        return BytesParser(policy=policy.default).parse(handle)


def send_reminders(
    paths: Sequence[Path],
    smtp_host: str,
    port: int = 25,
    user: str | None = None,
    password: str | None = None,
    *,
    starttls: bool | None = None,
    timeout: float = 30,
) -> list[str]:
    """Send the ``.eml`` files through SMTP; returns the recipients, in order.

    Port 465 uses implicit TLS; otherwise STARTTLS is used when ``starttls`` is true, or,
    when it is None, whenever the server offers it and credentials are given.
    """
    if not paths:
        return []
    if port == 465:
        client = smtplib.SMTP_SSL(
            smtp_host, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(smtp_host, port, timeout=timeout)
    recipients = []
    with client as smtp:
        smtp.ehlo()
        if port != 465 and (starttls or (starttls is None and user and smtp.has_extn("starttls"))):
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
        if user:
            smtp.login(user, password or "")
        for path in paths:
            message = read_reminder(path)
            smtp.send_message(message)
            recipients.append(str(message["To"]))
    return recipients


def send_reminders_from_env(paths: Sequence[Path]) -> list[str] | None:
    """Send through ``KPI_SMTP_HOST`` (``KPI_SMTP_PORT``, ``KPI_SMTP_USER``,
    ``KPI_SMTP_PASSWORD``); None, and nothing sent, when ``KPI_SMTP_HOST`` is not set."""
    host = os.environ.get("KPI_SMTP_HOST")
    if not host:
        return None
    return send_reminders(
        paths,
        host,
        int(os.environ.get("KPI_SMTP_PORT") or 25),
        os.environ.get("KPI_SMTP_USER") or None,
        os.environ.get("KPI_SMTP_PASSWORD") or None,
    )


def parse_today(value: str | dt.date | None) -> dt.date:
    """The campaign clock: an ISO date (``--today`` / ``KPI_TODAY``), or the real date."""
    if isinstance(value, dt.date):
        return value
    if value:
        parsed = _parse_date(value)
        if parsed is None:
            raise ValueError(f"date du jour invalide « {value} » (format attendu AAAA-MM-JJ)")
        return parsed
    return dt.date.today()
