"""Validation status of each indicator value, set by the people who check the figures.

Three French levels (``STATUSES``), recorded in ``review.value_reviews`` — one row per
decision, never updated: the history stays, and the latest decision per value
(year, indicator, commune) wins (view ``review.current_reviews``). A value of the year in
``anomalie`` blocks ``kpi freeze``; every release row carries the status and comment in
force when it was frozen.

Reviews are made one by one (``kpi review set``) or in a workbook: ``export_workbook``
writes one row per value of the year (label, value, unit, previous year, change, current
status with a drop-down list, comment) and ``import_workbook`` records the rows whose
status or comment changed, all or nothing: any unknown value or bad status rejects the file
with French messages naming the rows.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.contracts.reference import direction_fr, unit_label
from dagster_project.warehouse.schema import REVIEW_STATUSES, ensure

# « sans anomalie apparente », « présomption d'anomalie », « anomalie »: declared with the
# table that accepts only them, review.value_reviews (warehouse.schema.REVIEW_STATUSES)
STATUS_OK, STATUS_SUSPECT, STATUS_ANOMALY = REVIEW_STATUSES
STATUSES = [STATUS_OK, STATUS_SUSPECT, STATUS_ANOMALY]
NOT_REVIEWED = "non revu"
# Statuses that need a comment saying what is wrong.
NEEDS_COMMENT = {STATUS_SUSPECT, STATUS_ANOMALY}

_ALIASES = {
    "ok": STATUS_OK,
    "sans anomalie": STATUS_OK,
    "sans anomalie apparente": STATUS_OK,
    "presomption": STATUS_SUSPECT,
    "presomption d'anomalie": STATUS_SUSPECT,
    "presomption anomalie": STATUS_SUSPECT,
    "anomalie": STATUS_ANOMALY,
}
STATUS_HELP = (
    "sans anomalie apparente, présomption d'anomalie ou anomalie (alias : ok, presomption)"
)


class ReviewError(ValueError):
    """A review cannot be recorded; the message (French) says why."""


class ImportRejected(ValueError):
    """The workbook was not imported; ``problems`` lists every faulty row (French)."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def ensure_review_tables(con: duckdb.DuckDBPyConnection) -> None:
    """review.value_reviews and the view review.current_reviews (``warehouse.schema``)."""
    ensure(con, "review")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("`", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().replace("_", " ").split())


def normalize_status(text: str | None) -> str | None:
    """The canonical French status for a level or an alias; None when unknown."""
    if text is None:
        return None
    return _ALIASES.get(_fold(str(text)))


def _clean(text) -> str | None:
    if text is None:
        return None
    text = str(text).strip()
    return text or None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    }


def _where(code_insee: str | None) -> str:
    return f"commune {code_insee}" if code_insee else "agglomération"


def _require_values(con: duckdb.DuckDBPyConnection) -> None:
    if "marts.fct_indicator_values" not in _tables(con):
        raise ReviewError("aucune valeur d'indicateur dans l'entrepôt : lancez d'abord `kpi run`")


def _current_values(con: duckdb.DuckDBPyConnection, year: int) -> dict:
    return {
        (ind, code): value
        for ind, code, value in con.execute(
            "select indicator_id, code_insee, value from marts.fct_indicator_values where year = ?",
            [year],
        ).fetchall()
    }


def _current_reviews(con: duckdb.DuckDBPyConnection, year: int) -> dict:
    return {
        (ind, code): (status, comment)
        for ind, code, status, comment in con.execute(
            "select indicator_id, code_insee, status, comment from review.current_reviews "
            "where year = ?",
            [year],
        ).fetchall()
    }


def _insert(con, year, indicator_id, code_insee, status, comment, reviewer, value, origin, now):
    con.execute(
        "insert into review.value_reviews (year, indicator_id, code_insee, status, comment, "
        "reviewer, reviewed_at, value_at_review, origin) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [year, indicator_id, code_insee, status, comment, reviewer, now, value, origin],
    )


def set_review(
    con: duckdb.DuckDBPyConnection,
    year: int,
    indicator_id: str,
    code_insee: str | None,
    status: str,
    comment: str | None,
    reviewer: str,
    *,
    origin: str = "kpi review set",
    now: dt.datetime | None = None,
) -> str:
    """Record one decision on a value of the warehouse; returns the canonical status."""
    ensure_review_tables(con)
    _require_values(con)
    canonical = normalize_status(status)
    if canonical is None:
        raise ReviewError(f"statut « {status} » inconnu ; statuts admis : {STATUS_HELP}")
    reviewer = _clean(reviewer)
    if reviewer is None:
        raise ReviewError('le nom du relecteur est obligatoire (--reviewer "Nom")')
    comment = _clean(comment)
    if canonical in NEEDS_COMMENT and comment is None:
        raise ReviewError(f"un commentaire est obligatoire pour le statut « {canonical} »")
    code_insee = _clean(code_insee)
    values = _current_values(con, year)
    if (indicator_id, code_insee) not in values:
        communes = sum(1 for ind, code in values if ind == indicator_id and code)
        if not any(ind == indicator_id for ind, _ in values):
            raise ReviewError(f"l'indicateur « {indicator_id} » n'a aucune valeur en {year}")
        if code_insee is None:
            raise ReviewError(
                f"l'indicateur « {indicator_id} » n'a pas de valeur d'agglomération en {year} "
                f"({communes} valeur(s) par commune) : précisez --commune CODE_INSEE"
            )
        raise ReviewError(
            f"l'indicateur « {indicator_id} » n'a pas de valeur pour la commune {code_insee} en {year}"
        )
    _insert(
        con,
        year,
        indicator_id,
        code_insee,
        canonical,
        comment,
        reviewer,
        values[(indicator_id, code_insee)],
        origin,
        now or dt.datetime.now().replace(microsecond=0),
    )
    return canonical


