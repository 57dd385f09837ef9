"""Deterministic generator of the demo campaign.

``generate_demo(sources_dir)`` (re)writes the departmental workbooks of the
campaigns 2023, 2024 and 2025 under ``sources_dir/<year>/<department>/``:
the 14 detailed sources of water, waste, housing and hr, and the declared
figures of every department of the catalogue. The 2025 workbooks reproduce
the figures of the 2025 report (see the catalogue's ``published_2025``).

Every random draw comes from ``random.Random`` seeded with a fixed key per
source and year, and workbook properties are fixed, so two runs give
byte-identical files.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from . import declared, housing, hr, waste, water
from ._common import load_catalogue, load_communes
from ._xlsx import write_book
from .context import Ctx

DEFAULT_YEARS = (2023, 2024, 2025)

# source_id -> department, for the detailed sources written here
DETAILED_SOURCES = {
    "eau_udi": water.DEPARTMENT,
    "eau_volumes": water.DEPARTMENT,
    "eau_reseau": water.DEPARTMENT,
    "eau_qualite": water.DEPARTMENT,
    "assainissement_activite": water.DEPARTMENT,
    "dechets_collecte": waste.DEPARTMENT,
    "dechetteries_apports": waste.DEPARTMENT,
    "dechets_prevention": waste.DEPARTMENT,
    "logements_sociaux": housing.DEPARTMENT,
    "amelioration_habitat": housing.DEPARTMENT,
    "permis_de_louer": housing.DEPARTMENT,
    "rh_effectifs": hr.DEPARTMENT,
    "rh_formation": hr.DEPARTMENT,
    "rh_arretes": hr.DEPARTMENT,
}
OWNED_SOURCE_IDS = (*DETAILED_SOURCES, declared.SOURCE_ID)

_BUILDERS = (water.build, waste.build, housing.build, hr.build, declared.build)


def _remove_stale(sources_dir: Path, years: Iterable[int]) -> list[Path]:
    """Delete the files this generator owns (``<source_id>_<year>.xlsx`` of
    the years generated), wherever they sit under ``sources_dir/<year>/``.
    Nothing else is touched (contracts, other deliveries)."""
    removed = []
    owned = re.compile(
        r"^(?:" + "|".join(re.escape(s) for s in OWNED_SOURCE_IDS) + r")_(\d{4})\.xlsx$"
    )
    for year in years:
        year_dir = sources_dir / str(year)
        if not year_dir.is_dir():
            continue
        for dept_dir in sorted(p for p in year_dir.iterdir() if p.is_dir()):
            for f in sorted(dept_dir.iterdir()):
                m = owned.match(f.name)
                if f.is_file() and m and int(m[1]) == year:
                    f.unlink()
                    removed.append(f)
    return removed


def generate_demo(
    sources_dir: Path,
    years: Iterable[int] = DEFAULT_YEARS,
    *,
    catalogue_path: Path | None = None,
    communes_path: Path | None = None,
) -> list[Path]:
    """Write the demo workbooks and return their paths (sorted)."""
    sources_dir = Path(sources_dir)
    years = tuple(sorted(set(int(y) for y in years)))
    catalogue = load_catalogue(catalogue_path)
    communes = load_communes(communes_path)
    _remove_stale(sources_dir, years)
    written = []
    for year in years:
        ctx = Ctx(root=sources_dir, year=year, communes=communes, catalogue=catalogue)
        for build in _BUILDERS:
            for book in build(ctx):
                written.append(write_book(book))
    return sorted(written)
