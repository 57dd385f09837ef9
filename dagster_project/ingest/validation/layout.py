"""What around the cells would have the delivery read otherwise than it is seen.

What is read must be what a person sees, and a register fits on one sheet. These checks look
at the data sheet as a whole and at the other sheets: another sheet holding the header too,
or rows of the register without it; a data sheet that is hidden; hidden columns holding
data; rows above the header shaped like data rows; a header merged over columns that hold
values; and the data cells hidden by a merge (``_merge_cover``, for the cell rules).
"""

from __future__ import annotations

import math

from dagster_project.contracts.model import Contract
from dagster_project.ingest.normalize import CellError, clean_text, display, excel_error, is_empty
from dagster_project.ingest.readers.sheet import Sheet, column_letters
from dagster_project.ingest.validation.cells import _parse_cell
from dagster_project.ingest.validation.columns import _ColumnSpec
from dagster_project.ingest.validation.context import IngestContext
from dagster_project.ingest.validation.header import (
    MAX_HEADER_SEARCH_ROWS,
    _complete_headers,
    _Header,
    _match_header,
)
from dagster_project.ingest.validation.results import Problem


def _merge_cover(sheet: Sheet, header: _Header) -> dict[tuple[int, int], tuple]:
    """(row, column) of the data cells hidden by a merge (all but its first cell) -> merge."""
    columns = {index for index, _ in header.positions.values()}
    covered: dict[tuple[int, int], tuple] = {}
    last_row = len(sheet.rows) - 1
    for merge in sheet.merged:
        r0, c0, r1, c1 = merge
        if r1 <= header.row_index:
            continue
        for col in columns:
            if not c0 <= col <= c1:
                continue
            for row in range(max(r0, header.row_index + 1), min(r1, last_row) + 1):
                if (row, col) != (r0, c0):
                    covered[(row, col)] = merge
    return covered


def _column_has_data(sheet: Sheet, header_row: int, col: int) -> bool:
    return any(
        col < len(cells) and not is_empty(cells[col]) for cells in sheet.rows[header_row + 1 :]
    )


def _merged_headers_over_data(sheet: Sheet, header: _Header) -> list[tuple]:
    """Header cells of contract columns merged over other columns that hold data."""
    starts = {index for index, _ in header.positions.values()}
    found = []
    for merge in sheet.merged:
        r0, c0, r1, c1 = merge
        if (
            r0 <= header.row_index <= r1
            and c1 > c0
            and c0 in starts
            and any(_column_has_data(sheet, header.row_index, c) for c in range(c0 + 1, c1 + 1))
        ):
            found.append(merge)
    return found


def _filled_rows(sheet: Sheet) -> int:
    return sum(1 for cells in sheet.rows if sum(not is_empty(c) for c in cells) >= 2)


def _hidden_data_sheet(sheet: Sheet, header: _Header) -> Problem:
    """The only sheets holding the header are hidden: refused (what is read must be seen)."""
    if sheet.very_hidden:
        how = (
            "est « très masquée » (invisible dans Excel, même avec Afficher) : ce qui est lu "
            "doit être visible ; copiez ces lignes dans une feuille visible, supprimez la feuille "
            "masquée, puis déposez à nouveau le fichier"
        )
    else:
        how = (
            "est masquée : ce qui est lu doit être visible ; affichez-la (clic droit sur un "
            "onglet › Afficher), vérifiez-la, puis déposez à nouveau le fichier"
        )
    return Problem(
        f"la feuille « {sheet.name} », qui porte l'en-tête et les données, {how}",
        sheet.name,
        header.row_index + 1,
    )


def _filled_below(sheet: Sheet, row_index: int) -> int:
    """How many rows below ``row_index`` hold something."""
    return sum(1 for cells in sheet.rows[row_index + 1 :] if any(not is_empty(c) for c in cells))


def _other_headers(contract: Contract, sheets: list[Sheet], data_sheet: Sheet) -> list[Problem]:
    """The kit's « a register fits on one sheet »: any other sheet whose first rows hold the
    header too (a copy, the register's second half, an older version, hidden or not) is
    refused; its rows would otherwise be ignored without a word."""
    problems = []
    for other, header in _complete_headers(contract, sheets):
        if other is data_sheet:
            continue
        n = _filled_below(other, header.row_index)
        what = f"« {other.name} »" + (" (masquée)" if other.hidden else "")
        held = f" et {n} ligne(s) remplie(s)" if n else ", sans ligne de données"
        advice = (
            f"regroupez ses lignes sous l'en-tête de la feuille « {data_sheet.name} », puis "
            "supprimez-la"
            if n
            else "supprimez-la"
        )
        problems.append(
            Problem(
                f"la feuille {what} porte elle aussi l'en-tête{held}, mais seule la feuille "
                f"« {data_sheet.name} » est lue : un registre tient sur une seule feuille, ses "
                f"lignes seraient ignorées ; {advice}",
                other.name,
                header.row_index + 1,
            )
        )
    return problems