def anomalies(con: duckdb.DuckDBPyConnection, year: int) -> list[dict]:
    """Values of the year whose current status is « anomalie » (they block the freeze)."""
    if "review.current_reviews" not in _tables(con):
        return []
    keys = ["indicator_id", "code_insee", "comment", "reviewer", "reviewed_at"]
    return [
        dict(zip(keys, row, strict=True))
        for row in con.execute(
            "select indicator_id, code_insee, comment, reviewer, reviewed_at "
            "from review.current_reviews where year = ? and status = ? "
            "order by indicator_id, code_insee nulls first",
            [year, STATUS_ANOMALY],
        ).fetchall()
    ]


# --------------------------------------------------------------------------- listing


@dataclass
class ReviewedValue:
    year: int
    indicator_id: str
    label: str | None
    department: str | None
    priority: str | None
    code_insee: str | None
    commune: str | None
    value: float | None
    unit: str | None
    previous_value: float | None
    status: str | None
    comment: str | None
    reviewer: str | None
    reviewed_at: dt.datetime | None
    value_at_review: float | None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous_value is None:
            return None
        return self.value - self.previous_value

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.previous_value:
            return None
        return 100.0 * self.change / abs(self.previous_value)

    @property
    def changed_since_review(self) -> bool:
        return (
            self.status is not None
            and self.value is not None
            and self.value_at_review is not None
            and not math.isclose(self.value, self.value_at_review, rel_tol=1e-12, abs_tol=1e-12)
        )


def reviewed_values(con: duckdb.DuckDBPyConnection, year: int) -> list[ReviewedValue]:
    """Every value of the year with its label, previous-year value and current review."""
    ensure_review_tables(con)
    _require_values(con)
    tables = _tables(con)
    label = "d.label_fr" if "marts.dim_indicators" in tables else "null"
    commune = "c.commune_name" if "marts.dim_communes" in tables else "null"
    joins = ""
    if "marts.dim_indicators" in tables:
        joins += (
            " left join (select indicator_id, any_value(label_fr) as label_fr "
            "from marts.dim_indicators group by 1) as d on d.indicator_id = f.indicator_id"
        )
    if "marts.dim_communes" in tables:
        joins += (
            " left join (select code_insee, any_value(commune_name) as commune_name "
            "from marts.dim_communes group by 1) as c on c.code_insee = f.code_insee"
        )
    rows = con.execute(
        f"""
        select f.year, f.indicator_id, {label}, f.department, f.priority, f.code_insee,
               {commune}, f.value, f.unit, p.value, r.status, r.comment, r.reviewer,
               r.reviewed_at, r.value_at_review
        from marts.fct_indicator_values as f
        left join marts.fct_indicator_values as p
          on p.year = f.year - 1 and p.indicator_id = f.indicator_id
         and p.code_insee is not distinct from f.code_insee
        left join review.current_reviews as r
          on r.year = f.year and r.indicator_id = f.indicator_id
         and r.code_insee is not distinct from f.code_insee
        {joins}
        where f.year = ?
        order by f.priority nulls last, f.indicator_id, f.code_insee nulls first
        """,
        [year],
    ).fetchall()
    return [ReviewedValue(*row) for row in rows]


def list_reviews(
    con: duckdb.DuckDBPyConnection, year: int, status: str | None = None
) -> list[ReviewedValue]:
    """Reviewed values of the year (or those with one status, or « non revu »)."""
    values = reviewed_values(con, year)
    if status is None:
        return [v for v in values if v.status is not None]
    if _fold(status) in ("non revu", "non revue", "nonrevu", "aucun"):
        return [v for v in values if v.status is None]
    canonical = normalize_status(status)
    if canonical is None:
        raise ReviewError(
            f"statut « {status} » inconnu ; statuts admis : {STATUS_HELP}, ou « non revu »"
        )
    return [v for v in values if v.status == canonical]


def status_counts(values: list[ReviewedValue]) -> dict[str, int]:
    counts = dict.fromkeys([*STATUSES, NOT_REVIEWED], 0)
    for v in values:
        counts[v.status or NOT_REVIEWED] += 1
    return counts


def history(
    con: duckdb.DuckDBPyConnection, year: int, indicator_id: str, code_insee: str | None
) -> list[dict]:
    """Every decision on one value, oldest first."""
    ensure_review_tables(con)
    keys = ["status", "comment", "reviewer", "reviewed_at", "value_at_review", "origin"]
    return [
        dict(zip(keys, row, strict=True))
        for row in con.execute(
            "select status, comment, reviewer, reviewed_at, value_at_review, origin "
            "from review.value_reviews where year = ? and indicator_id = ? "
            "and code_insee is not distinct from ? order by review_id",
            [year, indicator_id, code_insee],
        ).fetchall()
    ]


# --------------------------------------------------------------------------- workbook

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
    con.execute("begin transaction")
    try:
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
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    result.recorded = len(pending)
    return result
