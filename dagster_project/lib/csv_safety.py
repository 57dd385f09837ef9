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

This module depends on nothing of the project: every writer may use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

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


__all__ = ["FORMULA_STARTS", "neutralise", "neutralise_row"]
