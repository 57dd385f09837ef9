"""What a row is, and the rules between the cells of one row.

A row below the header is a data row, an empty row (skipped) or a control total (its first
filled cell reads « total »: checked against the sum of the rows above it,
``chunks._SheetState._totals``). A line of a ``.csv`` with another number of fields than its
header is refused, with its likely cause. ``_row_rules`` applies the contract's rules between
the cells of a row: a date not after another, an age within bounds at the date of
observation, a column not above another, a cell required unless another holds one of some
values.
"""

from __future__ import annotations

import datetime as dt
import math

from dagster_project.ingest.normalize import clean_text, display, is_empty
from dagster_project.ingest.validation.columns import _EMPTY


def _age_in_months(birth: dt.date, at: dt.date) -> int:
    months = (at.year - birth.year) * 12 + (at.month - birth.month)
    if at.day < birth.day:
        months -= 1
    return months


def _fields_reason(found: int, expected: int, delimiter: str | None) -> str:
    """Why a line of a .csv with another number of fields than its header is refused."""
    sep = "virgule" if delimiter == "," else "point-virgule"
    if found > expected:
        advice = (
            " (une virgule décimale : 0,5) : les valeurs suivantes seraient décalées ; mettez "
            'cette valeur entre guillemets ("0,5"), ou enregistrez le fichier au format « CSV '
            "(séparateur : point-virgule) »"
            if delimiter == ","
            else " : les valeurs suivantes seraient décalées ; mettez cette valeur entre "
            "guillemets, ou retirez-en le point-virgule"
        )
        cause = f"une valeur contient sans doute le séparateur « {delimiter} »{advice}"
    else:
        cause = (
            f"il manque {expected - found} séparateur(s) « {delimiter} » ({sep}) : valeurs "
            "manquantes ou ligne coupée ; chaque ligne doit avoir autant de champs que l'en-tête, "
            "même vides"
        )
    return f"ligne de {found} champs alors que l'en-tête en a {expected} : {cause}"


def _line_of(cells: list[object], delimiter: str | None) -> str:
    """A line of a .csv as written (shortened), to show in the report."""
    line = (delimiter or ";").join(map(str, cells))
    return line if len(line) <= 200 else line[:199] + "…"


def _first_filled(cells: list[object]) -> object:
    """The first non-empty cell of a row, ``_EMPTY`` when there is none."""
    for cell in cells:
        if not is_empty(cell):
            return cell
    return _EMPTY


_DATA_ROW, _EMPTY_ROW, _TOTAL_ROW = 0, 1, 2


# first cells that are never empty (a float may be NaN: checked)
_PLAIN_FIRST_TYPES = {str, int, float, bool, dt.datetime, dt.date, dt.time, dt.timedelta}


def _row_kind(first: object) -> int:
    """What a row is, from its first filled cell (``_EMPTY``: none)."""
    if first is _EMPTY:
        return _EMPTY_ROW
    if first.__class__ is str and clean_text(first).lower().startswith("total"):
        return _TOTAL_ROW
    return _DATA_ROW


def _row_rules(contract, record, row_number, label, ctx, problem) -> None:
    for column in contract.row_rule_columns:
        value = record.get(column.name)
        if column.not_after and value is not None:
            limit = record.get(column.not_after)
            if limit is not None and value > limit:
                problem(
                    f"date postérieure à « {column.not_after} » ({display(limit)})",
                    row_number,
                    label.get(column.name, column.name),
                    value,
                )
        reference = column.age_reference
        if reference and value is not None and record.get(reference) is not None:
            years = _age_in_months(value, record[reference]) / 12
            low, high = column.age_years_min, column.age_years_max
            if (low is not None and years < low) or (high is not None and years > high):
                problem(
                    f"âge de {math.floor(years)} ans à la date d'observation, hors des bornes "
                    f"{display(low)}–{display(high)} ans",
                    row_number,
                    label.get(column.name, column.name),
                    value,
                )
    for rule in contract.rules_of("column_le"):
        left, right = record.get(rule["column"]), record.get(rule["other"])
        if left is not None and right is not None and left > right:
            problem(
                f"« {rule['column']} » ({display(left)}) supérieur à « {rule['other']} » ({display(right)})",
                row_number,
                label.get(rule["column"], rule["column"]),
                left,
            )
    for rule in contract.rules_of("required_unless"):
        if record.get(rule["column"]) is None and record.get(rule["other"]) not in rule["values"]:
            problem(
                f"cellule vide : obligatoire sauf si « {rule['other']} » vaut "
                + " ou ".join(rule["values"]),
                row_number,
                label.get(rule["column"], rule["column"]),
            )
