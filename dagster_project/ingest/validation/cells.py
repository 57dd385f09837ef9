"""What one cell may hold: the rules of its column's type, bounds and dates.

``_parse_cell`` turns a cell value into the value of its contract column (a number within
its bounds and step, a date or month within the column's date range, a commune by code or
by name, yes or no, a text; one of the allowed values), or raises ``CellError`` with a
French reason. ``_shown_otherwise`` refuses a number whose cell's format shows it otherwise
than it is (a percentage, a unit, a value divided by 1 000): what a person reads must be
what is read.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from dagster_project.contracts.model import Column
from dagster_project.ingest.normalize import (
    CellError,
    display,
    normalize_header,
    parse_date,
    parse_month,
    parse_number,
    parse_yes_no,
)
from dagster_project.ingest.readers.sheet import NumberFormat
from dagster_project.ingest.validation.context import IngestContext

# the largest integer an integer column holds: every integer up to it is exact in a float
# (what a cell holds) and fits the warehouse's BIGINT; beyond, the cell is rejected
MAX_INTEGER = 2**53 - 1
_TOO_LARGE = "nombre trop grand : 9\u202f007\u202f199\u202f254\u202f740\u202f991 au plus"


def _check_bounds(column: Column, value: float) -> None:
    low = column.lower_bound
    if low is not None and value < low:
        if low == 0:
            raise CellError("valeur négative non autorisée")
        raise CellError(f"valeur inférieure au minimum autorisé ({display(low)})")
    if column.min_exclusive is not None and value <= column.min_exclusive:
        raise CellError(f"doit être strictement supérieur à {display(column.min_exclusive)}")
    if column.max is not None and value > column.max:
        raise CellError(f"valeur supérieure au maximum autorisé ({display(column.max)})")
    if column.max_exclusive is not None and value >= column.max_exclusive:
        raise CellError(f"doit être strictement inférieur à {display(column.max_exclusive)}")
    # (math.remainder: exact, and no overflow for a huge value)
    if column.step and abs(math.remainder(value, column.step) / column.step) > 1e-9:
        raise CellError(f"doit être un multiple de {display(column.step).replace('.', ',')}")


class _OutsideCampaign(CellError):
    """A date or month of another year than the campaign's (``year``: the year it is in)."""

    def __init__(self, reason: str, year: int):
        super().__init__(reason)
        self.year = year


def _check_date_range(column: Column, value: dt.date, ctx: IngestContext) -> None:
    rule = column.effective_date_range
    if rule in (None, "any"):
        return
    if rule == "campaign_year":
        if value.year != ctx.campaign_year:
            raise _OutsideCampaign(
                f"date hors de l'année de la campagne {ctx.campaign_year}", value.year
            )
        return
    if isinstance(rule, dict):
        min_year = rule.get("min_year")
        if min_year and value.year < min_year:
            raise CellError(f"date antérieure à {min_year}")
        if rule.get("not_future") and value > ctx.today:
            raise CellError("date dans le futur")


def _parse_cell(column: Column, raw: object, ctx: IngestContext, header: str) -> Any:
    kind = column.type
    if kind in ("integer", "number"):
        value = parse_number(raw, column.cell_units)
        if kind == "integer":
            if not float(value).is_integer():
                raise CellError("nombre entier attendu")
            if abs(value) > MAX_INTEGER:  # 1e300, 99999999999999999999: not an integer column's
                raise CellError(_TOO_LARGE)
            value = int(value)
        _check_bounds(column, value)
    elif kind == "date":
        value = parse_date(raw)
        _check_date_range(column, value, ctx)
    elif kind == "month":
        value = parse_month(raw)
        _check_date_range(column, value, ctx)
    elif kind == "commune":
        if normalize_header(header) == "commune":
            value = ctx.communes.from_name(raw)
        else:
            value = ctx.communes.from_code(raw)
    elif kind == "yes_no":
        value = parse_yes_no(raw)
    else:
        value = display(raw).strip()
        if isinstance(raw, float) and not raw.is_integer():
            value = str(raw)
    wanted = column.allowed_lookup
    if wanted is not None:
        key = str(value).strip().casefold()
        if key not in wanted:
            raise CellError("valeur non autorisée (attendu : " + ", ".join(column.allowed) + ")")
        value = wanted[key]
    return value


def _french(value: float) -> str:
    return f"{value:.10g}".replace(".", ",")


def _shown_otherwise(column: Column, number_format: NumberFormat, value: float) -> str | None:
    """Why a number is refused when its cell's format shows it otherwise than it is: what
    a person reads must be what is read (None: its format shows it as it is)."""
    # (a zero shown as a blank, « 0;-0;;@ », is a common way of writing 0: not refused)
    if value and number_format.hides[0 if value > 0 else 1]:
        return (
            f"cellule au format « {number_format.code} », qui n'affiche pas le nombre qu'elle "
            f"contient ({_french(value)}) : mettez-la au format Nombre et vérifiez la valeur"
        )
    if number_format.scaled:
        return (
            f"cellule au format « {number_format.code} », qui affiche le nombre divisé par 1 000 "
            f"(ou plus) : elle n'affiche pas la valeur qu'elle contient ({_french(value)}) ; "
            "mettez-la au format Nombre et vérifiez la valeur"
        )
    share = (column.max is not None and column.max <= 1) or (
        column.max_exclusive is not None and column.max_exclusive <= 1
    )
    if number_format.percent and not share:
        return (
            f"cellule au format Pourcentage : elle affiche {_french(value * 100)} % mais contient "
            f"{_french(value)}, et cette colonne n'est pas une part (entre 0 et 1) ; mettez-la au "
            "format Nombre et écrivez la valeur attendue"
        )
    unit = number_format.unit
    if unit and unit.casefold() not in column.cell_units:
        own = (
            f"celle de la colonne est {column.cell_units[0]}"
            if column.cell_units
            else "cette colonne n'a pas d'unité"
        )
        return (
            f"cellule au format « {number_format.code} », qui affiche l'unité « {unit} » : "
            f"{own} ; mettez-la au format Nombre et écrivez la valeur dans l'unité de la colonne"
        )
    return None
