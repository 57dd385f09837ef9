"""``rapport_<release_id>.xlsx``: the release as a workbook for people (xlsxwriter).

One sheet per priority (agglomeration values, in the report's order), then one sheet with
the commune breakdown of every indicator that has one; a first sheet says what the file is.
French headers, French unit names, thousands separators, percentages, dates JJ/MM/AAAA, bold
header, frozen panes, column widths and filters. Then two sheets of native Excel charts, each
beside the table it draws: « Évolutions » (per priority, the largest one-year changes of the
agglomeration values, in %) and « Communes en tête » (per indicator broken down by commune,
the year's ten communes with the highest value). Fixed document properties and zip dates:
the same release gives the same bytes (the charts' data are cached in the file, so a viewer
that does not recalculate still draws them).
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path

import xlsxwriter

from dagster_project.release.exports.common import (
    PRIORITY_TITLES,
    PUBLISHER,
    ReleaseData,
    Row,
    is_missing,
    unit_fr,
)

PRESENTATION = "Présentation"
COMMUNES = "Détail par commune"
CHANGES = "Évolutions"
TOP_COMMUNES = "Communes en tête"
TOP_CHANGES = 15  # bars per priority in « Évolutions »
TOP_COUNT = 10  # communes per indicator in « Communes en tête »
ROW_PIXELS = 20  # default row height (15 points)
HEADERS = [
    ("Objectif", 45),
    ("Indicateur", 60),
    ("Valeur", 16),
    ("Unité", 18),
    ("Au", 12),
    ("Année précédente", 17),
    ("Évolution", 14),
    ("Évolution %", 13),
    ("Cible", 14),
    ("Statut de revue", 16),
    ("Commentaire", 50),
    ("Identifiant", 36),
]
COMMUNE_HEADERS = [
    ("Priorité", 14),
    ("Objectif", 40),
    ("Indicateur", 55),
    ("Code INSEE", 11),
    ("Commune", 28),
    ("Valeur", 16),
    ("Unité", 18),
    ("Au", 12),
    ("Année précédente", 17),
    ("Évolution", 14),
    ("Évolution %", 13),
    ("Statut de revue", 16),
    ("Commentaire", 40),
    ("Identifiant", 36),
]
COLUMN_NOTES = [
    ("Objectif", "objectif (section) du rapport auquel l'indicateur se rattache"),
    ("Valeur", "valeur publiée pour l'année, figée dans la publication"),
    ("Unité", "unité de la valeur"),
    ("Au", "date à laquelle la valeur est arrêtée (JJ/MM/AAAA)"),
    ("Année précédente", "valeur de l'année précédente (même indicateur, même périmètre)"),
    ("Évolution", "valeur moins valeur de l'année précédente"),
    ("Évolution %", "évolution rapportée à la valeur de l'année précédente"),
    ("Cible", "valeur de l'objectif chiffré lié, s'il existe"),
    ("Statut de revue", "avis de la revue des valeurs (vide si aucune revue n'est enregistrée)"),
    ("Commentaire", "précision sur la valeur, puis commentaire de la revue"),
    ("Identifiant", "identifiant stable de l'indicateur (fichiers values.csv / values.parquet)"),
]


def sheet_titles(data: ReleaseData) -> list[str]:
    """Sheet names in order (Excel limits them to 31 characters)."""
    titles = [PRESENTATION] + [PRIORITY_TITLES[p][:31] for p in data.priorities]
    if data.has_communes():
        titles.append(COMMUNES)
    if any(_largest_changes(data.agglomeration(p)) for p in data.priorities):
        titles.append(CHANGES)
    if data.has_communes():
        titles.append(TOP_COMMUNES)
    return titles


class _Formats:
    def __init__(self, book: xlsxwriter.Workbook):
        base = {"font_name": "Calibri", "font_size": 10, "valign": "top"}
        self.header = book.add_format(
            {
                **base,
                "bold": True,
                "bg_color": "#DCE6F1",
                "bottom": 1,
                "text_wrap": True,
                "valign": "vcenter",
            }
        )
        self.text = book.add_format(base)
        self.wrap = book.add_format({**base, "text_wrap": True})
        self.integer = book.add_format({**base, "num_format": "#,##0"})
        self.decimal = book.add_format({**base, "num_format": "#,##0.00"})
        self.change_integer = book.add_format({**base, "num_format": "+#,##0;-#,##0;0"})
        self.change_decimal = book.add_format({**base, "num_format": "+#,##0.00;-#,##0.00;0.00"})
        self.percent = book.add_format({**base, "num_format": "+0.0 %;-0.0 %;0.0 %"})
        self.date = book.add_format({**base, "num_format": "dd/mm/yyyy", "align": "left"})
        self.title = book.add_format({"font_name": "Calibri", "font_size": 16, "bold": True})
        self.label = book.add_format({**base, "bold": True})
        self.subtitle = book.add_format({"font_name": "Calibri", "font_size": 12, "bold": True})


def _number(ws, row: int, col: int, value, fmt: _Formats, change: bool = False) -> None:
    if is_missing(value):
        ws.write_blank(row, col, None, fmt.text)
        return
    whole = float(value).is_integer()
    if change:
        style = fmt.change_integer if whole else fmt.change_decimal
    else:
        style = fmt.integer if whole else fmt.decimal
    ws.write_number(row, col, float(value), style)


def _percent(ws, row: int, col: int, value, fmt: _Formats) -> None:
    if is_missing(value):
        ws.write_blank(row, col, None, fmt.text)
    else:
        ws.write_number(row, col, float(value) / 100.0, fmt.percent)


def _date(ws, row: int, col: int, value, fmt: _Formats) -> None:
    if value is None:
        ws.write_blank(row, col, None, fmt.text)
    else:
        ws.write_datetime(row, col, dt.datetime(value.year, value.month, value.day), fmt.date)


def _text(ws, row: int, col: int, value, style) -> None:
    if value:
        ws.write_string(row, col, str(value), style)
    else:
        ws.write_blank(row, col, None, style)


def _header(ws, headers: list[tuple[str, int]], fmt: _Formats, rows: int) -> None:
    for col, (title, width) in enumerate(headers):
        ws.write_string(0, col, title, fmt.header)
        ws.set_column(col, col, width)
    ws.set_row(0, 30)
    ws.autofilter(0, 0, max(rows, 1), len(headers) - 1)


def _priority_sheet(ws, rows: list[Row], fmt: _Formats) -> None:
    _header(ws, HEADERS, fmt, len(rows))
    ws.freeze_panes(1, 2)
    for i, r in enumerate(rows, start=1):
        _text(ws, i, 0, r.objective, fmt.text)
        _text(ws, i, 1, r.label_fr, fmt.text)
        _number(ws, i, 2, r.value, fmt)
        _text(ws, i, 3, unit_fr(r.unit), fmt.text)
        _date(ws, i, 4, r.as_of_date, fmt)
        _number(ws, i, 5, r.previous_year_value, fmt)
        _number(ws, i, 6, r.change, fmt, change=True)
        _percent(ws, i, 7, r.change_pct, fmt)
        _number(ws, i, 8, r.target_value, fmt)
        _text(ws, i, 9, r.review_status, fmt.text)
        _text(ws, i, 10, r.comment_text, fmt.text)
        _text(ws, i, 11, r.indicator_id, fmt.text)


def _commune_sheet(ws, rows: list[Row], fmt: _Formats) -> None:
    _header(ws, COMMUNE_HEADERS, fmt, len(rows))
    ws.freeze_panes(1, 5)
    for i, r in enumerate(rows, start=1):
        _text(ws, i, 0, PRIORITY_TITLES.get(r.priority, r.priority), fmt.text)
        _text(ws, i, 1, r.objective, fmt.text)
        _text(ws, i, 2, r.label_fr, fmt.text)
        _text(ws, i, 3, r.code_insee, fmt.text)
        _text(ws, i, 4, r.commune_name, fmt.text)
        _number(ws, i, 5, r.value, fmt)
        _text(ws, i, 6, unit_fr(r.unit), fmt.text)
        _date(ws, i, 7, r.as_of_date, fmt)
        _number(ws, i, 8, r.previous_year_value, fmt)
        _number(ws, i, 9, r.change, fmt, change=True)
        _percent(ws, i, 10, r.change_pct, fmt)
        _text(ws, i, 11, r.review_status, fmt.text)
        _text(ws, i, 12, r.comment_text, fmt.text)
        _text(ws, i, 13, r.indicator_id, fmt.text)


# --------------------------------------------------------------------------------------------
# Charts: native Excel charts beside the table they draw
# --------------------------------------------------------------------------------------------


def _finite(value) -> bool:
    return not is_missing(value) and math.isfinite(float(value))


def _largest_changes(rows: list[Row]) -> list[Row]:
    """The ``TOP_CHANGES`` agglomeration values with the largest one-year change in % (in
    absolute value), from the largest rise to the largest fall."""
    with_change = [r for r in rows if _finite(r.change_pct)]
    chosen = sorted(with_change, key=lambda r: (-abs(r.change_pct), r.order, r.indicator_id))
    return sorted(chosen[:TOP_CHANGES], key=lambda r: (-r.change_pct, r.order, r.indicator_id))


def _top_communes(rows: list[Row]) -> list[Row]:
    """The ``TOP_COUNT`` commune values of one indicator, highest first (ties: by name)."""
    ranked = [r for r in rows if _finite(r.value)]
    ranked.sort(key=lambda r: (-float(r.value), r.commune_name.casefold(), r.code_insee or ""))
    return ranked[:TOP_COUNT]


def _cached(values) -> list[str]:
    # the chart's own copy of its numbers (xlsxwriter's precision): drawn without recalculation
    return [f"{float(v):.16g}" for v in values]


def _bar_chart(
    book,
    sheet: str,
    first: int,
    last: int,
    labels: list[str],
    values: list[float],
    *,
    title: str,
    number_format: str,
    colour: str,
):
    """A horizontal bar chart of column B (values) against column A (labels), rows
    ``first``..``last`` of ``sheet``, in the table's order from top to bottom."""
    chart = book.add_chart({"type": "bar"})
    chart.add_series(
        {
            "name": title,
            "categories": [sheet, first, 0, last, 0],
            "values": [sheet, first, 1, last, 1],
            "categories_data": labels,
            "values_data": _cached(values),
            "fill": {"color": colour},
            "invert_if_negative": False,
            "data_labels": {"value": True, "num_format": number_format},
            "gap": 60,
        }
    )
    chart.set_title({"name": title, "name_font": {"size": 11, "bold": True}})
    chart.set_legend({"none": True})
    chart.set_y_axis({"reverse": True, "num_font": {"size": 9}})  # the categories, top first
    chart.set_x_axis(
        {
            "num_format": number_format,
            "major_gridlines": {"visible": True, "line": {"color": "#D9D9D9"}},
            "num_font": {"size": 9},
        }
    )
    return chart


