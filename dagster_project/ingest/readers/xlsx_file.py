"""A workbook's worksheets, parsed by calamine once steps 1 and 2 have passed.

``read_xlsx`` checks the archive (``readers.archive``, ``readers.scan``), then parses every
worksheet with python-calamine (the fastest Python reader, see notes/stack.md) into Python
values, with what the scan found. A long clean worksheet (``_arrow_eligible``) is read by
fastexcel (the same calamine, with Arrow output) into typed columns (``_fastexcel_sheet``),
python-calamine's values being read only if the engine needs them (``Sheet.reread``).
``CalamineParse`` is the checks and the parse of one workbook, which may run ahead of time,
in a thread (``readers.readahead``), in the same order: nothing reaches calamine before the
checks have passed.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from dagster_project.ingest.readers.archive import check_archive
from dagster_project.ingest.readers.scan import _SheetScan, _too_big, scan_archive
from dagster_project.ingest.readers.sheet import MAX_ROWS, ReadError, Sheet

ARROW_MIN_ROWS = 10_000  # row tags from which a clean worksheet is read into Arrow columns
_DEDUPED = re.compile(r"^(.*)_(\d+)$")  # fastexcel's name for a repeated header (« Nom_1 »)


def _arrow_eligible(scan: _SheetScan | None) -> bool:
    """Whether a worksheet is read by fastexcel into Arrow columns: a long sheet whose first
    cell is A1 (its rows are counted from row 1) and in which the scan found nothing that only
    the cell-by-cell rules explain (error values, formulas without a value, hidden rows,
    merged cells, cells typed as ISO dates)."""
    return (
        scan is not None
        and scan.row_tags >= ARROW_MIN_ROWS
        and scan.first_cell == b"A1"
        and bool(scan.head_filled)
        and not (
            scan.errors
            or scan.uncached_formulas
            or scan.hidden_rows
            or scan.hidden_columns
            or scan.merged
            or scan.formatted
            or scan.typed_dates
        )
    )


def _header_guess(scan: _SheetScan) -> int:
    """The row taken for the header: the first of the widest of the first rows (titles above
    a header fill fewer cells). The engine checks that no row above could be a header."""
    filled = scan.head_filled or {0: 0}
    widest = max(filled.values())
    return min(index for index, count in filled.items() if count == widest)


@dataclass
class _ArrowSheet:
    header: list[str]  # the header row, as written
    header_row: int  # 0-based
    batch: object  # pyarrow.RecordBatch: the rows below, one typed column per header cell
    head_filled: dict[int, int]  # filled cells of the rows above the header (scan)


def _fastexcel_sheet(path: Path, name: str, scan: _SheetScan) -> _ArrowSheet | None:
    """A worksheet read by fastexcel (the same calamine, with Arrow output): the header row
    (``_header_guess``) and the rows below as typed columns. None when it cannot be read that
    way without loss: a column mixing types (``strict``: fastexcel would otherwise convert
    them), a blank or repeated header cell, a column beyond the header, more rows than the
    limit."""
    import fastexcel

    logging.getLogger("fastexcel").setLevel(logging.ERROR)  # its notes on guessed types
    header_row = _header_guess(scan)
    try:
        sheet = fastexcel.read_excel(str(path)).load_sheet(
            name, header_row=header_row, schema_sample_rows=None, dtype_coercion="strict"
        )
        columns = sheet.available_columns()
        names = [column.name for column in columns]
        if (
            [column.absolute_index for column in columns] != list(range(len(columns)))
            or any(column.column_name_from != "looked_up" for column in columns)
            or any((m := _DEDUPED.match(n)) is not None and m[1] in names for n in names)
        ):
            return None
        batch = sheet.to_arrow()
    except Exception:  # fastexcel raises several error types: calamine reads the sheet then
        return None
    if batch.num_rows + header_row + 1 > MAX_ROWS or batch.num_columns != len(names):
        return None
    above = {i: n for i, n in (scan.head_filled or {}).items() if i < header_row}
    return _ArrowSheet(names, header_row, batch, above)


class CalamineParse:
    """A workbook's checks (steps 1 and 2) then the parse of every worksheet, run ahead of
    time in a thread (``readers.readahead``): calamine releases the GIL while it parses, so the
    parse uses another core. ``scans``: what step 2 found, None when the workbook was refused
    (``read_xlsx`` then reads it again and says why); ``sheets``: (name, visibility, calamine
    sheet, ``_ArrowSheet`` or the exception calamine raised); ``error``: calamine could not
    open the workbook. A long clean worksheet (``_arrow_eligible``) is read by fastexcel into
    Arrow columns, calamine's Python values being read only if the engine needs them."""

    def __init__(self, path: Path):
        self.path = path
        self.scans: dict[str, _SheetScan] | None = None
        self.sheets: list[tuple[str, bool, object]] = []
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            with check_archive(self.path) as archive:
                scans = scan_archive(self.path, archive)
            self.parse(scans)
            self.scans = scans
        except (ReadError, OSError):
            pass
        finally:
            self.done.set()

    def parse(self, scans: dict[str, _SheetScan]) -> None:
        from python_calamine import CalamineWorkbook

        try:
            workbook = CalamineWorkbook.from_path(str(self.path))
        except Exception as exc:  # calamine raises several error types
            self.error = exc
            return
        try:
            for meta in workbook.sheets_metadata:
                if str(meta.typ) not in ("SheetTypeEnum.WorkSheet", "WorkSheet"):
                    continue
                # Visible, Hidden or VeryHidden (hidden where Excel's « Afficher » cannot)
                visible = str(meta.visible).rsplit(".", 1)[-1]
                parsed: object = None
                scan = scans.get(meta.name)
                if visible == "Visible" and _arrow_eligible(scan):
                    parsed = _fastexcel_sheet(self.path, meta.name, scan)
                if parsed is None:
                    try:
                        parsed = workbook.get_sheet_by_name(meta.name)
                    except Exception as exc:
                        parsed = exc
                self.sheets.append((meta.name, visible, parsed))
        except Exception as exc:
            self.error = exc
        finally:
            workbook.close()


