"""Values of the checks page (``controles.html``) as a French reader reads them.

« 1 234,5 », « 31/12/2025 », « oui », « vide », an amount with its unit's label: one place
for the text of a cell, a count or a recorded unexpected value, whatever its type (Python,
numpy or pandas, or the JSON of a GX result), so that the page never shows ``nan``,
``True`` or an ISO date. Kept apart from the HTML (``tables.py``) and from finding the rows
(``rows.py``), which shares the ISO date pattern and what counts as missing.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from typing import Any

import pandas as pd

from dagster_project.contracts.reference import unit_label
from dagster_project.lib.french import format_number

_BARE_UNITS = {"nombre", "ratio", "rang"}  # « 15 », not « 15 nombre » (contracts.reference)
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::\d{2}(?:\.\d+)?)?)?$")


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    if isinstance(value, list | tuple | dict):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _date_text(value: Any) -> str:
    """JJ/MM/AAAA, with the time when there is one."""
    if isinstance(value, str):
        match = _ISO_DATE.match(value)
        if not match:
            return value
        year, month, day, hour, minute = match.groups()
        text = f"{day}/{month}/{year}"
        return text if hour is None or (hour, minute) == ("00", "00") else f"{text} {hour}:{minute}"
    if isinstance(value, dt.datetime) and (value.hour, value.minute) != (0, 0):
        return value.strftime("%d/%m/%Y %H:%M")
    return value.strftime("%d/%m/%Y")


def cell_text(value: Any, identifier: bool = False) -> str:
    """A value as a French reader reads it: « 1 234,5 », « 31/12/2025 », « oui », « vide »."""
    if _missing(value):
        return "vide"
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, numbers.Number):
        number = float(value)  # type: ignore[arg-type]
        if identifier and number.is_integer():
            return str(int(number))  # a year or a row number: 2025, not 2 025
        return format_number(number)
    if isinstance(value, dt.date):
        return _date_text(value)
    if isinstance(value, str):
        return _date_text(value)
    if isinstance(value, list | tuple):
        return " ; ".join(cell_text(v) for v in value)
    if isinstance(value, dict):
        return " ; ".join(f"{k} = {cell_text(v)}" for k, v in value.items())
    return str(value)


def amount_text(value: Any, unit: str | None, label: str | None = None) -> str:
    """« 163,157894737 % », « 12,5 km », « 15 » (the mart's ``unit_label`` when given, else
    the label of the unit code: dbt/seeds/units.csv, the same seed)."""
    number = cell_text(value)
    if _missing(value):
        return number
    label = (label or "").strip() or unit_label(unit)
    if not label or label in _BARE_UNITS:
        return number
    return f"{number} {label.removeprefix('nombre ')}"


def _percent(value: Any) -> str:
    return "" if _missing(value) else f"{format_number(round(float(value), 2))}\u202f%"
