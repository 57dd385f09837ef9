"""dbt's ``models/staging/_sources.yml``, generated from the contracts.

Run ``kpi generate`` (or ``kpi contracts``, which writes only this file) after changing a
contract; a test fails while the file is stale.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from dagster_project.contracts.model import Contract, default_contracts
from dagster_project.ingest.store import LINEAGE_COLUMNS
from dagster_project.settings import DBT_PROJECT_DIR

SOURCES_YML = DBT_PROJECT_DIR / "models" / "staging" / "_sources.yml"
HEADER = "# GÉNÉRÉ depuis sources/contracts/*.yml par `kpi generate` : ne pas modifier à la main.\n"
LINEAGE_DESCRIPTIONS = {
    "_delivery_id": "Identifiant de la livraison (fichier) d'où vient la ligne.",
    "_file_sha256": "Empreinte SHA-256 du fichier livré.",
    "_sheet": "Feuille du classeur d'où vient la ligne.",
    "_row_number": "Numéro de ligne dans la feuille (tel qu'affiché par Excel).",
    "_campaign_year": "Année de campagne (dossier sources/<année>/).",
    "_department": "Direction qui a livré le fichier (dossier sources/<année>/<direction>/).",
}
SCHEMA_DESCRIPTIONS = {
    "raw": "Tables brutes écrites par l'ingestion : une table par source, lignes de toutes "
    "les livraisons acceptées (historique).",
    "raw_restricted": "Tables brutes des sources à données personnelles (RH) : matricules "
    "pseudonymisés, pas de date de naissance, décomptes de petits groupes d'agents ; accès "
    "restreint, jamais publiées.",
}


def _column_doc(contract: Contract) -> list[dict]:
    columns = []
    for column in contract.columns:
        if not column.stored_name:
            continue
        description = column.description_fr.strip()
        if column.age_reference:
            description = (
                f"Âge en mois révolus à la date « {column.age_reference} » (la date de naissance "
                "n'entre pas dans l'entrepôt)."
            )
        columns.append({"name": column.stored_name, "description": description})
    columns += [
        {"name": name, "description": LINEAGE_DESCRIPTIONS[name]} for name, _ in LINEAGE_COLUMNS
    ]
    return columns


def render_sources(contracts: dict[str, Contract]) -> str:
    sources = []
    for schema in ("raw", "raw_restricted"):
        tables = [
            {
                "name": c.source_id,
                "description": f"{c.title_fr} ({c.direction_fr}). {c.description_fr}".strip(),
                "meta": {"department": c.department, "grain": list(c.grain)},
                "columns": _column_doc(c),
            }
            for c in sorted(contracts.values(), key=lambda c: c.source_id)
            if c.raw_schema == schema
        ]
        sources.append(
            {
                "name": schema,
                "schema": schema,
                "description": SCHEMA_DESCRIPTIONS[schema],
                "tables": tables,
            }
        )
    sources.append(
        {
            "name": "ingest",
            "schema": "ingest",
            "description": "Journal de l'ingestion.",
            "tables": [
                {
                    "name": "deliveries",
                    "description": "Une ligne par livraison reçue (acceptée ou rejetée), avec "
                    "in_force vrai pour la seule livraison acceptée en vigueur par (année de "
                    "campagne, direction, source).",
                },
                {
                    "name": "delivery_problems",
                    "description": "Chaque problème relevé dans une livraison (feuille, ligne, "
                    "colonne, valeur, motif en français).",
                },
            ],
        }
    )
    body = yaml.safe_dump(
        {"version": 2, "sources": sources}, allow_unicode=True, sort_keys=False, width=100
    )
    return HEADER + body


def write_sources(path: Path = SOURCES_YML) -> bool:
    """Write the file; True when it changed."""
    text = render_sources(default_contracts())
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
