"""The data sheets of a blank campaign workbook and their Excel data validation.

``Données``: the header row the ingestion expects (exactly the contract's column names,
``code_insee`` for communes) and Excel data validation (commune and value lists, numeric
bounds, dates of the campaign year) on rows 2 to 5000, with each column's help shown when
a cell is selected; ``Indicateurs`` (declared figures only): id, label, unit, nature and
last published figure of the department's indicators; ``Listes`` (hidden): the 100 member
communes (code and name) and the lists used by the dropdowns. The validation only helps
whoever types (a copy-paste goes around it): the check on reception is what counts.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from typing import Any

from openpyxl.comments import Comment
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from dagster_project.campaign.templates.layout import (
    BOLD,
    BOX,
    FIRST_DATA_ROW,
    LAST_VALIDATED_ROW,
    OPTIONAL_FILL,
    REQUIRED_FILL,
    STEERING_DIRECTION,
    TABLE_FILL,
    WRAP,
)
from dagster_project.campaign.templates.wording import (
    constraints_fr,
    examples_for_year,
    header_of,
    required_fr,
    type_label_fr,
    unit_fr,
)
from dagster_project.contracts.model import Column, Contract
from dagster_project.contracts.reference import (
    KINDS_FR,
    PUBLISHED_REPORT_YEAR,
    Indicator,
    period_fr,
)
from dagster_project.contracts.wording import num_fr

COLUMN_FORMATS = {"date": "DD/MM/YYYY", "month": "MMMM YYYY", "commune": "@"}


class Lists:
    """The hidden sheet holding the dropdown lists; returns absolute range references."""

    def __init__(self, ws: Worksheet, communes: list[tuple[str, str]]):
        self.ws = ws
        self.next_column = 1
        self.communes_ref = self.add("Codes INSEE des communes", [code for code, _ in communes])
        names_column = self.next_column
        self.ws.cell(1, names_column, "Noms des communes").font = BOLD
        for offset, (_, name) in enumerate(communes):
            self.ws.cell(2 + offset, names_column, name)
        self.ws.column_dimensions[get_column_letter(names_column)].width = 32
        self.next_column += 1

    def add(self, label: str, values: list[str]) -> str:
        column = self.next_column
        self.next_column += 1
        letter = get_column_letter(column)
        self.ws.cell(1, column, label).font = BOLD
        for offset, value in enumerate(values):
            self.ws.cell(2 + offset, column, value).number_format = "@"
        self.ws.column_dimensions[letter].width = max(14, min(40, len(label) + 2))
        last = 1 + max(len(values), 1)
        return f"{quote_sheetname(self.ws.title)}!${letter}$2:${letter}${last}"


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _excel_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _date_formula(day: dt.date) -> str:
    return f"DATE({day.year},{day.month},{day.day})"


def _validation(
    column: Column, contract: Contract, year: int, ref: str, lists: Lists
) -> DataValidation:
    """Excel data validation of one column (``ref`` = its first data cell, e.g. C2)."""
    kind = column.type
    dv = DataValidation(allow_blank=True, showInputMessage=True, showErrorMessage=True)
    error = None
    if kind == "commune":
        dv.type, dv.formula1 = "list", lists.communes_ref
        dv.errorStyle = "warning"
        error = (
            "Code INSEE absent de la liste des 100 communes de l'agglomération. Si vous saisissez "
            "des noms de commune, renommez l'en-tête en « commune »."
        )
    elif column.allowed is not None or kind == "yes_no":
        values = list(column.allowed) if column.allowed is not None else ["oui", "non"]
        dv.type, dv.formula1 = "list", lists.add(f"Valeurs de {column.name}", values)
        error = "Valeur non autorisée : choisissez dans la liste (" + ", ".join(values) + ")."
    elif kind in ("integer", "number"):
        error = _numeric_validation(dv, column, ref)
    elif kind in ("date", "month"):
        error = _date_validation(dv, column, year)
        if kind == "month":
            # "2025-03" or "mars 2025" typed as text are valid for the kit: warn, don't block
            dv.errorStyle = "warning"
    if error is None:
        dv.showErrorMessage = False
    else:
        dv.errorTitle = _clip(column.name, 32)
        dv.error = _clip(error, 225)
    constraint = constraints_fr(column, contract, year)
    prompt = type_label_fr(kind, year)
    if column.unit:
        prompt += f" ({unit_fr(column.unit)})"
    prompt += f", {'obligatoire' if required_fr(column) == 'oui' else 'facultatif'}"
    if constraint:
        prompt += f" ; {constraint}"
    prompt += f". {examples_for_year(column.description_fr, year)}"
    dv.promptTitle = _clip(header_of(column), 32)
    dv.prompt = _clip(prompt, 255)
    return dv


def _numeric_validation(dv: DataValidation, column: Column, ref: str) -> str:
    low, high = column.lower_bound, column.max
    integer = column.type == "integer"
    if integer:
        if column.min_exclusive is not None:
            floor = math.floor(column.min_exclusive) + 1
            low = floor if low is None else max(low, floor)
        if column.max_exclusive is not None:
            ceil = math.ceil(column.max_exclusive) - 1
            high = ceil if high is None else min(high, ceil)
    needs_custom = column.step or (
        not integer and (column.min_exclusive is not None or column.max_exclusive is not None)
    )
    what = "un nombre entier" if integer else "un nombre"
    bounds = []
    if low is not None:
        bounds.append(f"≥ {num_fr(low)}")
    if column.min_exclusive is not None and not integer:
        bounds.append(f"> {num_fr(column.min_exclusive)}")
    if high is not None:
        bounds.append(f"≤ {num_fr(high)}")
    if column.max_exclusive is not None and not integer:
        bounds.append(f"< {num_fr(column.max_exclusive)}")
    if column.step:
        bounds.append(f"multiple de {num_fr(column.step)}")
    message = f"Saisissez {what}" + (" " + ", ".join(bounds) if bounds else "") + "."
    if needs_custom or (low is None and high is None):
        tests = [f"ISNUMBER({ref})"]
        if integer:
            tests.append(f"{ref}=INT({ref})")
        if low is not None:
            tests.append(f"{ref}>={_excel_number(low)}")
        if column.min_exclusive is not None and not integer:
            tests.append(f"{ref}>{_excel_number(column.min_exclusive)}")
        if high is not None:
            tests.append(f"{ref}<={_excel_number(high)}")
        if column.max_exclusive is not None and not integer:
            tests.append(f"{ref}<{_excel_number(column.max_exclusive)}")
        if column.step:
            tests.append(f"MOD(ROUND({ref}/{_excel_number(column.step)},6),1)=0")
        dv.type = "custom"
        dv.formula1 = f"AND({','.join(tests)})" if len(tests) > 1 else tests[0]
        return message
    dv.type = "whole" if integer else "decimal"
    if low is not None and high is not None:
        dv.operator, dv.formula1, dv.formula2 = "between", _excel_number(low), _excel_number(high)
    elif low is not None:
        dv.operator, dv.formula1 = "greaterThanOrEqual", _excel_number(low)
    else:
        dv.operator, dv.formula1 = "lessThanOrEqual", _excel_number(high)
    return message


def _date_validation(dv: DataValidation, column: Column, year: int) -> str:
    rule = column.effective_date_range
    dv.type = "date"
    if rule == "campaign_year":
        dv.operator = "between"
        dv.formula1 = _date_formula(dt.date(year, 1, 1))
        dv.formula2 = _date_formula(dt.date(year, 12, 31))
        if column.type == "month":
            return (
                f"Saisissez un mois de {year} : date du mois, {year}-03, 03/{year} ou "
                f"« mars {year} ». Un mois saisi en texte est accepté : confirmez."
            )
        return f"Saisissez une date de l'année {year} (JJ/MM/AAAA)."
    low = high = None
    if isinstance(rule, dict):
        if rule.get("min_year"):
            low = _date_formula(dt.date(int(rule["min_year"]), 1, 1))
        if rule.get("not_future"):
            high = "TODAY()"
    if low and high:
        dv.operator, dv.formula1, dv.formula2 = "between", low, high
    elif high:
        dv.operator, dv.formula1 = "lessThanOrEqual", high
    else:
        dv.operator, dv.formula1 = "greaterThanOrEqual", low or _date_formula(dt.date(1900, 1, 1))
    parts = ["Saisissez une date (JJ/MM/AAAA)"]
    if isinstance(rule, dict) and rule.get("min_year"):
        parts.append(f"à partir de {rule['min_year']}")
    if high:
        parts.append("jamais dans le futur")
    return ", ".join(parts) + "."


def _column_width(column: Column, values: Iterable[str] = ()) -> float:
    base = {"date": 13, "month": 14, "commune": 12, "integer": 12, "number": 14, "yes_no": 8}
    width = max(len(header_of(column)) + 3, base.get(column.type, 18))
    if column.allowed:
        width = max(width, max(len(v) for v in column.allowed) + 4)
    for value in values:
        width = max(width, len(value) + 2)
    return min(width, 48)


def write_data_sheet(
    ws: Worksheet,
    contract: Contract,
    *,
    year: int,
    lists: Lists,
    prefilled: list[dict[str, Any]],
    comments: dict[str, str],
    comment_column: str | None = None,
) -> None:
    columns = list(contract.columns)
    ws.append([header_of(c) for c in columns])
    for index, column in enumerate(columns, start=1):
        cell = ws.cell(1, index)
        cell.font = BOLD
        cell.fill = REQUIRED_FILL if required_fr(column) == "oui" else OPTIONAL_FILL
        cell.border = BOX
        cell.alignment = Alignment(vertical="center")
    for record in prefilled:
        ws.append([record.get(c.name) for c in columns])
    for index, column in enumerate(columns, start=1):
        letter = get_column_letter(index)
        values = [str(r[column.name]) for r in prefilled if r.get(column.name) is not None]
        dimension = ws.column_dimensions[letter]
        dimension.width = _column_width(column, values)
        if column.type in COLUMN_FORMATS:
            dimension.number_format = COLUMN_FORMATS[column.type]
        ref = f"{letter}{FIRST_DATA_ROW}"
        dv = _validation(column, contract, year, ref, lists)
        dv.add(f"{letter}{FIRST_DATA_ROW}:{letter}{LAST_VALIDATED_ROW}")
        ws.add_data_validation(dv)
    if comments and comment_column:
        key_column = next(i for i, c in enumerate(columns, start=1) if c.name == comment_column)
        for row_offset, record in enumerate(prefilled):
            text = comments.get(record.get(comment_column))
            if text:
                comment = Comment(text, STEERING_DIRECTION, height=120, width=360)
                ws.cell(FIRST_DATA_ROW + row_offset, key_column).comment = comment
    ws.freeze_panes = f"A{FIRST_DATA_ROW}"


def write_indicators_sheet(ws: Worksheet, indicators: list[Indicator]) -> None:
    header = [
        "Identifiant (indicator_id)",
        "Libellé",
        "Unité",
        "Nature",
        "Valeur négative possible",
        f"Valeur publiée (rapport {PUBLISHED_REPORT_YEAR})",
        "Période publiée",
        "Définition",
    ]
    ws.append(header)
    for cell in ws[1]:
        cell.font = BOLD
        cell.fill = TABLE_FILL
        cell.border = BOX
    for ind in indicators:
        ws.append(
            [
                ind.indicator_id,
                ind.label_fr,
                unit_fr(ind.unit),
                KINDS_FR.get(ind.kind, ind.kind),
                "oui" if ind.allow_negative else "non",
                _published_number(ind.published),
                period_fr(ind.period),
                ind.definition,
            ]
        )
        for cell in ws[ws.max_row]:
            cell.alignment = WRAP
    widths = (max([len(i.indicator_id) for i in indicators] + [24]) + 2, 60, 16, 16, 12, 16, 22, 60)
    for index, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(len(header))}{max(ws.max_row, 2)}"


def _published_number(text: str) -> float | int | str:
    """The catalogue's published figure (« 36.7 ») as a number, for a cell French Excel shows
    as 36,7; a text that is not a number stays as it is."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return text
    return int(number) if number.is_integer() else number


def indicator_comment(ind: Indicator) -> str:
    lines = [ind.label_fr, f"Unité : {unit_fr(ind.unit) or '—'}"]
    if ind.kind and ind.kind != "value":
        lines.append(f"Nature : {KINDS_FR.get(ind.kind, ind.kind)}")
    if ind.published:
        period = f" ({period_fr(ind.period)})" if ind.period else ""
        published = _published_number(ind.published)
        shown = published if isinstance(published, str) else num_fr(published)
        lines.append(f"Publié au rapport {PUBLISHED_REPORT_YEAR} : {shown}{period}")
    return "\n".join(lines)
