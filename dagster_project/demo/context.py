"""Generation context shared by the department builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ._common import Commune


@dataclass
class Ctx:
    root: Path
    year: int
    communes: list[Commune]
    catalogue: list[dict[str, str]]
    _by_code: dict[str, Commune] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_code = {c.code: c for c in self.communes}

    def commune(self, code: str) -> Commune:
        return self._by_code[code]

    def path(self, department: str, source_id: str) -> Path:
        return self.root / str(self.year) / department / f"{source_id}_{self.year}.xlsx"

    @property
    def population(self) -> int:
        return sum(c.pop for c in self.communes)