MAX_OTHER_SHEET_ROWS = 5000  # rows of another sheet looked at for rows of the register


def _rows_in_other_sheets(
    contract: Contract,
    sheets: list[Sheet],
    data_sheet: Sheet,
    specs: list[_ColumnSpec],
    ctx: IngestContext,
) -> list[Problem]:
    """Other sheets holding rows of the register without its header (the second half of a
    register pasted in « Feuil2 »): rows whose every required column, at the data sheet's
    positions, holds a valid value. Refused: they would be ignored (notes and instructions
    are not such rows; last year's rows are not either: their dates are out of the campaign)."""
    required = _required_specs(specs)
    with_header = {id(s) for s, _ in _complete_headers(contract, sheets)}
    problems = []
    for other in sheets:
        if other is data_sheet or id(other) in with_header or not required:
            continue
        found = [
            row_index
            for row_index, cells in enumerate(other.rows[:MAX_OTHER_SHEET_ROWS])
            if _row_of_register(cells, required, ctx)
        ]
        if not found:
            continue
        what = f"« {other.name} »" + (" (masquée)" if other.hidden else "")
        problems.append(
            Problem(
                f"la feuille {what} contient {len(found)} ligne(s) qui ont la forme des lignes "
                f"de données (mêmes colonnes que l'en-tête de la feuille « {data_sheet.name} », "
                "valeurs valides) mais pas l'en-tête : un registre tient sur une seule feuille, "
                f"ces lignes seraient ignorées ; collez-les sous l'en-tête de la feuille "
                f"« {data_sheet.name} », ou supprimez-les",
                other.name,
                found[0] + 1,
            )
        )
    return problems


def _required_specs(specs: list[_ColumnSpec]) -> list[_ColumnSpec]:
    return [s for s in specs if s.column.required and s.column.default is None]


def _register_rows_above(
    sheet: Sheet, header: _Header, specs: list[_ColumnSpec], ctx: IngestContext
) -> list[int]:
    """Rows above the header (up to 10 titles or blank rows) that are rows of the register."""
    required = _required_specs(specs)
    return [
        row_index
        for row_index, cells in enumerate(sheet.rows[: header.row_index])
        if required and _row_of_register(cells, required, ctx)
    ]


def _row_of_register(cells: list[object], required: list[_ColumnSpec], ctx) -> bool:
    for spec in required:
        raw = cells[spec.index] if spec.index < len(cells) else None
        if raw.__class__ is str:
            raw = clean_text(raw)
        if is_empty(raw) or excel_error(raw) or (raw.__class__ is float and math.isnan(raw)):
            return False
        try:
            _parse_cell(spec.column, raw, ctx, spec.header_text)
        except CellError:
            return False
    return True


def _hidden_columns_with_data(sheet: Sheet, header: _Header) -> list[str]:
    """The hidden columns of the data sheet holding something below its header, each named
    by its header (or its letter)."""
    if not sheet.hidden_columns:
        return []
    width = max(map(len, sheet.rows), default=0)
    names = {index: text for index, text in header.positions.values()}
    cells = sheet.rows[header.row_index] if header.row_index < len(sheet.rows) else []
    found = []
    for first, last in sheet.hidden_columns:
        for col in range(first, min(last, width - 1) + 1):
            if _column_has_data(sheet, header.row_index, col):
                title = display(cells[col]).strip() if col < len(cells) else ""
                found.append(names.get(col) or title or f"colonne {column_letters(col)}")
    return found


def _other_sheets_hint(contract: Contract, sheets: list[Sheet], data_sheet: Sheet) -> str:
    """Where the data went when the data sheet holds none (pasted in another sheet)."""
    hints = []
    for other in sheets:
        if other is data_sheet:
            continue
        filled = _filled_rows(other)
        if not filled:
            continue
        with_header = any(
            not _match_header(contract, list(cells), i).missing_required
            for i, cells in enumerate(other.rows[:MAX_HEADER_SEARCH_ROWS])
        )
        if with_header:
            hints.append(
                f"la feuille « {other.name} » porte elle aussi l'en-tête et {filled} lignes "
                f"remplies, mais seule la première feuille qui porte l'en-tête est lue "
                f"(« {data_sheet.name} ») : supprimez la feuille vide"
            )
        else:
            hints.append(
                f"la feuille « {other.name} » contient {filled} lignes remplies mais pas la ligne "
                f"d'en-tête : collez ces lignes sous l'en-tête de la feuille « {data_sheet.name} »"
            )
    return (" ; " + " ; ".join(hints)) if hints else ""