def _python_sheet(name: str, visible: str, parsed, scan: _SheetScan | None) -> Sheet:
    """A worksheet parsed by calamine, as Python values, with what the scan found."""
    from python_calamine import CalamineError

    if isinstance(parsed, CalamineError):
        raise ReadError(f"feuille illisible ({parsed})", sheet=name) from parsed
    if isinstance(parsed, Exception):
        raise ReadError(f"classeur illisible ({type(parsed).__name__} : {parsed})") from parsed
    if parsed.height > MAX_ROWS:
        raise _too_big(name, parsed.height, None, "")
    try:
        rows = parsed.to_python(skip_empty_area=False)
    except CalamineError as exc:
        raise ReadError(f"feuille illisible ({exc})", sheet=name) from exc
    scan = scan or _SheetScan()
    return Sheet(
        name=name,
        rows=rows,
        errors=scan.errors,
        hidden_rows=scan.hidden_rows,
        hidden=visible != "Visible",
        very_hidden=visible == "VeryHidden",
        zero_height_rows=scan.zero_height_rows,
        hidden_columns=scan.hidden_columns,
        formatted=scan.formatted,
        filter_range=scan.filter_range,
        merged=scan.merged,
        uncached_formulas=scan.uncached_formulas,
    )


def _reread(path: Path, name: str, visible: str, scan: _SheetScan | None) -> Sheet:
    """A worksheet read by fastexcel, read again by calamine as Python values."""
    from python_calamine import CalamineWorkbook

    try:
        with CalamineWorkbook.from_path(str(path)) as workbook:
            parsed: object = workbook.get_sheet_by_name(name)
    except Exception as exc:
        parsed = exc
    return _python_sheet(name, visible, parsed, scan)


def _arrow_rows(sheet: _ArrowSheet, start: int):
    """``Sheet.arrow_rows`` of a worksheet read by fastexcel: the rows below its header."""
    import pyarrow as pa

    return pa.Table.from_batches([sheet.batch]) if start == sheet.header_row + 1 else None


def read_xlsx(path: Path, ahead: CalamineParse | None = None) -> list[Sheet]:
    """The sheets of a workbook; ``ahead``: its checks and parse begun ahead of time."""
    if ahead is not None:
        ahead.done.wait()
    if ahead is not None and ahead.scans is not None:
        scans, parse = ahead.scans, ahead
    else:  # checked first, then parsed: nothing reaches calamine before the checks pass
        with check_archive(path) as archive:
            scans = scan_archive(path, archive)
        parse = CalamineParse(path)
        parse.parse(scans)
    if parse.error is not None:
        exc = parse.error
        raise ReadError(f"classeur illisible ({type(exc).__name__} : {exc})") from exc
    sheets = []
    for name, visible, parsed in parse.sheets:
        if isinstance(parsed, _ArrowSheet):
            sheets.append(
                Sheet(
                    name=name,
                    rows=[[] for _ in range(parsed.header_row)] + [list(parsed.header)],
                    arrow_rows=partial(_arrow_rows, parsed),
                    reread=partial(_reread, path, name, visible, scans.get(name)),
                    head_filled=parsed.head_filled,
                )
            )
        else:
            sheets.append(_python_sheet(name, visible, parsed, scans.get(name)))
    return sheets
