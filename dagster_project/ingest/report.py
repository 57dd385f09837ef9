"""Problems grouped for people: one line per kind of problem, with its rows, not one per cell.

A delivery is judged cell by cell and ``ingest.delivery_problems`` keeps one row per problem
(the detail stays in the warehouse). A department fixing its file needs something else: last
year's workbook delivered as this year's has the same problem on every row, and 2 000
identical lines (or the same line ten times in a reminder) hide what to do. So the rejection
report (``rejection.write_report``) and the reminder e-mails (``campaign``) show the problems
through ``group_problems``:

- problems with the same (severity, sheet, column, reason) make one group, whatever their
  values: the reason already carries what the value changes in the meaning (« nom de mois
  inconnu « brumaire » », « doublon : même clé … que la ligne 2 », the Excel error shown), so
  two values with the same reason are two instances of one mistake. A group keeps its rows
  (rendered as French ranges, « 5 à 6 004 », « 3, 7, 12 à 15 »), its count, and up to
  ``MAX_EXAMPLES`` distinct values as examples (with how many distinct values there were);
- groups come in the order of their first row (the sheet's order); the problems about the
  whole file (no row: the file that seems to be last year's, communes missing, a header not
  found...) come first, in the order they were found;
- a group of one problem is exactly the line it would have been alone (its row as a plain
  number, its value as it is).

``group_problems`` is pure and takes ``validation.results.Problem`` objects or the dicts read
from ``ingest.delivery_problems`` (keys ``sheet``, ``row_number`` or ``row``, ``column_name``
or ``column``, ``value``, ``reason``, optionally ``severity``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MAX_EXAMPLES = 3  # distinct values shown for a group
MAX_RANGES = 20  # pieces of a row list shown (« 3, 7, 12 à 15 »), then « et N autres lignes »
THOUSANDS = "\u00a0"  # French thousands separator, no-break (« 6 004 » never split)
REPORT_HEADER = [
    "Fichier",
    "Feuille",
    "Lignes",
    "Colonne",
    "Valeur",
    "Motif du rejet",
    "Nombre de lignes",
]


def number_fr(n: int) -> str:
    """``6004`` -> ``6 004`` (no-break space)."""
    return f"{n:,}".replace(",", THOUSANDS)


def rows_fr(rows: Iterable[int], limit: int = MAX_RANGES) -> str:
    """Row numbers as French ranges: ``[3, 7, 12, 13, 14, 15]`` -> ``3, 7, 12 à 15``; two
    consecutive rows are listed (``3, 4``); beyond ``limit`` pieces, « et N autres lignes »."""
    ordered = sorted(set(rows))
    runs: list[tuple[int, int]] = []
    for row in ordered:
        if runs and row == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], row)
        else:
            runs.append((row, row))
    pieces: list[str] = []
    shown = 0
    for first, last in runs[:limit]:
        if first == last:
            pieces.append(number_fr(first))
        elif last == first + 1:
            pieces += [number_fr(first), number_fr(last)]
        else:
            pieces.append(f"{number_fr(first)} à {number_fr(last)}")
        shown += last - first + 1
    text = ", ".join(pieces)
    if len(runs) > limit:
        rest = len(ordered) - shown
        text += (
            f" et {number_fr(rest)} autre{'s' if rest > 1 else ''} ligne{'s' if rest > 1 else ''}"
        )
    return text


@dataclass(frozen=True)
class ProblemGroup:
    """Problems of one kind: same severity, sheet, column and reason."""

    sheet: str | None
    column: str | None
    reason: str
    rows: tuple[int, ...]  # distinct rows, ascending (empty: about the whole file)
    count: int  # problems in the group
    values: tuple[str, ...]  # up to MAX_EXAMPLES distinct non-empty values, first seen first
    distinct_values: int  # distinct non-empty values in the group
    severity: str = "error"

    @property
    def first_row(self) -> int | None:
        return self.rows[0] if self.rows else None

    @property
    def rows_fr(self) -> str:
        """``5 à 6 004``; one row as a plain number (``12``, as a single problem's line)."""
        if len(self.rows) == 1:
            return str(self.rows[0])
        return rows_fr(self.rows)

    @property
    def value_fr(self) -> str:
        """The value when there is one (as it is); otherwise the examples:
        ``« janvier 2024 », « février 2024 », « mars 2024 » et 9 autres valeurs``."""
        if self.distinct_values <= 1:
            return self.values[0] if self.values else ""
        text = ", ".join(f"« {value} »" for value in self.values)
        rest = self.distinct_values - len(self.values)
        if rest:
            text += f" et {number_fr(rest)} autre{'s' if rest > 1 else ''} valeur{'s' if rest > 1 else ''}"
        return text

    def line_fr(self) -> str:
        """One line for an e-mail: ``Feuille « Activité », lignes 2 à 1 801 (1 800 lignes),
        colonne « mois », valeurs « … » : date hors de l'année de la campagne 2025 (mois)``;
        a group of one reads as a single problem (``…, ligne 3, colonne « mois », valeur
        « 2025-13 » : …``)."""
        where = []
        if self.sheet:
            where.append(f"feuille « {self.sheet} »")
        if len(self.rows) == 1:
            where.append(f"ligne {self.rows[0]}")
        elif self.rows:
            where.append(f"lignes {self.rows_fr} ({number_fr(self.count)} lignes)")
        if self.column:
            where.append(f"colonne « {self.column} »")
        if self.distinct_values == 1:
            where.append(f"valeur « {self.values[0]} »")
        elif self.distinct_values > 1:
            where.append(f"valeurs {self.value_fr}")
        prefix = ", ".join(where)
        prefix = prefix[:1].upper() + prefix[1:]
        return f"{prefix} : {self.reason}" if prefix else self.reason

    def report_row(self, file: str) -> list[str]:
        """The group's line of a rejection report (``REPORT_HEADER``)."""
        return [
            file,
            self.sheet or "",
            self.rows_fr,
            self.column or "",
            self.value_fr,
            self.reason,
            str(self.count) if self.rows or self.count > 1 else "",
        ]


def _fields(problem: object) -> tuple[str, str | None, int | None, str | None, str, str]:
    """(severity, sheet, row, column, value, reason) of a Problem or of a dict."""
    if isinstance(problem, Mapping):
        row = problem.get("row_number", problem.get("row"))
        column = problem.get("column_name", problem.get("column"))
        get = problem.get
    else:
        row = getattr(problem, "row", None)
        column = getattr(problem, "column", None)

        def get(name, default=None):
            return getattr(problem, name, default)

    value = get("value")
    return (
        get("severity") or "error",
        get("sheet") or None,
        int(row) if row is not None else None,
        column or None,
        "" if value is None else str(value),
        str(get("reason") or ""),
    )


def group_problems(problems: Iterable[object]) -> list[ProblemGroup]:
    """Problems (``validation.results.Problem`` or dicts) grouped by (severity, sheet, column,
    reason), the problems without a row first, then by first row (see the module docstring)."""
    groups: dict[tuple, dict] = {}
    for index, problem in enumerate(problems):
        severity, sheet, row, column, value, reason = _fields(problem)
        group = groups.get((severity, sheet, column, reason))
        if group is None:
            group = groups[(severity, sheet, column, reason)] = {
                "index": index,
                "rows": set(),
                "count": 0,
                "values": {},  # dict: distinct values in the order first seen
            }
        group["count"] += 1
        if row is not None:
            group["rows"].add(row)
        if value:
            group["values"].setdefault(value, None)
    out = sorted(
        (
            (
                bool(group["rows"]),
                min(group["rows"], default=0),
                group["index"],
                ProblemGroup(
                    sheet=sheet,
                    column=column,
                    reason=reason,
                    rows=tuple(sorted(group["rows"])),
                    count=group["count"],
                    values=tuple(list(group["values"])[:MAX_EXAMPLES]),
                    distinct_values=len(group["values"]),
                    severity=severity,
                ),
            )
            for (severity, sheet, column, reason), group in groups.items()
        ),
        key=lambda item: item[:3],
    )
    return [item[3] for item in out]


__all__ = [
    "MAX_EXAMPLES",
    "REPORT_HEADER",
    "ProblemGroup",
    "group_problems",
    "number_fr",
    "rows_fr",
]
