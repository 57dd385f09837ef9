"""A column's cells judged together, each distinct value once.

A register repeats its communes, months, parameters and units: ``_ColumnSpec.verdicts``
parses each distinct value of a column once, through a memo of verdicts (the parsed value,
or a ``_Failed`` with its reason; ``_EMPTY`` for an empty cell, whose meaning depends on its
position and its column). A numeric column of plain numbers within their bounds is checked
at once in Arrow, and a free text column of plain texts is taken as it is, without the memo.
The years of the dates bound to the campaign year are kept (``_ColumnSpec.years``), to tell
a delivery of another year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contracts.model import TYPE_LABELS_FR, Column
from dagster_project.ingest.normalize import (
    EXCEL_ERRORS,
    INFINITE_REASON,
    NAN_REASON,
    CellError,
    clean_text,
    excel_error,
    has_invisible,
    is_empty,
)
from dagster_project.ingest.validation.cells import MAX_INTEGER, _OutsideCampaign, _parse_cell
from dagster_project.ingest.validation.context import IngestContext

_MEMO_LIMIT = 500_000  # distinct values remembered per column
_PLAIN_NUMBER = r"^[+-]?[0-9]+([.,][0-9]+)?$"  # a subset of what parse_number reads


class _Failed:
    """A memoised verdict on a cell value that is not a valid value of its column."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_EMPTY = _Failed("")  # an empty cell: what it means depends on its position and the column


