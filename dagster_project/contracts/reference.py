"""Reference data read beside the contracts: communes, declared indicators, directions.

The member communes (``load_communes``: code INSEE and name), the ``declared`` indicators of
the catalogue by owning department (``load_declared_indicators``, ``Indicator``), and the
French names of the departments' directions (``DIRECTIONS_FR``, ``direction_of``: the
contracts name the directions of the detailed sources, this table those of every
department of the catalogue). The blank templates of the campaign read them here, and the
demo generator takes the directions' names from here: domain code never depends on the demo.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagster_project.contracts.model import Contract
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV

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