def _chart_rows(height: int) -> int:
    return math.ceil(height / ROW_PIXELS) + 1


def _changes_sheet(ws, book, data: ReleaseData, fmt: _Formats) -> None:
    """Per priority: the largest one-year changes (%) of the agglomeration values, as a table
    (indicator, change, value, previous year, unit) with its bar chart beside it."""
    ws.set_column(0, 0, 60)
    ws.set_column(1, 1, 13)
    ws.set_column(2, 3, 16)
    ws.set_column(4, 4, 18)
    ws.write_string(0, 0, f"Évolutions {data.year - 1}-{data.year}", fmt.title)
    ws.write_string(
        1,
        0,
        f"Par priorité, les {TOP_CHANGES} valeurs d'agglomération dont l'évolution sur un an "
        "est la plus forte (hausse ou baisse), en % de la valeur de l'année précédente.",
        fmt.text,
    )
    row = 3
    for priority in data.priorities:
        rows = _largest_changes(data.agglomeration(priority))
        if not rows:
            continue
        title = PRIORITY_TITLES.get(priority, priority)
        ws.write_string(row, 0, title, fmt.subtitle)
        for col, header in enumerate(
            ["Indicateur", "Évolution %", "Valeur", "Année précédente", "Unité"]
        ):
            ws.write_string(row + 1, col, header, fmt.header)
        first = row + 2
        for i, r in enumerate(rows):
            _text(ws, first + i, 0, r.label_fr, fmt.text)
            _percent(ws, first + i, 1, r.change_pct, fmt)
            _number(ws, first + i, 2, r.value, fmt)
            _number(ws, first + i, 3, r.previous_year_value, fmt)
            _text(ws, first + i, 4, unit_fr(r.unit), fmt.text)
        height = max(240, 70 + 26 * len(rows))
        chart = _bar_chart(
            book,
            CHANGES,
            first,
            first + len(rows) - 1,
            [r.label_fr for r in rows],
            [float(r.change_pct) / 100.0 for r in rows],
            title=f"{title} : évolution {data.year - 1}-{data.year}",
            number_format="+0 %;-0 %;0 %",
            colour="#1F4E79",
        )
        chart.set_size({"width": 620, "height": height})
        ws.insert_chart(row, 6, chart)
        row += max(len(rows) + 3, _chart_rows(height) + 1)


