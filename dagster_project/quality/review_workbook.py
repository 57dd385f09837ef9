"""The review workbook of a year: ``kpi review export`` writes it, the reviewers fill it in
Excel, ``kpi review import`` records what they decided.

``export_workbook`` writes one row per value of the year (label, value, unit, previous year,
change, current status with a drop-down list, comment) and ``import_workbook`` records the
rows whose status or comment changed, all or nothing: any unknown value or bad status rejects
the file with French messages naming the rows (``ImportRejected``). The records, statuses
and queries are ``review.py``'s; xlsxwriter and openpyxl are imported only when used.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.contracts.reference import direction_fr, unit_label
from dagster_project.quality.review import (
    NEEDS_COMMENT,
    STATUS_ANOMALY,
    STATUS_HELP,
    STATUS_OK,
    STATUS_SUSPECT,
    STATUSES,
    _clean,
    _current_reviews,
    _current_values,
    _insert,
    _require_values,
    ensure_review_tables,
    normalize_status,
    reviewed_values,
)
from dagster_project.warehouse.relations import transaction

SHEET = "Revue"
H_YEAR = "Année"
H_ID = "Indicateur"
H_LABEL = "Libellé"
H_DEPARTMENT = "Direction"
H_PRIORITY = "Priorité"
H_CODE = "Code INSEE"
H_COMMUNE = "Commune"
H_VALUE = "Valeur"
H_UNIT = "Unité"
H_PREVIOUS = "Valeur N-1"
H_CHANGE = "Évolution"
H_CHANGE_PCT = "Évolution (%)"
H_STATUS = "Statut"
H_COMMENT = "Commentaire"
H_REVIEWER = "Relecteur"
H_REVIEWED_AT = "Revu le"
HEADERS = [
    (H_YEAR, 8),
    (H_ID, 34),
    (H_LABEL, 50),
    (H_DEPARTMENT, 36),
    (H_PRIORITY, 10),
    (H_CODE, 11),
    (H_COMMUNE, 24),
    (H_VALUE, 14),
    (H_UNIT, 16),
    (H_PREVIOUS, 14),
    (H_CHANGE, 14),
    (H_CHANGE_PCT, 12),
    (H_STATUS, 26),
    (H_COMMENT, 50),
    (H_REVIEWER, 18),
    (H_REVIEWED_AT, 17),
]
REQUIRED_HEADERS = [H_YEAR, H_ID, H_CODE, H_STATUS, H_COMMENT]
AGGLOMERATION = "Agglomération"


class ImportRejected(ValueError):
    """The workbook was not imported; ``problems`` lists every faulty row (French)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def export_workbook(con: duckdb.DuckDBPyConnection, year: int, out: Path) -> int:
    """The review workbook of the year; returns the number of values written."""
    import xlsxwriter

    values = reviewed_values(con, year)
    out.parent.mkdir(parents=True, exist_ok=True)
    workbook = xlsxwriter.Workbook(str(out))
    try:
        header = workbook.add_format(
            {"bold": True, "bg_color": "#1F4E78", "font_color": "#FFFFFF", "text_wrap": True}
        )
        editable_header = workbook.add_format(
            {"bold": True, "bg_color": "#C65911", "font_color": "#FFFFFF", "text_wrap": True}
        )
        editable = workbook.add_format({"bg_color": "#FFF2CC", "text_wrap": True})
        number = workbook.add_format({"num_format": "General"})
        percent = workbook.add_format({"num_format": "0.0"})
        stamp = workbook.add_format({"num_format": "dd/mm/yyyy hh:mm"})
        ws = workbook.add_worksheet(SHEET)
        for col, (title, width) in enumerate(HEADERS):
            is_editable = title in (H_STATUS, H_COMMENT)
            ws.write(0, col, title, editable_header if is_editable else header)
            ws.set_column(col, col, width, editable if is_editable else None)
        col_of = {title: i for i, (title, _) in enumerate(HEADERS)}
        for i, v in enumerate(values, start=1):
            ws.write_number(i, col_of[H_YEAR], v.year)
            ws.write_string(i, col_of[H_ID], v.indicator_id)
            ws.write_string(i, col_of[H_LABEL], v.label or "")
            ws.write_string(i, col_of[H_DEPARTMENT], direction_fr(v.department))
            ws.write_string(i, col_of[H_PRIORITY], v.priority or "")
            ws.write_string(i, col_of[H_CODE], v.code_insee or "")
            ws.write_string(
                i, col_of[H_COMMUNE], (v.commune or "") if v.code_insee else AGGLOMERATION
            )
            for title, amount, fmt in (
                (H_VALUE, v.value, number),
                (H_PREVIOUS, v.previous_value, number),
                (H_CHANGE, v.change, number),
                (H_CHANGE_PCT, v.change_pct, percent),
            ):
                if amount is not None and math.isfinite(amount):
                    ws.write_number(i, col_of[title], amount, fmt)
            ws.write_string(i, col_of[H_UNIT], unit_label(v.unit))
            if v.status:
                ws.write_string(i, col_of[H_STATUS], v.status, editable)
            if v.comment:
                ws.write_string(i, col_of[H_COMMENT], v.comment, editable)
            ws.write_string(i, col_of[H_REVIEWER], v.reviewer or "")
            if v.reviewed_at:
                ws.write_datetime(i, col_of[H_REVIEWED_AT], v.reviewed_at, stamp)
        last = max(len(values), 1)
        status_col = col_of[H_STATUS]
        ws.data_validation(
            1,
            status_col,
            last,
            status_col,
            {
                "validate": "list",
                "source": STATUSES,
                "input_title": "Statut de validation",
                "input_message": "Choisissez un des trois niveaux dans la liste.",
                "error_title": "Statut inconnu",
                "error_message": "Statuts admis : " + ", ".join(STATUSES) + ".",
            },
        )
        red = workbook.add_format({"bg_color": "#F8CBAD", "font_color": "#9C0006"})
        orange = workbook.add_format({"bg_color": "#FFE699"})
        green = workbook.add_format({"bg_color": "#C6EFCE"})
        for text, fmt in ((STATUS_ANOMALY, red), (STATUS_SUSPECT, orange), (STATUS_OK, green)):
            ws.conditional_format(
                1,
                status_col,
                last,
                status_col,
                {"type": "cell", "criteria": "==", "value": f'"{text}"', "format": fmt},
            )
        ws.freeze_panes(1, 2)
        ws.autofilter(0, 0, last, len(HEADERS) - 1)
        help_ws = workbook.add_worksheet("Mode d'emploi")
        help_ws.set_column(0, 0, 110)
        for row, line in enumerate(
            [
                f"Revue des valeurs d'indicateurs {year}",
                "",
                "Renseignez les colonnes « Statut » et « Commentaire » (fond jaune) de la feuille « Revue ».",
                "Statuts : sans anomalie apparente, présomption d'anomalie, anomalie.",
                "Un commentaire est obligatoire pour « présomption d'anomalie » et « anomalie ».",
                "Ne modifiez pas les colonnes Année, Indicateur et Code INSEE : elles identifient la valeur.",
                'Réimport : kpi review import FICHIER --reviewer "Votre nom" — seules les lignes dont '
                "le statut ou le commentaire a changé sont enregistrées.",
                "Une valeur en « anomalie » empêche le gel de la publication (kpi freeze).",
            ]
        ):
            help_ws.write_string(row, 0, line)
    finally:
        workbook.close()
    return len(values)


