"""Finding the data sheet and its header row.

The kit's data sheet is the first visible sheet whose first rows (up to 10 title or blank
rows, then the header) hold a row naming every required column of the contract
(``_find_data_sheet``); a header cell matches a column whatever its case, accents and
spaces, under any of the column's names. When no sheet holds such a row, the problem says
which columns the nearest one misses and why (a header spread over merged cells, a header
written almost as expected), or where a complete header sits further down.
"""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass, field

from dagster_project.contracts.model import Column, Contract
from dagster_project.ingest.normalize import display, is_empty, normalize_header
from dagster_project.ingest.readers.sheet import Sheet, cell_ref
from dagster_project.ingest.validation.results import Problem

MAX_HEADER_SEARCH_ROWS = 11  # up to 10 title or blank rows, then the header
MAX_HEADER_DIAGNOSTIC_ROWS = 60  # how far down a misplaced header is looked for (to say so)


@dataclass
class _Header:
    row_index: int  # 0-based
    # contract column name -> (0-based column index, header text as written)
    positions: dict[str, tuple[int, str]]
    unknown: list[tuple[int, str]]
    duplicates: list[tuple[str, str]]
    missing_required: list[str]
    # contract column -> the second header filling it (a commune given by code and by name)
    alternates: dict[str, tuple[int, str]] = field(default_factory=dict)


def _required_headers(contract: Contract) -> list[Column]:
    return [c for c in contract.columns if c.required and c.default is None]


def _match_header(contract: Contract, cells: list[object], row_index: int) -> _Header:
    by_key: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for index, cell in enumerate(cells):
        if is_empty(cell):
            continue
        by_key[normalize_header(cell)].append((index, display(cell).strip()))
    positions: dict[str, tuple[int, str]] = {}
    duplicates: list[tuple[str, str]] = []
    used: set[str] = set()
    alternates: dict[str, tuple[int, str]] = {}
    for column in contract.columns:
        for header in column.header_names:
            found = by_key.get(header)
            if not found:
                continue
            used.add(header)
            if len(found) > 1:
                duplicates.append((column.name, found[1][1]))
            if column.name in positions:
                alternates[column.name] = found[0]
            positions.setdefault(column.name, found[0])
    unknown = [(i, text) for key, hits in by_key.items() if key not in used for i, text in hits]
    missing = [c.name for c in _required_headers(contract) if c.name not in positions]
    return _Header(row_index, positions, sorted(unknown), duplicates, missing, alternates)


def _merged_ref(merge: tuple[int, int, int, int]) -> str:
    r0, c0, r1, c1 = merge
    return f"{cell_ref(r0, c0)}:{cell_ref(r1, c1)}"


def _header_hints(contract: Contract, sheet: Sheet, header: _Header) -> str:
    """Why a near-header misses columns: merged cells, headers that look like a column."""
    hints = []
    row = header.row_index
    vertical = [m for m in sheet.merged if m[2] > m[0] and m[0] <= row + 1 and m[2] >= row]
    if vertical:
        refs = ", ".join(_merged_ref(m) for m in vertical[:6])
        hints.append(
            f"l'en-tête est réparti sur plusieurs lignes avec des cellules fusionnées ({refs}) : "
            "il doit tenir sur une seule ligne ; défusionnez ces cellules et écrivez chaque "
            "en-tête sur la même ligne"
        )
    cells = sheet.rows[row] if row < len(sheet.rows) else []
    taken = {index for index, _ in header.positions.values()}
    written = [
        (display(cell).strip(), normalize_header(cell))
        for index, cell in enumerate(cells)
        if not is_empty(cell) and index not in taken
    ]
    for name in header.missing_required:
        for text, key in written:
            bare = normalize_header(re.sub(r"\(([^)]*)\)", r" \1", text)).strip("_")
            close = difflib.SequenceMatcher(None, key, name).ratio() >= 0.8
            if bare == name or close:
                hints.append(
                    f"l'en-tête « {text} » ne correspond pas à la colonne {name} : écrivez "
                    f"exactement {name} (majuscules, accents et espaces indifférents)"
                )
                break
    return (" ; " + " ; ".join(hints)) if hints else ""


def _complete_headers(contract: Contract, sheets: list[Sheet]) -> list[tuple[Sheet, _Header]]:
    """Every sheet whose first rows hold a row with every required column, with that row."""
    found = []
    for sheet in sheets:
        for row_index, cells in enumerate(sheet.rows[:MAX_HEADER_SEARCH_ROWS]):
            header = _match_header(contract, list(cells), row_index)
            if not header.missing_required:
                found.append((sheet, header))
                break
    return found


def _find_data_sheet(contract: Contract, sheets: list[Sheet]) -> tuple[Sheet, _Header] | Problem:
    """The first visible sheet holding the header (the kit's data sheet); a hidden one only
    when no visible sheet holds it (it is then refused: ``validate_sheets``)."""
    complete = _complete_headers(contract, sheets)
    if complete:
        return next((found for found in complete if not found[0].hidden), complete[0])
    best: tuple[int, Sheet, _Header] | None = None
    for sheet in sheets:
        for row_index, cells in enumerate(sheet.rows[:MAX_HEADER_SEARCH_ROWS]):
            header = _match_header(contract, list(cells), row_index)
            if not header.missing_required:
                return sheet, header
            score = len(header.positions)
            if score and (best is None or score > best[0]):
                best = (score, sheet, header)
    for sheet in sheets:  # a complete header further down: say where it is
        rows = sheet.rows[MAX_HEADER_SEARCH_ROWS:MAX_HEADER_DIAGNOSTIC_ROWS]
        for row_index, cells in enumerate(rows, start=MAX_HEADER_SEARCH_ROWS):
            if not _match_header(contract, list(cells), row_index).missing_required:
                return Problem(
                    reason=(
                        f"ligne d'en-tête trouvée trop bas, ligne {row_index + 1} de la feuille "
                        f"« {sheet.name} » : au plus {MAX_HEADER_SEARCH_ROWS - 1} lignes de titre "
                        "ou vides sont admises au-dessus de l'en-tête ; supprimez des lignes "
                        "de titre"
                    ),
                    sheet=sheet.name,
                    row=row_index + 1,
                )
    expected = ", ".join(" ou ".join(c.header_names) for c in _required_headers(contract))
    if best is None:
        return Problem(
            reason=(
                "aucune feuille ne contient la ligne d'en-tête attendue (dans les "
                f"{MAX_HEADER_SEARCH_ROWS} premières lignes) ; colonnes obligatoires : {expected}"
            )
        )
    _, sheet, header = best
    missing = ", ".join(
        " ou ".join(contract.column(name).header_names) for name in header.missing_required
    )
    return Problem(
        reason=(
            f"colonnes obligatoires absentes de l'en-tête : {missing} (la feuille la plus proche "
            f"est « {sheet.name} », ligne {header.row_index + 1})"
            + _header_hints(contract, sheet, header)
        ),
        sheet=sheet.name,
        row=header.row_index + 1,
        column=missing,
    )
