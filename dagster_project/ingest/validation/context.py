"""What a delivery is judged against besides its own contract.

``IngestContext`` carries the campaign year and department, the member communes, today's
date, the values of the deliveries in force that a ``references`` rule reads, the indicator
catalogue (``CatalogueEntry``) that declared indicators are checked against, and the
pseudonymiser. ``ingest.pipeline.Ingestor`` builds one for each delivery it validates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagster_project.ingest.normalize import CommuneMatcher


@dataclass
class CatalogueEntry:
    indicator_id: str
    department: str
    computation: str
    allow_negative: bool = False


@dataclass
class IngestContext:
    """What a delivery is judged against besides its own contract."""

    campaign_year: int
    department: str
    communes: CommuneMatcher
    today: dt.date = field(default_factory=dt.date.today)
    # (source_id, column) -> values present in the delivery in force for the campaign year
    references: Callable[[str, str], set[Any] | None] = lambda source, column: None
    catalogue: dict[str, CatalogueEntry] = field(default_factory=dict)
    pseudonymise: Callable[[str], str] | None = None
