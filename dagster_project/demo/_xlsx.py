"""Writing a demo workbook with xlsxwriter, reproducibly (fixed document
properties: two runs give byte-identical files)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xlsxwriter

FIXED_CREATED = dt.datetime(2025, 1, 1)


@dataclass
class Month:
    """A month cell written as a date cell (``day`` of the month)."""

    date: dt.date


@dataclass
class Sheet:
    """One data sheet: ``columns`` are the kit's column names, ``headers``
    what the department typed in the header row (defaults to the column
    name), ``rows`` the cell values (str, int, float, date, Month, None)."""

    name: str
    columns: list[str]
    rows: list[list[Any]]
    headers: dict[str, str] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)
    total_label: str | None = None  # adds a control total row
    total_columns: list[str] = field(default_factory=list)
    total_values: dict[str, float] = field(default_factory=dict)
    date_format: str = "dd/mm/yyyy"
    month_format: str = "mmmm yyyy"
    widths: dict[str, float] = field(default_factory=dict)


@dataclass
class Book:
    path: Path
    sheets: list[Sheet]
    notice: list[str] | None = None  # a "Notice" sheet written first
    title: str = ""


def write_book(book: Book) -> Path:
    book.path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(book.path))
    wb.set_properties(
        {
            "created": FIXED_CREATED,
            "title": book.title,
            "author": "Communauté d'agglomération de Béthune-Bruay, Artois Lys Romane",
            "company": "CABBALR",
        }
    )
    bold = wb.add_format({"bold": True})
    title_fmt = wb.add_format({"bold": True, "font_size": 13})
    head_fmt = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True})
    total_fmt = wb.add_format({"bold": True, "top": 1})
    wrap = wb.add_format({"text_wrap": True, "valign": "top"})

    if book.notice:
        ws = wb.add_worksheet("Notice")
        ws.set_column(0, 0, 110)
        for i, line in enumerate(book.notice):
            ws.write_string(i, 0, line, title_fmt if i == 0 else wrap)

    for sheet in book.sheets:
        ws = wb.add_worksheet(sheet.name)
        date_fmt = wb.add_format({"num_format": sheet.date_format})
        month_fmt = wb.add_format({"num_format": sheet.month_format})
        r = 0
        for t in sheet.titles:
            if t:
                ws.write_string(r, 0, t, title_fmt if r == 0 else bold)
            r += 1
        for c, col in enumerate(sheet.columns):
            head = sheet.headers.get(col, col)
            ws.write_string(r, c, head, head_fmt)
            ws.set_column(c, c, sheet.widths.get(col, max(12, min(40, len(head) + 4))))
        ws.freeze_panes(r + 1, 0)
        r += 1
        for row in sheet.rows:
            for c, v in enumerate(row):
                _write_cell(ws, r, c, v, date_fmt, month_fmt)
            r += 1
        if sheet.total_label:
            ws.write_string(r, 0, sheet.total_label, total_fmt)
            for col in sheet.total_columns:
                c = sheet.columns.index(col)
                ws.write_number(r, c, sheet.total_values[col], total_fmt)
    wb.close()
    return book.path


def _write_cell(ws, r: int, c: int, v: Any, date_fmt, month_fmt) -> None:
    if v is None or v == "":
        return
    if isinstance(v, Month):
        ws.write_datetime(r, c, dt.datetime(v.date.year, v.date.month, v.date.day), month_fmt)
    elif isinstance(v, dt.datetime):
        ws.write_datetime(r, c, v, date_fmt)
    elif isinstance(v, dt.date):
        ws.write_datetime(r, c, dt.datetime(v.year, v.month, v.day), date_fmt)
    elif isinstance(v, bool):
        ws.write_string(r, c, "oui" if v else "non")
    elif isinstance(v, (int, float)):
        ws.write_number(r, c, v)
    else:
        ws.write_string(r, c, str(v))
