"""Reference data read beside the contracts: communes, declared indicators, directions.

The member communes (``load_communes``: code INSEE and name), the ``declared`` indicators of
the catalogue by owning department (``load_declared_indicators``, ``Indicator``), and the
French names of the departments' directions (``DIRECTIONS_FR``, ``direction_of``: the
contracts name the directions of the detailed sources, this table those of every
department of the catalogue). The blank templates of the campaign read them here, and the
demo generator takes the directions' names from here: domain code never depends on the demo.

The catalogue's codes in French, for everything a person reads: the units' labels
(``unit_label``, ``amount_fr``) come from the seed ``dbt/seeds/units.csv``, the very file dbt
joins to give the marts their ``unit_label`` column (one source for both); the natures
(``KINDS_FR``), computations (``COMPUTATIONS_FR``), directions (``direction_fr``) and published
periods (``period_fr``) are rendered here.
"""

from __future__ import annotations

import csv
import functools
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster_project.contracts.model import Contract
from dagster_project.lib.french import format_number
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

# code -> French label of the units (columns unit, unit_label); read by dbt as the seed ``units``
UNITS_CSV = CATALOGUE_CSV.with_name("units.csv")

# the source of the declared figures: one workbook per department owning declared indicators
DECLARED_SOURCE = "indicateurs_declares"
# The catalogue's last published figures (column published_2025) come from the 2025 report,
# whatever the campaign year: a fact, not an example.
PUBLISHED_REPORT_YEAR = 2025

# the French name of the direction of every department of the catalogue
DIRECTIONS_FR = {
    "agriculture": "Direction de l'Agriculture et de l'Alimentation",
    "animal_welfare": "Direction de la Tranquillité Publique (fourrière et refuge)",
    "archaeology": "Direction de l'Archéologie Préventive",
    "civil_protection": "Direction de la Prévention des Risques et de la Protection Civile",
    "communication": "Direction de la Communication",
    "culture": "Direction de la Culture",
    "digital_inclusion": "Direction de l'Inclusion Numérique",
    "early_childhood": "Direction de la Petite Enfance",
    "economy": "Direction du Développement Économique",
    "education": "Direction de l'Éducation et de la Jeunesse",
    "employment": "Direction de l'Emploi et de l'Insertion",
    "energy": "Direction de la Transition Énergétique",
    "environment": "Direction de l'Environnement et de la Biodiversité",
    "facilities": "Direction du Patrimoine et des Bâtiments",
    "finance": "Direction des Finances",
    "governance": "Direction Générale des Services",
    "health": "Direction de la Santé",
    "housing": "Direction de l'Habitat",
    "hr": "Direction des Ressources Humaines",
    "innovation": "Direction de l'Innovation",
    "it": "Direction des Systèmes d'Information",
    "legal_admin": "Direction des Affaires Juridiques et de l'Administration Générale",
    "mobility": "Direction de la Mobilité",
    "participation": "Direction de la Participation Citoyenne",
    "planning": "Direction de la Planification Territoriale",
    "social": "Direction de la Cohésion Sociale",
    "sport": "Direction des Sports",
    "strategy": "Direction du Pilotage Stratégique",
    "territory": "Direction du Pilotage Stratégique (observatoire territorial)",
    "tourism": "Direction du Tourisme",
    "urbanism": "Direction de l'Urbanisme et du Droit des Sols",
    "waste": "Direction Déchets et Économie Circulaire",
    "water": "Direction du Petit Cycle de l'Eau",
}


@dataclass(frozen=True)
class Indicator:
    indicator_id: str
    label_fr: str
    unit: str
    kind: str
    definition: str
    published: str
    period: str
    allow_negative: bool


def load_communes(path: Path = COMMUNES_CSV) -> list[tuple[str, str]]:
    """(code_insee, nom) of the member communes, by code."""
    with Path(path).open(encoding="utf-8") as handle:
        return sorted((row["code_insee"], row["nom"]) for row in csv.DictReader(handle))


