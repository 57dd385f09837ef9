"""The campaign file: who delivers what, by when.

``sources/<year>/campagne.yml`` (format in ``docs/campaign.md``) lists, per department and
source, the owner (direction, contact, e-mail), the due date and whether the delivery is
required. ``load_campaign`` reads it into a ``Campaign`` (one ``Expectation`` per department
and source) and checks it against the contracts and the indicator catalogue, raising
``CampaignError`` with every problem in French; ``uncovered`` lists the deliveries the kit
defines but the campaign does not expect. The status (``status.py``), the reminders
(``reminders.py``) and next year's file (``rollover.py``) all start from here.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dagster_project.campaign.dates import fr_date, parse_date
from dagster_project.contracts.model import ANY_DEPARTMENT, Contract, default_contracts
from dagster_project.contracts.reference import DECLARED_SOURCE
from dagster_project.settings import CATALOGUE_CSV

CAMPAIGN_FILE = "campagne.yml"
DEFAULT_SENDER = "pilotage@bethunebruay.fr"
DEFAULT_SENDER_NAME = "Direction du Pilotage Stratégique"

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
        parsed = parse_date(value)
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
            f"l'échéance par défaut ({fr_date(default_due)}) précède l'ouverture de la "
            f"campagne ({fr_date(opening)})"
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
                    f"{where} : l'échéance {fr_date(due)} précède l'ouverture de la campagne "
                    f"({fr_date(opening)})"
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