def _top_communes_sheet(ws, book, data: ReleaseData, fmt: _Formats) -> None:
    """Per indicator broken down by commune: the year's ten communes with the highest value,
    as a table (commune, value, code INSEE) with its bar chart beside it."""
    ws.set_column(0, 0, 30)
    ws.set_column(1, 1, 16)
    ws.set_column(2, 2, 11)
    ws.write_string(0, 0, f"Communes en tête en {data.year}", fmt.title)
    ws.write_string(
        1,
        0,
        f"Pour chaque indicateur donné par commune, les {TOP_COUNT} communes dont la valeur "
        f"{data.year} est la plus élevée.",
        fmt.text,
    )
    row = 3
    seen: set[str] = set()
    for r0 in data.communes():
        if r0.indicator_id in seen:
            continue
        seen.add(r0.indicator_id)
        rows = _top_communes(data.commune_rows(r0.indicator_id))
        if not rows:
            continue
        unit = unit_fr(r0.unit)
        title = f"{r0.label_fr} ({unit})" if unit else r0.label_fr
        ws.write_string(row, 0, title, fmt.subtitle)
        for col, header in enumerate(["Commune", "Valeur", "Code INSEE"]):
            ws.write_string(row + 1, col, header, fmt.header)
        first = row + 2
        for i, r in enumerate(rows):
            _text(ws, first + i, 0, r.commune_name, fmt.text)
            _number(ws, first + i, 1, r.value, fmt)
            _text(ws, first + i, 2, r.code_insee, fmt.text)
        whole = all(float(r.value).is_integer() for r in rows)
        height = max(240, 70 + 26 * len(rows))
        chart = _bar_chart(
            book,
            TOP_COMMUNES,
            first,
            first + len(rows) - 1,
            [r.commune_name for r in rows],
            [float(r.value) for r in rows],
            title=f"{r0.label_fr} en {data.year}"[:250],
            number_format="#,##0" if whole else "#,##0.0",
            colour="#2E75B6",
        )
        chart.set_size({"width": 620, "height": height})
        ws.insert_chart(row, 4, chart)
        row += max(len(rows) + 3, _chart_rows(height) + 1)


