"""What every reader gives, and the limits every reader keeps to.

A delivered file is read into ``Sheet`` objects (rows of cell values, plus what the
workbook's XML says about them: error cells, hidden rows and columns, merged cells, number
formats...), or it cannot be read at all: ``ReadError``, with a French reason. The limits
are documented in docs/ingestion.md; each can be raised by ``KPI_<NAME>`` for large
deployments. Cell references (``B12``) are written as Excel shows them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


def _limit(name: str, default: int) -> int:
    """A documented limit (docs/ingestion.md), raised by KPI_<NAME> for large deployments."""
    return int(os.environ.get(f"KPI_{name}", default))


MAX_FILE_BYTES = _limit("MAX_FILE_BYTES", 50 * 1024 * 1024)  # a delivered file, as received
MAX_UNCOMPRESSED_BYTES = _limit("MAX_UNCOMPRESSED_BYTES", 256 * 1024 * 1024)  # parts unzipped
MAX_COMPRESSION_RATIO = 200  # uncompressed / compressed, per part of more than 1 MiB
RATIO_CHECK_FROM_BYTES = 1024 * 1024
MAX_PARTS = 2000  # entries of the zip container
MAX_ROWS = _limit("MAX_ROWS", 200_000)  # rows of one sheet (xlsx) or of the file (csv)
MAX_CELLS = _limit("MAX_CELLS", 5_000_000)  # rows x columns of the used range of one sheet

EMPTY_FILE = "le fichier est vide (0 octet)"


class ReadError(Exception):
    """The file cannot be read at all; ``reason`` is French."""

    def __init__(self, reason: str, sheet: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.sheet = sheet


@dataclass
class Sheet:
    name: str
    rows: list[list[object]]
    # (0-based row, 0-based column) -> Excel error text, for cells calamine returned empty
    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    hidden: bool = False
    very_hidden: bool = False  # hidden so that Excel's « Afficher » does not even list it
    # among ``hidden_rows``, those hidden by a height of (nearly) zero rather than « Masquer »
    zero_height_rows: set[int] = field(default_factory=set)
    # hidden columns, 0-based inclusive ranges (first, last), those of (nearly) zero width too
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)
    # the range of the sheet's automatic filter (0-based, as ``merged``), when it filters rows
    filter_range: tuple[int, int, int, int] | None = None
    # a .csv: its separator (every line below the header has as many fields as the header)
    delimiter: str | None = None
    # (0-based row, 0-based column) of numeric cells whose number format shows something else
    # than the number they hold: a percentage, a unit, a value divided by 1 000
    formatted: dict[tuple[int, int], NumberFormat] = field(default_factory=dict)
    # merged ranges, 0-based and inclusive: (first row, first column, last row, last column)
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (0-based row, 0-based column) of formulas saved without a computed value
    uncached_formulas: set[tuple[int, int]] = field(default_factory=set)
    # rows after ``rows``, read on demand (a large .csv is never held whole as Python lists);
    # iterating it may raise ReadError (a malformed line, too many rows)
    tail: Iterator[list[object]] | None = None
    # a .csv that Arrow can read exactly as ``csv.reader`` does (no quote character, the same
    # number of fields on every line): ``arrow_rows(start)`` gives the rows from ``start``
    # (0-based) on as an Arrow table of text columns, None when the file is not that regular
    arrow_rows: Callable[[int], object] | None = None
    # a large worksheet read into typed Arrow columns by fastexcel (``_ArrowSheet``): ``rows``
    # then ends with its header row, ``arrow_rows`` gives the rows below, and ``reread()``
    # gives the sheet as calamine's Python values, for whatever the Arrow path does not judge
    reread: Callable[[], Sheet] | None = None
    # such a sheet's rows above the header (left empty in ``rows``): how many cells each fills
    head_filled: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class NumberFormat:
    """A cell's number format that shows more than the number it holds."""

    code: str  # as written in the workbook (« 0% », « #,##0 "kg" »)
    percent: bool = False  # shows the number × 100 followed by %
    unit: str = ""  # the text it shows with the number (« kg », « € »)
    scaled: bool = False  # shows the number divided by 1 000 (a comma after the digits)
    # whether it shows no digit of a positive, a negative, a zero value: nothing (« ;;; »),
    # or only a text (« "n.c." »)
    hides: tuple[bool, bool, bool] = (False, False, False)


def column_letters(index: int) -> str:
    """0-based column index -> Excel letters (0 -> A, 27 -> AB)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_ref(row: int, column: int) -> str:
    """0-based (row, column) -> ``B12``."""
    return f"{column_letters(column)}{row + 1}"


def _thousands(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} Mio" if n >= 2**20 else f"{n / 1024:.0f} Kio"
