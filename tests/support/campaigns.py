"""A campaign file (sources/<year>/campagne.yml) for the campaign and ingestion tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

CAMPAIGN_2025 = """\
campaign_year: 2025
opening_date: 2025-11-17
default_due_date: 2026-01-31
steering:
  direction_fr: Direction du Pilotage Stratégique
  email: pilotage@bethunebruay.fr
departments:
  water:
    direction_fr: Direction du Petit Cycle de l'Eau
    contact: Sophie Delattre
    email: sophie.delattre@bethunebruay.fr
    sources:
      eau_udi:
      eau_volumes:
        due_date: 2026-02-15
  waste:
    direction_fr: Direction Déchets et Économie Circulaire
    contact: David Vandenbussche
    email: david.vandenbussche@bethunebruay.fr
    due_date: 2026-02-15
    sources:
      dechets_collecte:
  housing:
    direction_fr: Direction de l'Habitat
    contact: Hélène Dufour
    email: helene.dufour@bethunebruay.fr
    sources:
      logements_sociaux:
        due_date: 2026-02-28
  hr:
    direction_fr: Direction des Ressources Humaines
    contact: Stéphanie Boulanger
    email: stephanie.boulanger@bethunebruay.fr
    sources:
      rh_effectifs:
        due_date: 15/03/2026
  culture:
    direction_fr: Direction de la Culture
    contact: Nathalie Delcroix
    email: nathalie.delcroix@bethunebruay.fr
    sources:
      indicateurs_declares:
        required: false
"""


def write_campaign(sources: Path, text: str, year: int = 2025) -> Path:
    path = sources / str(year) / "campagne.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path
