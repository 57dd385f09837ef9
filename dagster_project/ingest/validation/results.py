"""What the validation of a delivery says: its problems, and its accepted rows.

A ``Problem`` locates file, sheet, row, column and value, with a French reason (an error
rejects the delivery, a warning does not). ``ValidationResult`` holds the problems and, when
there is none, the accepted rows as an Arrow table. ``_ProblemSink`` collects the problems
of one delivery: the first ``MAX_PROBLEMS`` are kept and the others counted (the report
says how many more there are); the value of a private column is shown ``(masqué)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from dagster_project.ingest.normalize import display, is_empty

MAX_PROBLEMS = 2000  # beyond, the report says how many more there are
MASKED = "(masqué)"


@dataclass
class Problem:
    reason: str
    sheet: str | None = None
    row: int | None = None  # 1-based, as Excel shows it
    column: str | None = None  # the header as written in the file, or the contract column
    value: str = ""
    severity: str = "error"  # error | warning


@dataclass
class ValidationResult:
    sheet: str | None
    problems: list[Problem]
    warnings: list[Problem]
    header_row: int | None = None
    total_rows: int = 0
    omitted_problems: int = 0
    # the accepted rows: contract columns (after pseudonymisation), _sheet, _row_number
    table: pa.Table | None = None

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def row_count(self) -> int:
        return self.table.num_rows if self.table is not None else 0

    @property
    def records(self) -> list[dict[str, Any]]:
        """The accepted rows as dicts (convenient for tests and small files)."""
        return self.table.to_pylist() if self.table is not None else []


class _ProblemSink:
    """The problems of a delivery, the first ``MAX_PROBLEMS`` kept, the others counted."""

    def __init__(self, sheet: str, masked: set[str]):
        self.sheet = sheet
        self.masked = masked
        self.problems: list[Problem] = []
        self.count = 0

    @property
    def omitted(self) -> int:
        return self.count - len(self.problems)

    def make(self, reason: str, row: int | None, column: str | None, value: object = "") -> Problem:
        shown = MASKED if column in self.masked and not is_empty(value) else display(value)
        return Problem(reason, self.sheet, row, column, shown)

    def add(self, reason: str, row: int | None, column: str | None, value: object = "") -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(self.make(reason, row, column, value))

    def first(self, reason: str, column: str | None) -> None:
        """A problem about the whole delivery, put before the others."""
        self.count += 1
        self.problems.insert(0, Problem(reason, self.sheet, None, column))
        del self.problems[MAX_PROBLEMS:]

    def extend(self, problems: list[Problem]) -> None:
        self.count += len(problems)
        room = MAX_PROBLEMS - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])