def _presentation(ws, data: ReleaseData, titles: list[str], fmt: _Formats) -> None:
    ws.set_column(0, 0, 26)
    ws.set_column(1, 1, 90)
    ws.write_string(0, 0, f"Rapport d'activité {data.year}", fmt.title)
    agglo = sum(1 for r in data.rows if r.code_insee is None)
    facts = [
        ("Publication", data.release_id),
        ("Année", str(data.year)),
        ("Producteur", PUBLISHER),
        (
            "Valeurs",
            f"{len(data.rows)} ({agglo} pour l'agglomération, "
            f"{len(data.rows) - agglo} par commune)",
        ),
        ("Données ouvertes", "values.csv et values.parquet, dans le même dossier"),
        ("Preuves de contrôle", "data_docs/index.html (résultats des contrôles de qualité)"),
        ("Feuilles", ", ".join(titles[1:])),
    ]
    row = 2
    for label, value in facts:
        ws.write_string(row, 0, label, fmt.label)
        ws.write_string(row, 1, value, fmt.wrap)
        row += 1
    row += 1
    ws.write_string(row, 0, "Colonnes", fmt.label)
    row += 1
    for label, value in COLUMN_NOTES:
        ws.write_string(row, 0, label, fmt.text)
        ws.write_string(row, 1, value, fmt.wrap)
        row += 1


def write_workbook(data: ReleaseData, path: Path, created: dt.datetime) -> Path:
    """Write the workbook; ``created`` is the fixed creation date stored in its properties."""
    # constant_memory: each row goes to a temporary file as soon as the next one starts (at
    # 100 times the agglomeration the commune sheet has 390 k rows: gigabytes as cell
    # objects). Every sheet is therefore written strictly row by row, top to bottom, and a
    # row's cells left to right: header row (with its height) first, then the values;
    # column widths, panes and filters are not cell data and can be set at any time. Strings
    # are stored inline rather than in the shared-strings table (same cells for a reader).
    # The temporary files live in a folder removed even when writing fails.
    with tempfile.TemporaryDirectory(prefix="kpi-xlsx-") as tmpdir:
        book = xlsxwriter.Workbook(
            str(path),
            {
                "constant_memory": True,
                "tmpdir": tmpdir,
                "strings_to_numbers": False,
                "strings_to_urls": False,
            },
        )
        _write_sheets(book, data, created)
        book.close()
    return path


def _write_sheets(book: xlsxwriter.Workbook, data: ReleaseData, created: dt.datetime) -> None:
    book.set_properties(
        {
            "title": f"Rapport d'activité {data.year} — {data.release_id}",
            "subject": f"Indicateurs {data.year} du Projet de territoire",
            "author": PUBLISHER,
            "company": PUBLISHER,
            "manager": "",
            "category": "Rapport d'activité",
            "keywords": f"indicateurs, {data.year}, {data.release_id}",
            "comments": f"Publication {data.release_id}, générée par l'entrepôt d'indicateurs.",
            "created": created.replace(tzinfo=None),
        }
    )
    fmt = _Formats(book)
    titles = sheet_titles(data)
    _presentation(book.add_worksheet(titles[0]), data, titles, fmt)
    for priority, title in zip(data.priorities, titles[1:], strict=False):
        _priority_sheet(book.add_worksheet(title), data.agglomeration(priority), fmt)
    communes = data.communes()
    if communes:
        _commune_sheet(book.add_worksheet(COMMUNES), communes, fmt)
    if CHANGES in titles:
        _changes_sheet(book.add_worksheet(CHANGES), book, data, fmt)
    if TOP_COMMUNES in titles:
        _top_communes_sheet(book.add_worksheet(TOP_COMMUNES), book, data, fmt)
