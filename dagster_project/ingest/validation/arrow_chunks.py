"""The Arrow path of a chunk: its columns judged whole, each distinct value once.

A regular ``.csv`` is offered as Arrow text columns (``readers.csv_file._csv_arrow``), a long
clean worksheet as the typed columns fastexcel read (``readers.xlsx_file._fastexcel_sheet``).
``_ArrowChunks.validate_arrow_chunk`` accepts a chunk in Arrow only when every one of its
rows is a data row that passes every cell rule and every rule between its cells; otherwise
it answers ``_FALL_BACK`` and the rules run cell by cell (``chunks._SheetState``), which
locate and explain every problem. ``_python_values`` gives the distinct values of a typed
column as python-calamine gives them, so that both paths judge the same values.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contracts.model import Column
from dagster_project.ingest.normalize import EXCEL_ERRORS, INVISIBLE_CHARACTERS
from dagster_project.ingest.validation.columns import _EMPTY, _ColumnSpec, _Failed
from dagster_project.ingest.validation.rows import _row_rules

_FALL_BACK = object()  # validate_arrow_chunk: look at this chunk cell by cell
_EXCEL_ERRORS = pa.array(sorted(EXCEL_ERRORS))


# the characters str.strip() removes: Unicode's White_Space is not quite Python's (U+001C..U+001F
# are spaces for Python); tests/unit/ingest/test_csv_arrow.py checks this against every code point
PYTHON_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# normalize.INVISIBLE_CHARACTERS for Arrow's regular expressions (RE2: \x{200b})
_INVISIBLE_RE2 = (
    "[" + "".join(c if c == "-" else f"\\x{{{ord(c):x}}}" for c in INVISIBLE_CHARACTERS) + "]"
)


def _arrow_has_invisible(text: pa.Array) -> bool:
    """Whether a string array holds an invisible character (``normalize.clean_text`` removes
    them). Its characters are looked at as one string (a pass over its buffer, not a search
    per value): printable ASCII (an identifier, a code) has none, otherwise it is searched."""
    if not len(text):
        return False
    whole = _one_string(text)
    if whole is None:
        return pc.any(pc.match_substring_regex(text, _INVISIBLE_RE2)).as_py() or False
    if pc.all(pc.ascii_is_printable(whole)).as_py():
        return False
    # (no character spans two values: the values' characters one after the other are exact)
    return pc.any(pc.match_substring_regex(whole, _INVISIBLE_RE2)).as_py() or False


def _one_string(text: pa.Array) -> pa.Array | None:
    """The characters of a string array as one string (its data buffer between its first and
    last offsets), or None for another layout."""
    if text.type not in (pa.string(), pa.large_string()) or text.buffers()[2] is None:
        return None
    offsets = pa.Array.from_buffers(
        pa.int32() if text.type == pa.string() else pa.int64(),
        len(text) + 1,
        [None, text.buffers()[1]],
        offset=text.offset,
    )
    begin, end = offsets[0].as_py(), offsets[-1].as_py()
    return pa.Array.from_buffers(
        pa.large_string(),
        1,
        [
            None,
            pa.array([0, end - begin], pa.int64()).buffers()[1],
            text.buffers()[2].slice(begin, end - begin),
        ],
    )


def _strip(text: pa.Array) -> pa.Array:
    """``str.strip()`` of every value, in Arrow."""
    return pc.utf8_trim(text, characters=PYTHON_SPACES)


def _as_arrow(values: list[object] | pa.Array, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    return pa.array(values, type=kind)


_FIRST_DAY = dt.datetime(1900, 3, 1)  # before: times of day, and Excel's 29 February 1900
_MIDNIGHT = dt.time(0, 0)


def _python_values(values: pa.Array, column: Column) -> list[object] | None:
    """The distinct values of a column as the cell rules receive them: a .csv's texts as they
    are; a column typed by fastexcel as python-calamine gives them to Python, or None when
    that is not certain. Both read the same calamine cells: a number is a float
    (an integer if calamine read one), a boolean a bool, a text a str. A date cell is a
    timestamp for fastexcel; python-calamine gives a time below 1 (refused here), a date for
    a whole serial number, a datetime otherwise (both rounded to the millisecond, measured).
    A whole serial and one a hair off midnight are the same timestamp: a date here, maybe a
    datetime at 00:00 for calamine, which a date, month or text column reads the same
    (``parse_date``, ``parse_month``, ``display``); any other column fails on a date either
    way. Other types (durations...) are left to calamine."""
    kind = values.type
    if pa.types.is_timestamp(kind):
        if column.type not in ("date", "month", "text"):
            return None
        if len(values) and pc.min(values).as_py() < _FIRST_DAY:
            return None
        return [v.date() if v.time() == _MIDNIGHT else v for v in values.to_pylist()]
    if (
        pa.types.is_floating(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
    ):
        return values.to_pylist()
    return None


class _ArrowChunks:
    """The Arrow path of ``chunks._SheetState`` (which sets the attributes it reads): a
    chunk read into Arrow columns, accepted whole or handed back to the cell rules."""

    def validate_arrow_chunk(self, start: int, chunk: pa.RecordBatch) -> pa.RecordBatch | object:
        """The rows of ``chunk`` (text columns of a .csv, or a worksheet's columns as
        fastexcel typed them; the first is row ``start``) when every one of them is a data row
        that passes every cell rule and every rule between its cells, judged on each column's
        distinct values; ``_FALL_BACK`` otherwise (a .csv's chunk then goes through
        ``validate_chunk``, a worksheet's whole delivery through python-calamine's values:
        both locate and explain every problem)."""
        n = chunk.num_rows
        if not n:
            return None
        if (
            self.sheet.hidden_rows
            or self.error_rows
            or self.covered
            or self.uncached
            or self.sheet.formatted
        ):
            return _FALL_BACK  # cells only the cell-by-cell rules explain
        if self.fields is not None and chunk.num_columns != self.fields:
            return _FALL_BACK  # lines of a .csv with another number of fields than its header
        first = chunk.column(0)
        if first.null_count:
            return _FALL_BACK  # an empty first cell
        if pa.types.is_string(first.type):
            first = _strip(first)
            if (
                pc.any(pc.equal(pc.utf8_length(first), 0)).as_py()
                or pc.any(pc.starts_with(pc.utf8_lower(first), "total")).as_py()
                or _arrow_has_invisible(first)
            ):
                return _FALL_BACK  # a blank first cell, a control total, maybe one of them
        elif pa.types.is_floating(first.type):
            if pc.any(pc.is_nan(first)).as_py():
                return _FALL_BACK
        elif not (
            pa.types.is_integer(first.type)
            or pa.types.is_boolean(first.type)
            or pa.types.is_timestamp(first.type)
        ):
            return _FALL_BACK  # a first cell of a type the rows' rules do not expect here
        arrays = {}
        for spec in self.specs:
            if spec.alternate is not None or spec.index >= chunk.num_columns:
                return _FALL_BACK
            values = self._arrow_column(spec, chunk.column(spec.index))
            if values is None:
                return _FALL_BACK
            arrays[spec.column.name] = values
        if self.has_row_rules and self._row_rules_fail(start, n, arrays):
            return _FALL_BACK
        for spec in self.numeric:  # running sums, for a control total further down
            self.sums[spec.column.name] += pc.sum(arrays[spec.column.name]).as_py() or 0
        columns = []
        for field_ in list(self.schema)[:-2]:
            values = arrays.get(field_.name)
            if values is None:  # a column the file does not have: its default
                values = [self.contract.column(field_.name).default] * n
            columns.append(_as_arrow(values, field_.type))
        columns.append(pa.array([self.sheet.name] * n, type=pa.string()))
        columns.append(pa.array(range(start + 1, start + n + 1), type=pa.int64()))
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _row_rules_fail(self, start: int, n: int, arrays: dict[str, pa.Array]) -> bool:
        """Whether a row of the chunk breaks a rule between its cells (``_row_rules``, run on
        the columns the rules read, as ``validate_chunk`` runs it)."""
        contract = self.contract
        values = {
            name: arrays[name].to_pylist()
            if name in arrays
            else [contract.column(name).default] * n
            for name in self.row_rule_names
        }
        failed: list[tuple] = []
        for k in range(n):
            record = {name: column[k] for name, column in values.items()}
            _row_rules(
                contract, record, start + k + 1, self.label, self.ctx, lambda *a: failed.append(a)
            )
            if failed:
                return True
        return False

    def _arrow_column(self, spec: _ColumnSpec, cells: pa.Array) -> pa.Array | None:
        """One column's parsed values, each distinct cell judged once; None if a cell fails.
        ``cells``: a .csv's text column, or a worksheet's column as fastexcel typed it."""
        column = spec.column
        kind = self.schema.field(column.name).type
        if pa.types.is_string(cells.type):
            if cells.null_count:
                cells = cells.fill_null("")  # an empty cell of a worksheet: calamine's ""
            if column.type == "text" and column.allowed_lookup is None:
                # what _parse_cell makes of a text cell: the text without surrounding spaces,
                # if it is neither blank nor an Excel error value (else: judged below)
                stripped = _strip(cells)
                if not (
                    pc.any(pc.equal(pc.utf8_length(stripped), 0)).as_py()
                    or pc.any(pc.is_in(pc.utf8_lower(stripped), _EXCEL_ERRORS)).as_py()
                    or _arrow_has_invisible(stripped)  # removed by the cell rules: judged below
                ):
                    return stripped
        encoded = cells.dictionary_encode()
        raws = _python_values(encoded.dictionary, column)
        if raws is None:
            return None
        indices = encoded.indices
        if indices.null_count:  # empty cells of a typed column: calamine's ""
            raws.append("")
            indices = indices.fill_null(len(raws) - 1)
        verdicts = spec.verdicts(raws, self.ctx)
        if isinstance(verdicts, pa.Array):  # plain numbers within their bounds
            return _as_arrow(verdicts, kind).take(indices)
        if spec.has_failed:
            fill = column.default is not None or not column.required
            for k, verdict in enumerate(verdicts):
                if verdict is _EMPTY and fill:
                    verdicts[k] = column.default
                elif verdict.__class__ is _Failed:
                    return None
        return pa.array(verdicts, type=kind).take(indices)
