"""The failed rows of an expectation, or its recorded unexpected values, as HTML tables in
French on the checks page (``controles.html``).

A row is shown as a reader names it: lineage (file, sheet, row), indicator with its label,
commune with its name (or the agglomeration), year, value with its unit, then the columns
the expectation checks and those its suite names a row by; rows sorted by what is shown, at
most ``MAX_ROWS`` under one expectation. Every text put in the page is escaped (``_e``).
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

from dagster_project.lib.french import format_number
from dagster_project.release.exports.checks.rows import Found, Labels, expectation_columns
from dagster_project.release.exports.checks.values import _missing, amount_text, cell_text

MAX_ROWS = 200  # rows shown under one failed expectation (the count says how many more)
AGGLOMERATION = "Agglomération"

# French headers of the columns the prepared datasets have (quality/datasets.py); any other
# column is shown under its own name.
COLUMN_LABELS = {
    "_file_name": "Fichier",
    "_sheet": "Feuille",
    "_row_number": "Ligne",
    "_delivery_id": "Livraison",
    "_campaign_year": "Année de campagne",
    "indicator_id": "Indicateur",
    "code_insee": "Commune",
    "year": "Année",
    "value": "Valeur",
    "previous_year": "Année précédente",
    "previous_value": "Valeur de l'année précédente",
    "change_pct": "Évolution sur un an",
    "commune_rows": "Lignes communales",
    "expected_communes": "Communes membres",
    "missing_communes": "Communes manquantes (nombre)",
    "unknown_communes": "Communes hors agglomération (nombre)",
    "missing_list": "Communes manquantes",
    "in_catalogue": "Au catalogue",
    "allow_negative": "Négatif autorisé",
    "breakdown": "Découpage",
    "kind": "Type de valeur",
    "unit": "Unité",
}
_LINEAGE = ("_file_name", "_sheet", "_row_number")
_NAMED = ("indicator_id", "code_insee", "year", "value")
_WITH_UNIT = ("value", "previous_value")
_IDENTIFIERS = ("year", "previous_year", "_row_number", "_campaign_year")  # no separator
_UNIT_COLUMNS = ("unit", "unit_label")


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _template_columns(template: str | None) -> list[str]:
    return re.findall(r"{(\w+)", template or "")


def shown_columns(df_columns, config: dict, meta: dict) -> list[str]:
    """Columns shown for the failed rows: lineage, indicator, commune, year, value, then the
    expectation's columns and those its suite names a row by (``example_fr``)."""
    present = [str(c) for c in df_columns]
    wanted = [*_LINEAGE, *_NAMED]
    wanted += expectation_columns(config.get("kwargs") or {})
    wanted += _template_columns(meta.get("example_fr"))
    shown: list[str] = []
    for column in wanted:
        if column in present and column not in shown and column not in _UNIT_COLUMNS:
            shown.append(column)
    return shown


def _header(column: str) -> str:
    label = COLUMN_LABELS.get(column)
    return _e(label) if label else f"<code>{_e(column)}</code>"


def _cell_html(column: str, row: dict, labels: Labels) -> str:
    value = row.get(column)
    if column == "indicator_id" and not _missing(value):
        label = labels.indicators.get(str(value), "")
        named = f"{_e(label)}<br>" if label else ""
        return f"{named}<code>{_e(value)}</code>"
    if column == "code_insee":
        if _missing(value) or value == "":
            return _e(AGGLOMERATION)
        name = labels.communes.get(str(value), "")
        return f"{_e(name)} (<code>{_e(value)}</code>)" if name else f"<code>{_e(value)}</code>"
    if column in _WITH_UNIT:
        return _e(amount_text(value, row.get("unit"), row.get("unit_label")))
    if column == "change_pct":
        return _e("vide" if _missing(value) else f"{cell_text(value)}\u202f%")
    return _e(cell_text(value, identifier=column in _IDENTIFIERS))


def _numeric(column: str) -> bool:
    return column in (*_WITH_UNIT, "change_pct", "commune_rows", "expected_communes") or (
        column.endswith("_communes")
    )


def _class(column: str) -> str:
    return ' class="nombre"' if _numeric(column) else ""


def _sorted_rows(frame, columns: list[str]):
    """The rows sorted by what is shown (whatever order the warehouse gave them in)."""
    if not len(frame):
        return frame
    try:
        return frame.sort_values(columns, kind="mergesort", na_position="first")
    except TypeError:  # mixed types in a column: by their text
        return frame.sort_values(
            columns, kind="mergesort", na_position="first", key=lambda s: s.map(str)
        )


def rows_table(found: Found, config: dict, meta: dict, labels: Labels, caption: str) -> str:
    frame = found.rows
    columns = shown_columns(frame.columns, config, meta)
    extra = [c for c in _UNIT_COLUMNS if c in frame.columns]
    frame = _sorted_rows(frame, columns)
    lines = [
        "<table>",
        f"<caption>{_e(caption)}</caption>",
        "<thead><tr>"
        + "".join(f'<th scope="col"{_class(c)}>{_header(c)}</th>' for c in columns)
        + "</tr></thead>",
        "<tbody>",
    ]
    records = frame[columns + extra].head(MAX_ROWS).to_dict("records")
    for row in records:
        cells = []
        for n, column in enumerate(columns):
            tag = "th" if n == 0 else "td"
            scope = ' scope="row"' if n == 0 else ""
            cells.append(f"<{tag}{scope}{_class(column)}>{_cell_html(column, row, labels)}</{tag}>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def values_table(result: dict, caption: str) -> str:
    """The recorded unexpected values with their counts, when the rows cannot be named."""
    counts: dict[str, int] = {}
    listed = result.get("partial_unexpected_counts")
    if listed:
        for item in listed:
            text = cell_text(item.get("value"))
            counts[text] = counts.get(text, 0) + int(item.get("count") or 0)
    else:
        for value in result.get("partial_unexpected_list") or []:
            text = cell_text(value)
            counts[text] = counts.get(text, 0) + 1
    if not counts:
        return '<p class="note">Aucune valeur en écart n\'a été relevée par le contrôle.</p>'
    lines = [
        "<table>",
        f"<caption>{_e(caption)}</caption>",
        '<thead><tr><th scope="col">Valeur relevée</th>'
        '<th scope="col" class="nombre">Lignes</th></tr></thead>',
        "<tbody>",
    ]
    for text, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        lines.append(
            f'<tr><th scope="row">{_e(text)}</th>'
            f'<td class="nombre">{_e(format_number(count))}</td></tr>'
        )
    lines.append("</tbody></table>")
    return "\n".join(lines)