@dataclass
class ImportResult:
    recorded: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)


def _read_sheet(path: Path) -> list[tuple]:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — any unreadable file is a user error
        raise ImportRejected([f"classeur illisible : {path.name} ({exc})"]) from exc
    try:
        ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
        return [tuple(row) for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _code(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return f"{value:05d}"
    return _clean(value)


def _where(code_insee: str | None) -> str:
    return f"commune {code_insee}" if code_insee else "agglomération"


def import_workbook(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    reviewer: str,
    *,
    now: dt.datetime | None = None,
) -> ImportResult:
    """Record the rows whose status or comment changed; reject the whole file on any error."""
    ensure_review_tables(con)
    _require_values(con)
    reviewer = _clean(reviewer)
    if reviewer is None:
        raise ImportRejected(['le nom du relecteur est obligatoire (--reviewer "Nom")'])
    rows = _read_sheet(path)
    if not rows:
        raise ImportRejected([f"{path.name} : feuille vide"])
    headers = [_clean(h) for h in rows[0]]
    missing = [h for h in REQUIRED_HEADERS if h not in headers]
    if missing:
        raise ImportRejected(
            [f"{path.name} : colonne(s) absente(s) de la ligne d'en-tête : {', '.join(missing)}"]
        )
    col = {h: headers.index(h) for h in headers if h}
    problems: list[str] = []
    result = ImportResult()
    pending = []
    seen: dict[tuple, int] = {}
    values_by_year: dict[int, dict] = {}
    reviews_by_year: dict[int, dict] = {}

    def cell(row, title):
        index = col.get(title)
        return row[index] if index is not None and index < len(row) else None

    for number, row in enumerate(rows[1:], start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in row):
            continue
        raw_year = cell(row, H_YEAR)
        try:
            year = int(raw_year)
            if isinstance(raw_year, float) and not raw_year.is_integer():
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"ligne {number} : année « {raw_year} » invalide")
            continue
        indicator_id = _clean(cell(row, H_ID))
        if indicator_id is None:
            problems.append(f"ligne {number} : identifiant d'indicateur manquant")
            continue
        code = _code(cell(row, H_CODE))
        if year not in values_by_year:
            values_by_year[year] = _current_values(con, year)
            reviews_by_year[year] = _current_reviews(con, year)
        key = (indicator_id, code)
        if key not in values_by_year[year]:
            problems.append(
                f"ligne {number} : valeur inconnue en {year} : indicateur « {indicator_id} », "
                f"{_where(code)}"
            )
            continue
        if (year, *key) in seen:
            problems.append(
                f"ligne {number} : même valeur que la ligne {seen[(year, *key)]} "
                f"({indicator_id}, {_where(code)})"
            )
            continue
        seen[(year, *key)] = number
        raw_status = _clean(cell(row, H_STATUS))
        comment = _clean(cell(row, H_COMMENT))
        current_status, current_comment = reviews_by_year[year].get(key, (None, None))
        if raw_status is None:
            if current_status is not None:
                problems.append(
                    f"ligne {number} : statut effacé alors que la valeur est revue "
                    f"« {current_status} » ; un statut ne s'efface pas, choisissez-en un"
                )
            elif comment is not None:
                problems.append(f"ligne {number} : commentaire sans statut ({indicator_id})")
            continue
        status = normalize_status(raw_status)
        if status is None:
            problems.append(
                f"ligne {number} : statut « {raw_status} » inconnu ; statuts admis : {STATUS_HELP}"
            )
            continue
        if status in NEEDS_COMMENT and comment is None:
            problems.append(
                f"ligne {number} : un commentaire est obligatoire pour le statut « {status} » "
                f"({indicator_id}, {_where(code)})"
            )
            continue
        if status == current_status and comment == current_comment:
            result.unchanged += 1
            continue
        current_value = values_by_year[year][key]
        shown = cell(row, H_VALUE)
        if (
            isinstance(shown, int | float)
            and current_value is not None
            and not math.isclose(float(shown), current_value, rel_tol=1e-9, abs_tol=1e-9)
        ):
            result.warnings.append(
                f"ligne {number} : la valeur a changé depuis l'export ({shown} → {current_value}) ; "
                "le statut porte sur la valeur actuelle"
            )
        pending.append((year, indicator_id, code, status, comment, current_value))
    if problems:
        raise ImportRejected(problems)
    stamp = now or dt.datetime.now().replace(microsecond=0)
    with transaction(con):
        for year, indicator_id, code, status, comment, value in pending:
            _insert(
                con,
                year,
                indicator_id,
                code,
                status,
                comment,
                reviewer,
                value,
                f"import {path.name}",
                stamp,
            )
    result.recorded = len(pending)
    return result