@dataclass
class _ColumnSpec:
    column: Column
    order: int  # position in the contract (problems of a row come in this order)
    index: int  # 0-based column of the sheet
    header_text: str
    alternate: tuple[int, str] | None  # the second header filling the column (code and name)
    # parsed value or _Failed, by raw value (booleans apart: True == 1 for a dict)
    memo: dict = field(default_factory=dict)
    alternate_memo: dict = field(default_factory=dict)
    has_failed: bool = False  # whether the memo holds a _Failed verdict
    # a date or month column bound to the campaign year: the years its values are in (each
    # distinct value is judged, on every path: ``_other_year``)
    years: set[int] = field(default_factory=set)

    def verdicts(self, raws: list[object], ctx: IngestContext) -> list[object] | pa.Array:
        """The parsed value or ``_Failed`` of each raw value (each distinct value parsed once);
        an Arrow array when the column is made of plain numbers within their bounds."""
        fast = self._plain_numbers(raws)
        if fast is not None:
            return fast
        texts = self._plain_texts(raws)
        if texts is not None:
            return texts
        memo = self.memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        # True == 1 and False == 0 for a dict: with 0 or 1 in the memo, a boolean would get
        # their verdict; booleans are kept under (bool, value)
        collide = 1 in memo or 0 in memo
        values = list(map(memo.get, raws))  # None where the value is new
        if collide and bool in set(map(type, raws)):
            for k, raw in enumerate(raws):
                if raw.__class__ is bool:
                    values[k] = None
        if None in values:
            get = memo.get
            for k in [k for k, value in enumerate(values) if value is None]:
                raw = raws[k]
                hit = get(raw) if raw.__class__ is not bool else None  # seen in this chunk
                if hit is None:
                    hit = self.verdict(raw, ctx, memo, self.header_text)
                values[k] = hit
        return values

    def _plain_texts(self, raws: list[object]) -> list[str] | None:
        """A free text column (no list of allowed values) of text cells none of which is blank
        or an Excel error value: each text without its surrounding spaces, which is what
        ``_judge`` makes of each (an identifier column has as many distinct values as rows:
        judging them one by one through the memo was most of a register's validation).
        None: go through the memo and the cell rules."""
        if self.column.type != "text" or self.column.allowed_lookup is not None or not raws:
            return None
        if set(map(type, raws)) != {str}:
            return None
        texts = list(map(str.strip, raws))
        if "" in texts or any(text[:1] == "#" and text.lower() in EXCEL_ERRORS for text in texts):
            return None
        if _has_invisible(texts):  # removed by the cell rules (clean_text)
            return None
        return texts

    def _plain_numbers(self, raws: list[object]) -> pa.Array | None:
        """A numeric column of numeric cells (no text, no empty cell) that passes its bounds as
        a whole: its values as an Arrow array, checked at once. None: go through the cell
        rules (which then say which cell breaks which rule)."""
        column = self.column
        if column.type not in ("number", "integer") or column.step or column.allowed or not raws:
            return None
        types = set(map(type, raws))
        if types <= {float, int}:
            exact = column.type == "integer" and types == {int}
            try:
                array = pa.array(raws, pa.int64() if exact else pa.float64())
            except (OverflowError, pa.ArrowException):  # beyond 64 bits: the cell rules say so
                return None
        elif types == {str}:  # a .csv: plain decimal text only (4548,5 or 4548.5)
            text = pa.array(raws, pa.string())
            if not pc.all(pc.match_substring_regex(text, _PLAIN_NUMBER)).as_py():
                return None
            try:
                array = pc.cast(pc.replace_substring(text, ",", "."), pa.float64())
            except pa.ArrowException:
                return None
        else:
            return None
        low, high = pc.min_max(array).values()
        low, high = low.as_py(), high.as_py()
        if low is None or not (math.isfinite(low) and math.isfinite(high)):
            return None  # NaN (an empty cell) or an infinity
        if array.type == pa.float64() and pc.any(pc.is_nan(array)).as_py():
            return None
        if column.lower_bound is not None and low < column.lower_bound:
            return None
        if column.min_exclusive is not None and low <= column.min_exclusive:
            return None
        if column.max is not None and high > column.max:
            return None
        if column.max_exclusive is not None and high >= column.max_exclusive:
            return None
        if column.type == "integer" and max(-low, high) > MAX_INTEGER:
            return None  # too large for an integer column: the cell rules say which cell
        if column.type == "integer" and array.type == pa.float64():
            if not pc.all(pc.equal(array, pc.floor(array))).as_py():
                return None
            try:
                return array.cast(pa.int64())
            except pa.ArrowException:  # beyond 64 bits: the cell rules say so
                return None
        return array

    def verdict(self, raw: object, ctx: IngestContext, memo: dict, header_text: str) -> object:
        """The parsed value of ``raw``, or a ``_Failed`` (each distinct value parsed once)."""
        key = (bool, raw) if raw.__class__ is bool else raw
        hit = memo.get(key)
        if hit is None:
            hit = self._judge(raw, ctx, header_text)
            if hit.__class__ is _Failed:
                self.has_failed = True
            memo[key] = hit
        return hit

    def _judge(self, raw: object, ctx: IngestContext, header_text: str) -> object:
        if raw.__class__ is str:  # what a person reads: no invisible characters, no spaces
            raw = clean_text(raw)
        elif raw.__class__ is float and not math.isfinite(raw):  # not empty: a failed computation
            return _Failed(NAN_REASON if math.isnan(raw) else INFINITE_REASON)
        error = excel_error(raw)
        if error:
            return _Failed(f"valeur d'erreur Excel {error}")
        if is_empty(raw):
            return _EMPTY
        column = self.column
        try:
            value = _parse_cell(column, raw, ctx, header_text)
            if column.effective_date_range == "campaign_year":
                self.years.add(value.year)
            return value
        except CellError as exc:
            if exc.__class__ is _OutsideCampaign:
                self.years.add(exc.year)
            if exc.complete:
                return _Failed(exc.reason)
            return _Failed(f"{exc.reason} ({TYPE_LABELS_FR[column.type]})")


def _has_invisible(texts: list[str]) -> bool:
    """Whether any of ``texts`` holds an invisible character (one search over all of them)."""
    joined = "".join(texts)  # (invisible characters are not printable: str.isprintable)
    return not joined.isprintable() and has_invisible(joined)
