"""The reference data every delivery is judged against: the communes and the indicator catalogue.

Read once per process (``functools.cache``) from ``settings.COMMUNES_CSV`` and
``settings.CATALOGUE_CSV`` (plus ``indicator_catalogue_extensions.csv`` beside it, which
says which indicators may be negative); the ``Ingestor`` takes them by default, the tests,
the portal's verdict and the benchmark load them the same way.
"""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path

from dagster_project.ingest.normalize import CommuneMatcher
from dagster_project.ingest.validation.context import CatalogueEntry
from dagster_project.settings import CATALOGUE_CSV, COMMUNES_CSV


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