def load_declared_indicators(path: Path = CATALOGUE_CSV) -> dict[str, list[Indicator]]:
    """Declared indicators of the catalogue, by owning department (catalogue order)."""
    path = Path(path)
    negative: set[str] = set()
    extensions = path.with_name("indicator_catalogue_extensions.csv")
    if extensions.is_file():
        with extensions.open(encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if str(row.get("allow_negative", "")).strip().lower() in ("true", "1", "oui"):
                    negative.add(row["indicator_id"])
    out: dict[str, list[Indicator]] = defaultdict(list)
    with path.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("computation") != "declared":
                continue
            out[row["department"]].append(
                Indicator(
                    indicator_id=row["indicator_id"],
                    label_fr=row.get("label_fr") or "",
                    unit=row.get("unit") or "",
                    kind=row.get("kind") or "",
                    definition=row.get("definition") or "",
                    published=row.get(f"published_{PUBLISHED_REPORT_YEAR}") or "",
                    period=row.get("published_period") or "",
                    allow_negative=row["indicator_id"] in negative,
                )
            )
    return dict(out)


def direction_of(department: str, contracts: Mapping[str, Contract]) -> str:
    """French name of a department's direction (contracts first, then ``DIRECTIONS_FR``)."""
    for contract in contracts.values():
        if contract.department == department and contract.direction_fr:
            return contract.direction_fr
    return DIRECTIONS_FR.get(department, f"Direction « {department} »")


def direction_fr(department: str | None) -> str:
    """French name of a department's direction (``DIRECTIONS_FR``); « » around an unknown code."""
    if not department:
        return ""
    return DIRECTIONS_FR.get(department, f"Direction « {department} »")


# --------------------------------------------------------------------------- catalogue codes

# nature of an indicator (catalogue column kind) and how its value is obtained (computation)
KINDS_FR = {"value": "valeur constatée", "target": "objectif", "forecast": "prévision"}
COMPUTATIONS_FR = {"derived": "calculée par l'entrepôt", "declared": "déclarée par la direction"}
# labels after which a number reads better alone (« 15 », not « 15 nombre »)
_BARE_UNITS = {"nombre", "ratio", "rang"}


@functools.cache
def _units(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8", newline="") as handle:
        return {
            row["unit"].strip(): row["unit_label"].strip()
            for row in csv.DictReader(handle)
            if (row.get("unit") or "").strip() and (row.get("unit_label") or "").strip()
        }


def units_fr(path: Path = UNITS_CSV) -> dict[str, str]:
    """{unit code: French label} of ``dbt/seeds/units.csv`` (read once)."""
    return dict(_units(Path(path)))


def unit_label(unit: str | None) -> str:
    """« personnes » for ``persons``, « m³ » for ``m3``; an unknown code with its « _ » as
    spaces (never an error: a label missing from the seed fails dbt's tests, not a report)."""
    if not unit:
        return ""
    return _units(UNITS_CSV).get(unit) or unit.replace("_", " ")


def amount_fr(value: float | None, unit: str | None) -> str:
    """A number and its unit as a sentence says it: « 1 200 € », « 12,5 % », « 38 communes »,
    « 15 » for a count, « 3 par an » for a count per year (all the number's digits kept)."""
    number = format_number(value)
    label = unit_label(unit)
    if value is None or not label or label in _BARE_UNITS:
        return number
    if label.startswith("nombre "):
        label = label.removeprefix("nombre ")
    return f"{number} {label}"


def kind_fr(kind: str | None) -> str:
    return KINDS_FR.get(kind or "", kind or "")


def computation_fr(computation: str | None) -> str:
    return COMPUTATIONS_FR.get(computation or "", computation or "")


# --------------------------------------------------------------------------- published periods

MONTHS_FR = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
]
_ORDINAL = {"1": "1er", "2": "2e", "3": "3e", "4": "4e"}
# The catalogue's published_period (« 2025-H1 », « 2024-2025 season », « target:2032 »,
# « before extension »...) in French, rule by rule, in this order.
_PERIOD_RULES: list[tuple[re.Pattern[str], object]] = [
    (re.compile(r"^before extension$"), "avant extension"),
    (re.compile(r"^project$"), "projet"),
    (re.compile(r"^cumulative \(convention (\d{4})\)$"), r"cumul depuis la convention de \1"),
    (re.compile(r"^cumulative(?::\s*|\b)"), "cumul "),
    (re.compile(r"^target(?::\s*|\b)"), "objectif "),
    (re.compile(r"^(\d{4}-\d{4}) season$"), r"saison \1"),
    (re.compile(r"^(\d{4}-\d{4}) school year$"), r"année scolaire \1"),
    (re.compile(r"(?<!\d)(\d{4})-H([12])(?!\d)"), lambda m: f"{_ORDINAL[m[2]]} semestre {m[1]}"),
    (
        re.compile(r"(?<!\d)(\d{4})-Q([1-4])(?!\d)"),
        lambda m: f"{_ORDINAL[m[2]]} trimestre {m[1]}",
    ),
    (re.compile(r"(?<!\d)(\d{4})-summer\b"), r"été \1"),
    (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), r"\3/\2/\1"),
    (
        re.compile(r"(?<!\d)(\d{4})-(0[1-9]|1[0-2])(?!\d)"),
        lambda m: f"{MONTHS_FR[int(m[2]) - 1]} {m[1]}",
    ),
    (re.compile(r" vs "), " par rapport à "),
    (re.compile(r"\(forecast\)"), "(prévision)"),
    (re.compile(r"\(planned\)"), "(prévu)"),
    (re.compile(r"\(mid-term evaluation\)"), "(évaluation à mi-parcours)"),
    (re.compile(r"\(remaining\)"), "(reste de l'année)"),
]


def period_fr(period: str | None) -> str:
    """The period the 2025 report gave for a figure, in French: « 1er semestre 2025 » for
    ``2025-H1``, « octobre 2025 » for ``2025-10``, « 30/09/2025 », « saison 2024-2025 »,
    « objectif 2032 » for ``target:2032``, « avant extension », « projet »..."""
    parts = []
    for part in " ".join((period or "").split()).split("/"):  # « 2024-06/2025-09 »: a span
        for pattern, replacement in _PERIOD_RULES:
            part = pattern.sub(replacement, part)  # type: ignore[arg-type]
        parts.append(" ".join(part.split()))
    return " – ".join(p for p in parts if p)
