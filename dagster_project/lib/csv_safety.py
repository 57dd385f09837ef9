"""Text cells of the CSV files people open never become formulas.

A spreadsheet opening a CSV reads a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a
tab or carriage return before one) as a formula: a delivered cell ``=HYPERLINK(...)`` or
``-2+3+cmd|...`` shown in a rejection report or a release's ``values.csv`` would run in the
reader's Excel (CSV injection). Every CSV the project writes for people (rejection reports,
notices of values to confirm, the reminders' journal, a release's ``values.csv``, ``kpi diff
--csv``, the open-data export by commune) goes through ``neutralise``, the way OWASP
recommends: such a text is written with a single quote ``'`` before it, which the spreadsheet
shows and never evaluates. The original text stays as it is where it is safe (the warehouse,
Parquet files, workbooks written as text cells).

Only text is neutralised, never numbers: numeric columns are written by their own
rendering (``-3.5`` stays a number), and a text that is only a number (``-1``, ``-1 250,5``,
the value of a cell shown in a report) cannot be a formula, so it is kept as it is.

The CSV files people open with a double-click are written in French Excel's dialect
(``write_excel_csv``, ``excel_cell``), like the rejection reports: UTF-8 with a BOM (without
it Excel reads « Béthune » as « BÃ©thune »), « ; » between fields, a decimal comma, no
thousands separator (``-1234,5`` is a number for French Excel, ``-1234.5`` a text or a
date), dates as JJ/MM/AAAA. The open-data files (a release's ``values.csv``) keep the
international dialect: comma, decimal point, no BOM.

This module depends on nothing of the project: every writer may use it.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import math
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# a number alone: sign, digits (or groups of three after spaces, as French writes thousands),
# decimal part, exponent (« +33 3 21 00 00 00 », a telephone number, is not one)
_NUMBER = re.compile(r"[+-]?(?:\d+|\d{1,3}(?:[ \u00a0\u202f]\d{3})+)(?:[.,]\d+)?(?:[eE][+-]?\d+)?")


def neutralise(value: object) -> object:
    """``=SOMME(A1:A3)`` -> ``'=SOMME(A1:A3)``; any other value (a text that does not start
    a formula, a number alone, anything but a ``str``) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutralise_row(row: Iterable[object]) -> list[object]:
    """``neutralise`` on every cell of a row (numbers and ``None`` pass through)."""
    return [neutralise(value) for value in row]


# French Excel's CSV: what a double-click opens as columns, accents and numbers right
EXCEL_ENCODING = "utf-8-sig"
EXCEL_DELIMITER = ";"


def excel_number(value: float | int | None) -> str:
    """A number as French Excel reads one: ``1234,5``, ``-3``, ``0,1`` (15 significant digits,
    Excel's precision; decimal comma; no thousands separator); empty for None or NaN."""
    if value is None or isinstance(value, bool):
        return "" if value is None else str(value)
    number = float(value)
    if math.isnan(number):
        return ""
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    return format(number, ".15g").replace(".", ",")


def excel_cell(value: object) -> object:
    """One cell of a CSV for French Excel: numbers by ``excel_number``, dates JJ/MM/AAAA
    (and HH:MM), text neutralised (``neutralise``), None empty."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return excel_number(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return neutralise(value)


def excel_writer(handle):
    """A ``csv.writer`` in French Excel's dialect (« ; », CRLF) over a handle opened with
    ``encoding=EXCEL_ENCODING`` and ``newline=""``."""
    return csv.writer(handle, delimiter=EXCEL_DELIMITER)


def write_excel_csv(path: Path, header: Iterable[str], rows: Iterable[Iterable[object]]) -> Path:
    """Write a CSV for people (French Excel's dialect, every cell through ``excel_cell``), into
    a temporary file of the same folder renamed over ``path``: a reader never sees half a
    file, and a link planted at that name is replaced, never written through."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o644)  # readable like any file written, not mkstemp's 0600
    try:
        with os.fdopen(fd, "w", encoding=EXCEL_ENCODING, newline="") as handle:
            writer = excel_writer(handle)
            writer.writerow([excel_cell(h) for h in header])
            writer.writerows([excel_cell(v) for v in row] for row in rows)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


__all__ = [
    "EXCEL_DELIMITER",
    "EXCEL_ENCODING",
    "FORMULA_STARTS",
    "excel_cell",
    "excel_number",
    "excel_writer",
    "neutralise",
    "neutralise_row",
    "write_excel_csv",
]
