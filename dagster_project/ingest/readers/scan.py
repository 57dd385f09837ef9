"""Step 2 of reading a workbook: one streaming pass over every part of the archive.

Every part is decompressed at most ``_CHUNK`` bytes at a time (``readers.archive._inflate``):
a part that inflates beyond its declared size (a zip bomb with forged headers) or beyond the
limits is rejected as soon as the excess is seen; a sheet whose ``<dimension>`` or whose
counted rows exceed the limits is rejected at that point, without decompressing the rest.
The same pass records what calamine does not report (``_SheetScan``): Excel error cells
(calamine turns ``#DIV/0!`` into an empty string), formulas without a cached value, hidden
rows and columns, automatic filters, merged cells, numeric cells shown through a notable
number format (``readers.number_formats``), and what decides whether a long worksheet can be
read into Arrow columns (its first cell, the filled cells of its first rows).
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.ingest.readers.archive import MACRO_WORKBOOK, _inflate, _sheet_parts
from dagster_project.ingest.readers.number_formats import _number_formats
from dagster_project.ingest.readers.sheet import (
    MAX_CELLS,
    MAX_ROWS,
    MAX_UNCOMPRESSED_BYTES,
    NumberFormat,
    ReadError,
    _thousands,
)

_OVERLAP = 4096  # bytes inflated beyond the scanned region, so that no tag is split
_LOOKBACK = 16 * 1024  # bytes kept before it, to find the cell of a formula


@dataclass
class _SheetScan:
    """What the streaming pass learns about one sheet part."""

    errors: dict[tuple[int, int], str] = field(default_factory=dict)
    hidden_rows: set[int] = field(default_factory=set)
    zero_height_rows: set[int] = field(default_factory=set)
    hidden_columns: list[tuple[int, int]] = field(default_factory=list)
    filter_range: tuple[int, int, int, int] | None = None
    merged: list[tuple[int, int, int, int]] = field(default_factory=list)
    uncached_formulas: set[tuple[int, int]] = field(default_factory=set)
    row_tags: int = 0
    last_row: int = 0  # highest row number (1-based) seen in a row tag
    width: int = 0  # highest column (1-based) seen, counted from column AA on
    dimension: str | None = None
    prefixed: bool = False  # elements written with a namespace prefix (<x:row>)
    first_cell: bytes | None = None  # reference of the first cell tag, when it holds a value
    first_seen: bool = False  # whether the first cell tag was found
    typed_dates: bool = False  # cells of type t="d" (ISO dates, which readers map differently)
    # the workbook's notable number formats, by style index (``_number_formats``), and the
    # numeric cells of this sheet shown through one of them
    styles: dict[int, NumberFormat] = field(default_factory=dict)
    formatted: dict[tuple[int, int], NumberFormat] = field(default_factory=dict)
    style_cells: re.Pattern | None = None  # finds the style attribute of those styles
    # filled cells (at most: a value or an inline text counts) of each of the first HEAD_ROWS
    # rows, by 0-based row; None when they could not be counted
    head_filled: dict[int, int] | None = field(default_factory=dict)
    head_done: bool = False


_CELL = re.compile(rb"<(?:\w+:)?c\s([^>]*?)(/?)>")
_ATTR = re.compile(rb'(\w+)="([^"]*)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>([^<]*)</(?:\w+:)?v>")
_ROW = re.compile(rb"<(?:\w+:)?row(?=[\s/>])([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="([^"]+)"')
_PREFIXED = re.compile(rb"<\w+:worksheet\b")
_MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+\d+)(?::([A-Z]+\d+))?"')
_FILTER = re.compile(rb'<(?:\w+:)?autoFilter\s+ref="\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?"')
_COLUMN = re.compile(rb"<(?:\w+:)?col\s([^>]*)>")
# a row height under 3 points: the row is hidden as surely as by « Masquer » (« 0 », « 2.5 »)
# (after the literal, so that the search looks for it fast; not customHeight="1")
_LOW_HEIGHT = re.compile(rb'ht="(?<!\wht=")0*(?:[0-2](?:\.\d*)?|\.\d*)"')
MIN_ROW_HEIGHT = 3.0  # points: a lower row shows nothing a person can read
MIN_COLUMN_WIDTH = 1.0  # characters: a narrower column shows nothing a person can read
_WIDE_REF = re.compile(rb' r="([A-Z]{2,3})\d')
# a formula element followed by the end of its cell, or by an empty value: no cached result
# (an empty value is a cached empty text only in a cell of type t="str")
_UNCACHED = re.compile(
    rb"(?:</(?:\w+:)?f>|<(?:\w+:)?f\b[^>]*/>)\s*"
    rb"(<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)
_CELL_START = re.compile(rb"<(?:\w+:)?c\s[^>]*>")
_FILLED = re.compile(rb"<(?:\w+:)?(?:v|t)(?:\s[^>]*)?>[^<]")  # a value, or an inline text
_CELL_END = re.compile(rb"</(?:\w+:)?c>")
_ROW_END = re.compile(rb"</(?:\w+:)?row>")
HEAD_ROWS = 11  # rows where the header is looked for (validation.header.MAX_HEADER_SEARCH_ROWS)


def _letters_index(letters: bytes) -> int:
    col = 0
    for ch in letters:
        col = col * 26 + (ch - 64)
    return col - 1


def _cell_index(ref: bytes) -> tuple[int, int]:
    m = re.match(rb"([A-Z]+)(\d+)", ref)
    if not m:
        raise ValueError(ref)
    return int(m[2]) - 1, _letters_index(m[1])


def _too_big(name: str, rows: int, cells: int | None, what: str) -> ReadError:
    if rows > MAX_ROWS:
        reason = (
            f"feuille « {name} » trop grande : {what} {_thousands(rows)} lignes (limite "
            f"{_thousands(MAX_ROWS)} lignes par feuille)"
        )
    else:
        reason = (
            f"feuille « {name} » trop grande : {what} {_thousands(cells or 0)} cellules "
            f"(lignes × colonnes, limite {_thousands(MAX_CELLS)})"
        )
    return ReadError(
        reason + " ; s'il s'agit de lignes ou de colonnes vides mises en forme, supprimez-les, "
        "sinon découpez le fichier",
        sheet=name,
    )


def _check_dimension(name: str, ref: str) -> None:
    m = re.fullmatch(r"([A-Z]+)(\d+)(?::([A-Z]+)(\d+))?", ref)
    if not m:
        return
    last_col = m[3] or m[1]
    rows = int(m[4] or m[2])
    cols = _letters_index(last_col.encode()) + 1
    if rows > MAX_ROWS or rows * cols > MAX_CELLS:
        raise _too_big(name, rows, rows * cols, f"zone utilisée {ref}, soit")


def _float(text: bytes | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _scan_region(buf: bytes, start: int, end: int, scan: _SheetScan) -> None:
    """Record what starts in ``buf[start:end]`` (``buf`` goes on beyond ``end``, and keeps
    some bytes before ``start`` to look back at the cell of a formula)."""
    region = buf[start:end]
    # a search for one byte is a memchr: a cell region without that letter (the usual sheet
    # of numbers and shared strings has no "e", "f", "g" or "h") skips the longer searches
    # counting a literal is ten times faster than a regular expression (an extra
    # <rowBreaks> at the end of the sheet counts one row too many: harmless)
    row_tags = region.count(b"<row") + (region.count(b":row ") if scan.prefixed else 0)
    if row_tags:
        scan.row_tags += row_tags
        last = max(region.rfind(b"<row"), region.rfind(b":row ") if scan.prefixed else -1)
        tag = _ROW.match(region, region.rfind(b"<", 0, last + 1)) if last >= 0 else None
        number = _ROW_NUMBER.search(tag[1]) if tag else None
        if number:
            scan.last_row = max(scan.last_row, int(number[1]))
        low = _LOW_HEIGHT.search(region) is not None
        if low or (b"h" in region and (b'hidden="1"' in region or b'hidden="true"' in region)):
            for attrs in _ROW.findall(region):
                values = dict(_ATTR.findall(attrs))
                if b"r" not in values:
                    continue
                if values.get(b"hidden") in (b"1", b"true"):
                    scan.hidden_rows.add(int(values[b"r"]) - 1)
                elif low and _float(values.get(b"ht"), MIN_ROW_HEIGHT) < MIN_ROW_HEIGHT:
                    scan.hidden_rows.add(int(values[b"r"]) - 1)
                    scan.zero_height_rows.add(int(values[b"r"]) - 1)
    # <cols> comes before the cells (the schema's order); an <autoFilter> after them
    if not scan.first_seen and (b"<col " in region or (scan.prefixed and b":col " in region)):
        for m in _COLUMN.finditer(region):
            values = dict(_ATTR.findall(m[1]))
            hidden = values.get(b"hidden") in (b"1", b"true")
            if hidden or _float(values.get(b"width"), MIN_COLUMN_WIDTH) < MIN_COLUMN_WIDTH:
                try:
                    first, last = int(values[b"min"]) - 1, int(values[b"max"]) - 1
                except (KeyError, ValueError):
                    continue
                scan.hidden_columns.append((first, min(last, 16383)))
    if b"u" in region and b"autoFilter" in region and b"filterColumn" in region:
        for m in _FILTER.finditer(region):
            scan.filter_range = (
                int(m[2]) - 1,
                _letters_index(m[1]),
                int(m[4] or m[2]) - 1,
                _letters_index(m[3] or m[1]),
            )
    if not scan.first_seen and (first := _CELL.search(buf, start, end)) is not None:
        scan.first_seen = True
        close = _CELL_END.search(buf, first.end()) if first[2] != b"/" else None
        if close is not None and _FILLED.search(buf, first.end(), close.start()):
            scan.first_cell = dict(_ATTR.findall(first[1])).get(b"r")
    if not scan.typed_dates and b't="d"' in region:
        scan.typed_dates = True
    if scan.style_cells is not None:  # numeric cells of a notable number format
        for hit in scan.style_cells.finditer(buf, start, end):
            m = _CELL.match(buf, buf.rfind(b"<", 0, hit.start()))
            if m is None or m[2] == b"/":
                continue
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"t", b"n") == b"n" and b"r" in attrs:
                scan.formatted[_cell_index(attrs[b"r"])] = scan.styles[int(hit[1])]
    if not scan.head_done:
        _scan_head(buf, start, end, scan)
    for letters in set(_WIDE_REF.findall(region)):
        scan.width = max(scan.width, _letters_index(letters) + 1)
    if b"e" in region and b't="e"' in region:
        for m in _CELL.finditer(buf, start, end):
            attrs = dict(_ATTR.findall(m[1]))
            if attrs.get(b"t") != b"e" or b"r" not in attrs or m[2] == b"/":
                continue
            value = _VALUE.search(buf, m.end(), m.end() + 400)
            text = value[1].decode("utf-8", "replace") if value else "#ERREUR"
            scan.errors[_cell_index(attrs[b"r"])] = text
    if b"f" in region and (b"<f" in region or (scan.prefixed and b":f" in region)):
        for m in _UNCACHED.finditer(buf, start, min(len(buf), end + _OVERLAP)):
            if m.start() >= end:
                break
            low = max(0, m.start() - _LOOKBACK)
            at = max(buf.rfind(b"<c ", low, m.start()), buf.rfind(b":c ", low, m.start()))
            cell = _CELL_START.match(buf, buf.rfind(b"<", low, at + 1)) if at >= 0 else None
            attrs = dict(_ATTR.findall(cell[0])) if cell else {}
            if m[1] and attrs.get(b"t") == b"str":
                continue  # a formula whose result is an empty text
            if b"r" in attrs:
                scan.uncached_formulas.add(_cell_index(attrs[b"r"]))
    if b"g" in region and b"mergeCell" in region:
        for m in _MERGE.finditer(region):
            first = _cell_index(m[1])
            last = _cell_index(m[2] or m[1])
            scan.merged.append((first[0], first[1], last[0], last[1]))


def _scan_head(buf: bytes, start: int, end: int, scan: _SheetScan) -> None:
    """Count the filled cells of the first ``HEAD_ROWS`` rows (``_SheetScan.head_filled``)."""
    for row in _ROW.finditer(buf, start, end):
        number = _ROW_NUMBER.search(row[1])
        index = int(number[1]) - 1 if number else None
        if index is None or index >= HEAD_ROWS:
            scan.head_done = True
            if index is None:  # a row without its number: rows cannot be told apart
                scan.head_filled = None
            return
        if row[1].endswith(b"/"):  # <row r="2"/>: no cell
            continue
        close = _ROW_END.search(buf, row.end())
        if close is None or scan.head_filled is None:
            scan.head_done, scan.head_filled = True, None
            return
        scan.head_filled[index] = len(_FILLED.findall(buf, row.end(), close.start()))


def _scan_sheet(chunks, name: str, styles: dict[int, NumberFormat] | None = None) -> _SheetScan:
    scan = _SheetScan(styles=styles or {})
    if scan.styles:  # the style attribute of a cell, for the notable styles only
        ids = b"|".join(b"%d" % style for style in sorted(scan.styles))
        scan.style_cells = re.compile(rb'\ss="(%s)"' % ids)
    buf = b""
    start = 0  # buf[:start] was scanned already (kept to look back)
    for chunk in chunks:
        buf += chunk
        if scan.dimension is None:  # declared before <sheetData>, in the first bytes
            scan.prefixed = _PREFIXED.search(buf, 0, 64 * 1024) is not None
            found = _DIMENSION.search(buf, 0, 64 * 1024)
            if found:
                scan.dimension = found[1].decode("ascii", "replace")
                _check_dimension(name, scan.dimension)
            elif b"sheetData" in buf or len(buf) >= 64 * 1024:
                scan.dimension = ""
        if len(buf) - start <= 2 * _OVERLAP:
            continue
        # scan up to the last tag that starts well before the end of what is inflated
        end = buf.rfind(b"<", start + 1, len(buf) - _OVERLAP)
        if end < 0:
            end = len(buf) - _OVERLAP  # one long text node: no tag starts there
        _scan_region(buf, start, end, scan)
        keep = max(0, end - _LOOKBACK)
        buf, start = buf[keep:], end - keep
        _check_size(name, scan)
    _scan_region(buf, start, len(buf), scan)
    _check_size(name, scan)
    return scan


def _check_size(name: str, scan: _SheetScan) -> None:
    rows = max(scan.row_tags, scan.last_row)
    if rows > MAX_ROWS:
        raise _too_big(name, rows, None, "plus de")
    if scan.width and rows * scan.width > MAX_CELLS:
        raise _too_big(name, rows, rows * scan.width, "plus de")


def scan_archive(path: Path, archive: zipfile.ZipFile) -> dict[str, _SheetScan]:
    """Inflate every part once, within the limits; returns what each sheet part holds."""
    parts = _sheet_parts(archive)
    sheet_of_part = {part: name for name, part in parts.items()}
    budget = MAX_UNCOMPRESSED_BYTES
    scans: dict[str, _SheetScan] = {}
    styles = _number_formats(path, archive)
    with path.open("rb") as handle:
        for info in archive.infolist():
            if info.is_dir():
                continue
            chunks = _inflate(handle, info, budget)
            name = sheet_of_part.get(info.filename)
            if info.filename == "[Content_Types].xml":
                tail = b""
                for chunk in chunks:
                    budget -= len(chunk)
                    if b"macroEnabled" in tail + chunk[:64] or b"macroEnabled" in chunk:
                        raise ReadError(MACRO_WORKBOOK)  # the workbook of an .xlsm
                    tail = chunk[-16:]
            elif name is not None:
                counted = _Counted(chunks)
                scans[name] = _scan_sheet(counted, name, styles)
                budget -= counted.total
            else:
                for chunk in chunks:
                    budget -= len(chunk)
    return scans


class _Counted:
    def __init__(self, chunks):
        self.chunks = chunks
        self.total = 0

    def __iter__(self):
        for chunk in self.chunks:
            self.total += len(chunk)
            yield chunk
