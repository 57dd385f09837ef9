"""Validation of one delivered file against its contract.

``validate_delivery`` applies every common rule of the collection kit and every rule of the
contract. It never raises on bad data: it returns the parsed rows (when there is no problem)
and the list of problems, each locating file, sheet, row, column and value, with a French
reason. A delivery is accepted only when that list is empty.
"""

from __future__ import annotations

import datetime as dt
import difflib
import gc
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contracts.model import DUCKDB_TYPES, TYPE_LABELS_FR, Column, Contract
from dagster_project.ingest.normalize import (
    EXCEL_ERRORS,
    INFINITE_REASON,
    INVISIBLE_CHARACTERS,
    NAN_REASON,
    CellError,
    CommuneMatcher,
    clean_text,
    display,
    excel_error,
    has_invisible,
    is_empty,
    normalize_header,
    parse_date,
    parse_month,
    parse_number,
    parse_yes_no,
)
from dagster_project.ingest.readers import (
    NumberFormat,
    ReadError,
    Sheet,
    cell_ref,
    column_letters,
    read_file,
)
from dagster_project.ingest.store import ARROW_TYPES

MAX_HEADER_SEARCH_ROWS = 11  # up to 10 title or blank rows, then the header
MAX_HEADER_DIAGNOSTIC_ROWS = 60  # how far down a misplaced header is looked for (to say so)
MAX_PROBLEMS = 2000  # beyond, the report says how many more there are
TOTAL_TOLERANCE = 0.01
MASKED = "(masqué)"
# the largest integer an integer column holds: every integer up to it is exact in a float
# (what a cell holds) and fits the warehouse's BIGINT; beyond, the cell is rejected
MAX_INTEGER = 2**53 - 1
_TOO_LARGE = "nombre trop grand : 9\u202f007\u202f199\u202f254\u202f740\u202f991 au plus"


@dataclass
class Problem:
    reason: str
    sheet: str | None = None
    row: int | None = None  # 1-based, as Excel shows it
    column: str | None = None  # the header as written in the file, or the contract column
    value: str = ""
    severity: str = "error"  # error | warning


@dataclass
class CatalogueEntry:
    indicator_id: str
    department: str
    computation: str
    allow_negative: bool = False


@dataclass
class IngestContext:
    """What a delivery is judged against besides its own contract."""

    campaign_year: int
    department: str
    communes: CommuneMatcher
    today: dt.date = field(default_factory=dt.date.today)
    # (source_id, column) -> values present in the delivery in force for the campaign year
    references: Callable[[str, str], set[Any] | None] = lambda source, column: None
    catalogue: dict[str, CatalogueEntry] = field(default_factory=dict)
    pseudonymise: Callable[[str], str] | None = None


@dataclass
class ValidationResult:
    sheet: str | None
    problems: list[Problem]
    warnings: list[Problem]
    header_row: int | None = None
    total_rows: int = 0
    omitted_problems: int = 0
    # the accepted rows: contract columns (after pseudonymisation), _sheet, _row_number
    table: pa.Table | None = None

    @property
    def accepted(self) -> bool:
        return not self.problems

    @property
    def row_count(self) -> int:
        return self.table.num_rows if self.table is not None else 0

    @property
    def records(self) -> list[dict[str, Any]]:
        """The accepted rows as dicts (convenient for tests and small files)."""
        return self.table.to_pylist() if self.table is not None else []


# ----------------------------------------------------------------------------------------
# sheet and header detection


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


# ----------------------------------------------------------------------------------------
# cells


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


# ----------------------------------------------------------------------------------------
# main entry point


def _age_in_months(birth: dt.date, at: dt.date) -> int:
    months = (at.year - birth.year) * 12 + (at.month - birth.month)
    if at.day < birth.day:
        months -= 1
    return months


def validate_sheets(
    contract: Contract, sheets: list[Sheet], ctx: IngestContext, *, consume: bool = False
) -> ValidationResult:
    """Validate the data sheet column by column, ``CHUNK_ROWS`` rows at a time.

    Each distinct value of a column is parsed once (a register repeats its communes, months,
    parameters and units), the rows that pass every cell rule go to Arrow chunk by chunk, and
    the rules on the whole table (grain, unique, references...) run on the Arrow table.
    Problems are reported in the order of the sheet (row, then contract column).
    ``consume``: the sheet's rows are released as they are validated (the caller no longer
    needs them), so that a large delivery is never held twice in memory.
    """
    found = _find_data_sheet(contract, sheets)
    if any(s.reread is not None for s in sheets) and not _arrow_header(contract, sheets, found):
        return validate_sheets(contract, _python_sheets(sheets), ctx, consume=consume)
    if isinstance(found, Problem):
        return ValidationResult(sheet=found.sheet, problems=[found], warnings=[])
    sheet, header = found
    if sheet.hidden:  # no visible sheet holds the header: what would be read is not seen
        return ValidationResult(
            sheet=sheet.name, problems=[_hidden_data_sheet(sheet, header)], warnings=[]
        )
    private = {c.name for c in contract.columns if c.privacy}
    private |= {text for name, (_, text) in header.positions.items() if name in private}
    sink = _ProblemSink(sheet.name, private)
    warnings: list[Problem] = []
    sink.extend(_other_headers(contract, sheets, sheet))
    if header.row_index in sheet.hidden_rows:
        sink.add(
            "ligne d'en-tête masquée : ce qui est lu doit être visible ; affichez-la "
            "(sélectionnez les lignes voisines › clic droit › Afficher) et vérifiez-la",
            header.row_index + 1,
            None,
        )
    for label in _hidden_columns_with_data(sheet, header):
        sink.add(
            "colonne masquée (ou de largeur nulle) contenant des données : ce qui est lu doit "
            "être visible ; affichez-la (sélectionnez les colonnes voisines › clic droit › "
            "Afficher) et vérifiez-la, ou supprimez-la",
            header.row_index + 1,
            label,
        )
    for name, text in header.duplicates:
        sink.add(
            f"colonne « {name} » présente deux fois dans l'en-tête", header.row_index + 1, text
        )
    for _, text in header.unknown:
        warnings.append(
            Problem(
                "colonne inconnue du contrat, ignorée",
                sheet.name,
                header.row_index + 1,
                text,
                severity="warning",
            )
        )
    specs = [
        _ColumnSpec(
            column, order, *header.positions[column.name], header.alternates.get(column.name)
        )
        for order, column in enumerate(contract.columns)
        if column.name in header.positions
    ]
    for row_index in _register_rows_above(sheet, header, specs, ctx):
        sink.add(
            "ligne au-dessus de l'en-tête qui a la forme d'une ligne de données (valeurs valides "
            "dans chaque colonne obligatoire) : seules les lignes sous l'en-tête sont lues, elle "
            "serait ignorée ; placez-la sous l'en-tête, ou supprimez-la",
            row_index + 1,
            None,
        )
    for merge in _merged_headers_over_data(sheet, header):
        owner = next(spec for spec in specs if spec.index == merge[1])
        filled = ", ".join(
            column_letters(c)
            for c in range(merge[1] + 1, merge[3] + 1)
            if _column_has_data(sheet, header.row_index, c)
        )
        sink.add(
            f"en-tête « {owner.header_text} » fusionné sur plusieurs colonnes "
            f"({_merged_ref(merge)}) : la colonne {filled} contient des valeurs mais pas "
            "d'en-tête à elle, ces valeurs seraient ignorées ; défusionnez l'en-tête et donnez "
            "à chaque colonne son propre en-tête",
            header.row_index + 1,
            owner.header_text,
        )
    state = _SheetState(sheet, header, specs, contract, ctx, sink)
    batches: list[pa.RecordBatch] = []
    arrow_rows = sheet.arrow_rows(header.row_index + 1) if sheet.arrow_rows else None
    try:
        if arrow_rows is not None:  # a regular .csv, a long worksheet: read by Arrow
            first = header.row_index + 1
            for chunk in arrow_rows.to_batches(max_chunksize=CHUNK_ROWS):
                batch = state.validate_arrow_chunk(first, chunk)
                if batch is _FALL_BACK and sheet.reread is not None:
                    # a worksheet's typed columns are not calamine's Python values: the whole
                    # delivery is judged again on those, cell by cell (nothing kept from here)
                    return validate_sheets(contract, _python_sheets(sheets), ctx, consume=consume)
                if batch is _FALL_BACK:  # a problem, or a row to look at: the rules cell by cell
                    rows = [list(cells) for cells in zip(*chunk.to_pydict().values(), strict=True)]
                    batch = state.validate_chunk(first, rows)
                if batch is not None:
                    batches.append(batch)
                first += chunk.num_rows
        else:
            for first, chunk in _chunks(sheet, header.row_index + 1, consume):
                batch = state.validate_chunk(first, chunk)
                if batch is not None:
                    batches.append(batch)
    except ReadError as exc:  # a .csv read as it is validated: a malformed line further down
        problem = Problem(exc.reason, exc.sheet or sheet.name)
        return ValidationResult(sheet=sheet.name, problems=[problem], warnings=[])
    table = (
        pa.Table.from_batches(batches, schema=state.schema)
        if batches
        else state.schema.empty_table()
    )
    if table.num_rows == 0 and not sink.count:
        sink.add(
            "aucune ligne de données sous l'en-tête" + _other_sheets_hint(contract, sheets, sheet),
            header.row_index + 2,
            None,
        )
    else:  # rows of the register in another sheet, without its header: never ignored
        sink.extend(_rows_in_other_sheets(contract, sheets, sheet, specs, ctx))
    _table_rules(contract, table, state.label, ctx, sink.add)
    other_year = _other_year(specs, ctx)
    if other_year is not None:
        dated = ", ".join(s.header_text for s in specs if s.years)
        sink.first(
            f"Ce fichier semble être celui de {other_year} : toutes ses dates ({dated}) sont "
            f"en {other_year}, la campagne est {ctx.campaign_year}. Déposez le fichier de "
            f"{ctx.campaign_year} (les problèmes de dates qui suivent viennent de là).",
            dated,
        )
    accepted = not sink.count
    if accepted:
        table = _apply_privacy(contract, table, ctx)
    return ValidationResult(
        sheet=sheet.name,
        problems=sink.problems,
        warnings=warnings,
        header_row=header.row_index + 1,
        total_rows=state.total_rows,
        omitted_problems=sink.omitted,
        table=table if accepted else None,
    )


def _other_year(specs: list[_ColumnSpec], ctx: IngestContext) -> int | None:
    """The year every date and month of the delivery is in, when the columns bound to the
    campaign year hold values of one other year only (last year's workbook delivered as this
    year's); None otherwise. Every distinct value of the data rows is judged whatever the path
    (cells, a .csv's or a worksheet's Arrow columns), so the answer is the same on each."""
    years: set[int] = set().union(*(spec.years for spec in specs))
    if len(years) == 1 and ctx.campaign_year not in years:
        return years.pop()
    return None


def _arrow_header(
    contract: Contract, sheets: list[Sheet], found: tuple[Sheet, _Header] | Problem
) -> bool:
    """Whether the data sheet found is a worksheet read into Arrow columns whose header (all
    of it matched to the contract, no row above able to be one) is all the Arrow path needs.
    Otherwise, the engine works on calamine's Python values (``Sheet.reread``): an unknown or
    repeated column, two columns for one commune, a header further down, a missing column,
    another sheet read into Arrow columns (the header search reads the first rows of every
    sheet in turn)."""
    if isinstance(found, Problem):
        return False
    sheet, header = found
    return (
        sheet.reread is not None
        and all(other.reread is None for other in sheets if other is not sheet)
        and header.row_index == len(sheet.rows) - 1
        and not header.unknown
        and not header.duplicates
        and not header.alternates
        and _no_header_above(contract, sheet, header.row_index)
    )


def _no_header_above(contract: Contract, sheet: Sheet, header_row: int) -> bool:
    """Whether no row above ``header_row`` can hold the contract's header in calamine's values
    (the Arrow path leaves them empty): each fills fewer cells than the required columns
    (counted by the scan, at most), so the header search could not stop there either."""
    required = _required_headers(contract)
    sharing = Counter(normalize_header(h) for c in contract.columns for h in c.header_names)
    per_cell = max(sharing.values(), default=1)  # columns one header cell can fill
    return all(
        sheet.head_filled.get(row, 0) * per_cell < len(required) for row in range(header_row)
    )


def _python_sheets(sheets: list[Sheet]) -> list[Sheet]:
    """The sheets as calamine's Python values (worksheets read into Arrow columns read again)."""
    return [sheet.reread() if sheet.reread is not None else sheet for sheet in sheets]


CHUNK_ROWS = 50_000  # rows validated and converted at a time
_MEMO_LIMIT = 500_000  # distinct values remembered per column
_PLAIN_NUMBER = r"^[+-]?[0-9]+([.,][0-9]+)?$"  # a subset of what parse_number reads


class _ProblemSink:
    """The problems of a delivery, the first ``MAX_PROBLEMS`` kept, the others counted."""

    def __init__(self, sheet: str, masked: set[str]):
        self.sheet = sheet
        self.masked = masked
        self.problems: list[Problem] = []
        self.count = 0

    @property
    def omitted(self) -> int:
        return self.count - len(self.problems)

    def make(self, reason: str, row: int | None, column: str | None, value: object = "") -> Problem:
        shown = MASKED if column in self.masked and not is_empty(value) else display(value)
        return Problem(reason, self.sheet, row, column, shown)

    def add(self, reason: str, row: int | None, column: str | None, value: object = "") -> None:
        self.count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(self.make(reason, row, column, value))

    def first(self, reason: str, column: str | None) -> None:
        """A problem about the whole delivery, put before the others."""
        self.count += 1
        self.problems.insert(0, Problem(reason, self.sheet, None, column))
        del self.problems[MAX_PROBLEMS:]

    def extend(self, problems: list[Problem]) -> None:
        self.count += len(problems)
        room = MAX_PROBLEMS - len(self.problems)
        if room > 0:
            self.problems.extend(problems[:room])


class _Failed:
    """A memoised verdict on a cell value that is not a valid value of its column."""

    __slots__ = ("reason",)

    def __init__(self, reason: str):
        self.reason = reason


_EMPTY = _Failed("")  # an empty cell: what it means depends on its position and the column


@dataclass
class _ColumnSpec:
    column: Column
    order: int  # position in the contract (problems of a row come in this order)
    index: int  # 0-based column of the sheet
    header_text: str
    alternate: tuple[int, str] | None  # the second header filling the column (code and name)
    # parsed value or _Failed, by raw value (booleans apart: True == 1 for a dict)
    memo: dict = field(default_factory=dict)
    alternate_memo: dict = field(default_factory=dict)
    has_failed: bool = False  # whether the memo holds a _Failed verdict
    # a date or month column bound to the campaign year: the years its values are in (each
    # distinct value is judged, on every path: ``_other_year``)
    years: set[int] = field(default_factory=set)

    def verdicts(self, raws: list[object], ctx: IngestContext) -> list[object] | pa.Array:
        """The parsed value or ``_Failed`` of each raw value (each distinct value parsed once);
        an Arrow array when the column is made of plain numbers within their bounds."""
        fast = self._plain_numbers(raws)
        if fast is not None:
            return fast
        texts = self._plain_texts(raws)
        if texts is not None:
            return texts
        memo = self.memo
        if len(memo) >= _MEMO_LIMIT:
            memo.clear()
        # True == 1 and False == 0 for a dict: with 0 or 1 in the memo, a boolean would get
        # their verdict; booleans are kept under (bool, value)
        collide = 1 in memo or 0 in memo
        values = list(map(memo.get, raws))  # None where the value is new
        if collide and bool in set(map(type, raws)):
            for k, raw in enumerate(raws):
                if raw.__class__ is bool:
                    values[k] = None
        if None in values:
            get = memo.get
            for k in [k for k, value in enumerate(values) if value is None]:
                raw = raws[k]
                hit = get(raw) if raw.__class__ is not bool else None  # seen in this chunk
                if hit is None:
                    hit = self.verdict(raw, ctx, memo, self.header_text)
                values[k] = hit
        return values

    def _plain_texts(self, raws: list[object]) -> list[str] | None:
        """A free text column (no list of allowed values) of text cells none of which is blank
        or an Excel error value: each text without its surrounding spaces, which is what
        ``_judge`` makes of each (an identifier column has as many distinct values as rows:
        judging them one by one through the memo was most of a register's validation).
        None: go through the memo and the cell rules."""
        if self.column.type != "text" or self.column.allowed_lookup is not None or not raws:
            return None
        if set(map(type, raws)) != {str}:
            return None
        texts = list(map(str.strip, raws))
        if "" in texts or any(text[:1] == "#" and text.lower() in EXCEL_ERRORS for text in texts):
            return None
        if _has_invisible(texts):  # removed by the cell rules (clean_text)
            return None
        return texts

    def _plain_numbers(self, raws: list[object]) -> pa.Array | None:
        """A numeric column of numeric cells (no text, no empty cell) that passes its bounds as
        a whole: its values as an Arrow array, checked at once. None: go through the cell
        rules (which then say which cell breaks which rule)."""
        column = self.column
        if column.type not in ("number", "integer") or column.step or column.allowed or not raws:
            return None
        types = set(map(type, raws))
        if types <= {float, int}:
            exact = column.type == "integer" and types == {int}
            try:
                array = pa.array(raws, pa.int64() if exact else pa.float64())
            except (OverflowError, pa.ArrowException):  # beyond 64 bits: the cell rules say so
                return None
        elif types == {str}:  # a .csv: plain decimal text only (4548,5 or 4548.5)
            text = pa.array(raws, pa.string())
            if not pc.all(pc.match_substring_regex(text, _PLAIN_NUMBER)).as_py():
                return None
            try:
                array = pc.cast(pc.replace_substring(text, ",", "."), pa.float64())
            except pa.ArrowException:
                return None
        else:
            return None
        low, high = pc.min_max(array).values()
        low, high = low.as_py(), high.as_py()
        if low is None or not (math.isfinite(low) and math.isfinite(high)):
            return None  # NaN (an empty cell) or an infinity
        if array.type == pa.float64() and pc.any(pc.is_nan(array)).as_py():
            return None
        if column.lower_bound is not None and low < column.lower_bound:
            return None
        if column.min_exclusive is not None and low <= column.min_exclusive:
            return None
        if column.max is not None and high > column.max:
            return None
        if column.max_exclusive is not None and high >= column.max_exclusive:
            return None
        if column.type == "integer" and max(-low, high) > MAX_INTEGER:
            return None  # too large for an integer column: the cell rules say which cell
        if column.type == "integer" and array.type == pa.float64():
            if not pc.all(pc.equal(array, pc.floor(array))).as_py():
                return None
            try:
                return array.cast(pa.int64())
            except pa.ArrowException:  # beyond 64 bits: the cell rules say so
                return None
        return array

    def verdict(self, raw: object, ctx: IngestContext, memo: dict, header_text: str) -> object:
        """The parsed value of ``raw``, or a ``_Failed`` (each distinct value parsed once)."""
        key = (bool, raw) if raw.__class__ is bool else raw
        hit = memo.get(key)
        if hit is None:
            hit = self._judge(raw, ctx, header_text)
            if hit.__class__ is _Failed:
                self.has_failed = True
            memo[key] = hit
        return hit

    def _judge(self, raw: object, ctx: IngestContext, header_text: str) -> object:
        if raw.__class__ is str:  # what a person reads: no invisible characters, no spaces
            raw = clean_text(raw)
        elif raw.__class__ is float and not math.isfinite(raw):  # not empty: a failed computation
            return _Failed(NAN_REASON if math.isnan(raw) else INFINITE_REASON)
        error = excel_error(raw)
        if error:
            return _Failed(f"valeur d'erreur Excel {error}")
        if is_empty(raw):
            return _EMPTY
        column = self.column
        try:
            value = _parse_cell(column, raw, ctx, header_text)
            if column.effective_date_range == "campaign_year":
                self.years.add(value.year)
            return value
        except CellError as exc:
            if exc.__class__ is _OutsideCampaign:
                self.years.add(exc.year)
            if exc.complete:
                return _Failed(exc.reason)
            return _Failed(f"{exc.reason} ({TYPE_LABELS_FR[column.type]})")


def _chunks(sheet: Sheet, start: int, consume: bool):
    """(index of the first row, list of rows) of at most CHUNK_ROWS consecutive rows, from
    ``start`` on (slices of ``sheet.rows``, then of ``sheet.tail``)."""
    rows = sheet.rows
    first = start
    while first < len(rows):
        last = min(first + CHUNK_ROWS, len(rows))
        yield first, rows[first:last]
        if consume:
            rows[first:last] = [[]] * (last - first)
        first = last
    if sheet.tail is not None:
        chunk: list[list[object]] = []
        append = chunk.append
        first = max(start, len(rows))
        for cells in sheet.tail:
            append(cells)
            if len(chunk) == CHUNK_ROWS:
                yield first, chunk
                first += CHUNK_ROWS
                chunk = []
                append = chunk.append
        if chunk:
            yield first, chunk


def _has_invisible(texts: list[str]) -> bool:
    """Whether any of ``texts`` holds an invisible character (one search over all of them)."""
    joined = "".join(texts)  # (invisible characters are not printable: str.isprintable)
    return not joined.isprintable() and has_invisible(joined)


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
_FALL_BACK = object()  # validate_arrow_chunk: look at this chunk cell by cell
_EXCEL_ERRORS = pa.array(sorted(EXCEL_ERRORS))


# the characters str.strip() removes: Unicode's White_Space is not quite Python's (U+001C..U+001F
# are spaces for Python); tests/test_csv_arrow.py checks this against every code point
PYTHON_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


# normalize.INVISIBLE_CHARACTERS for Arrow's regular expressions (RE2: \x{200b})
_INVISIBLE_RE2 = (
    "[" + "".join(c if c == "-" else f"\\x{{{ord(c):x}}}" for c in INVISIBLE_CHARACTERS) + "]"
)


def _arrow_has_invisible(text: pa.Array) -> bool:
    """Whether a string array holds an invisible character (``normalize.clean_text`` removes
    them). Its characters are looked at as one string (a pass over its buffer, not a search
    per value): printable ASCII (an identifier, a code) has none, otherwise it is searched."""
    if not len(text):
        return False
    whole = _one_string(text)
    if whole is None:
        return pc.any(pc.match_substring_regex(text, _INVISIBLE_RE2)).as_py() or False
    if pc.all(pc.ascii_is_printable(whole)).as_py():
        return False
    # (no character spans two values: the values' characters one after the other are exact)
    return pc.any(pc.match_substring_regex(whole, _INVISIBLE_RE2)).as_py() or False


def _one_string(text: pa.Array) -> pa.Array | None:
    """The characters of a string array as one string (its data buffer between its first and
    last offsets), or None for another layout."""
    if text.type not in (pa.string(), pa.large_string()) or text.buffers()[2] is None:
        return None
    offsets = pa.Array.from_buffers(
        pa.int32() if text.type == pa.string() else pa.int64(),
        len(text) + 1,
        [None, text.buffers()[1]],
        offset=text.offset,
    )
    begin, end = offsets[0].as_py(), offsets[-1].as_py()
    return pa.Array.from_buffers(
        pa.large_string(),
        1,
        [
            None,
            pa.array([0, end - begin], pa.int64()).buffers()[1],
            text.buffers()[2].slice(begin, end - begin),
        ],
    )


def _strip(text: pa.Array) -> pa.Array:
    """``str.strip()`` of every value, in Arrow."""
    return pc.utf8_trim(text, characters=PYTHON_SPACES)


# first cells that are never empty (a float may be NaN: checked)
_PLAIN_FIRST_TYPES = {str, int, float, bool, dt.datetime, dt.date, dt.time, dt.timedelta}


def _row_kind(first: object) -> int:
    """What a row is, from its first filled cell (``_EMPTY``: none)."""
    if first is _EMPTY:
        return _EMPTY_ROW
    if first.__class__ is str and clean_text(first).lower().startswith("total"):
        return _TOTAL_ROW
    return _DATA_ROW


def _as_arrow(values: list[object] | pa.Array, kind: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values if values.type == kind else values.cast(kind)
    return pa.array(values, type=kind)


class _SheetState:
    """What runs across the chunks of a sheet: running sums, memos, problem order."""

    def __init__(self, sheet, header, specs, contract, ctx, sink):
        self.sheet = sheet
        self.specs = specs
        self.label = {spec.column.name: spec.header_text for spec in specs}
        self.contract = contract
        self.ctx = ctx
        self.sink = sink
        self.total_rows = 0
        present = {spec.column.name for spec in specs}
        self.absent = [c for c in contract.columns if c.name not in present]
        self.numeric = [spec for spec in specs if spec.column.type in ("integer", "number")]
        self.sums = dict.fromkeys((spec.column.name for spec in self.numeric), 0.0)
        self.error_rows = {r for r, _ in sheet.errors}
        self.errors_by_column: dict[int, dict[int, str]] = defaultdict(dict)
        for (r, c), text in sheet.errors.items():
            self.errors_by_column[c][r] = text
        self.covered = _merge_cover(sheet, header)
        self.uncached = sheet.uncached_formulas
        # numeric cells whose number format shows something else (readers.NumberFormat)
        self.formats_by_column: dict[int, dict[int, NumberFormat]] = defaultdict(dict)
        for (r, c), number_format in sheet.formatted.items():
            self.formats_by_column[c][r] = number_format
        # a .csv: how many fields its header line has, which every line below must have too
        # (a decimal comma in a comma-separated file would shift the columns of its row)
        self.fields = len(sheet.rows[header.row_index]) if sheet.delimiter else None
        # the columns the rules between a row's cells read (``_row_rules``)
        self.row_rule_names: set[str] = set()
        for column in contract.row_rule_columns:
            self.row_rule_names.update(
                filter(None, (column.name, column.not_after, column.age_reference))
            )
        for rule in contract.rules_of("column_le") + contract.rules_of("required_unless"):
            self.row_rule_names.update((rule["column"], rule["other"]))
        self.has_row_rules = bool(self.row_rule_names)
        self.schema = pa.schema(
            [(c.name, ARROW_TYPES[DUCKDB_TYPES[c.type]]) for c in contract.columns]
            + [("_sheet", pa.string()), ("_row_number", pa.int64())]
        )

    @staticmethod
    def _all_data(chunk: list[list[object]]) -> bool:
        """Whether every row of ``chunk`` is a data row, decided on the first cells at once
        (no blank first cell, none reading « total »); False only means: look row by row."""
        firsts = [cells[0] if cells else None for cells in chunk]
        types = set(map(type, firsts))
        if not types <= _PLAIN_FIRST_TYPES:
            return False  # an empty row, an empty first cell (None), or an unusual value
        if float in types and any(map(math.isnan, [f for f in firsts if f.__class__ is float])):
            return False
        texts = firsts if types == {str} else [f for f in firsts if f.__class__ is str]
        if not texts:
            return True
        stripped = list(map(str.strip, texts))
        if _has_invisible(stripped):  # maybe a blank or « total » cell once they are removed
            return False
        # a text containing a line break may start a line with « total »: only a false alarm
        return "" not in stripped and "\ntotal" not in "\n" + "\n".join(stripped).lower()

    def _hidden_row(self, row_index: int) -> str:
        """Why a hidden row holding data is refused, with how it was hidden."""
        sheet = self.sheet
        reason = "ligne masquée contenant des données"
        show = "affichez-la (sélectionnez les lignes voisines › clic droit › Afficher)"
        if row_index in sheet.zero_height_rows:
            return f"{reason} (hauteur de ligne nulle) : {show} et vérifiez-la, ou supprimez-la"
        area = sheet.filter_range
        if area is not None and area[0] < row_index <= area[2]:
            return (
                f"{reason} (cachée par le filtre automatique {_merged_ref(area)}) : effacez le "
                "filtre (Données › Effacer) pour afficher toutes les lignes, vérifiez-les, puis "
                "déposez à nouveau le fichier"
            )
        return f"{reason} : affichez-la et vérifiez-la, ou supprimez-la"

    def validate_chunk(self, start: int, chunk: list[list[object]]) -> pa.RecordBatch | None:
        """Validate ``chunk``, consecutive rows of which the first is row ``start`` (0-based)."""
        sink = self.sink
        found: list[tuple[tuple, Problem]] = []  # (row, phase, column order) -> problem

        def problem(key: tuple, reason: str, row: int, column: str | None, value: object = ""):
            found.append((key, sink.make(reason, row, column, value)))

        hidden = self.sheet.hidden_rows
        rows: list[int] | range  # 0-based row index of each data row
        data: list[list[object]]
        totals: list[tuple[int, int, list[object]]] = []  # (data rows above, row index, cells)
        fields = self.fields
        if (
            not hidden
            and not self.error_rows
            and (fields is None or set(map(len, chunk)) == {fields})
            and self._all_data(chunk)
        ):
            rows, data = range(start, start + len(chunk)), chunk  # the usual chunk
        else:
            rows, data = [], []
            for offset, cells in enumerate(chunk):
                row_index = start + offset
                kind = _row_kind(_first_filled(cells))
                if kind == _EMPTY_ROW and row_index not in self.error_rows:
                    continue
                if fields is not None and len(cells) != fields:
                    problem(
                        (row_index, -1, 0),
                        _fields_reason(len(cells), fields, self.sheet.delimiter),
                        row_index + 1,
                        None,
                        _line_of(cells, self.sheet.delimiter),
                    )
                    continue
                if hidden and row_index in hidden:
                    problem((row_index, -1, 0), self._hidden_row(row_index), row_index + 1, None)
                    continue
                if kind == _TOTAL_ROW:
                    totals.append((len(rows), row_index, cells))
                    continue
                rows.append(row_index)
                data.append(cells)
        n = len(rows)
        bad: set[int] = set()  # data rows (positions in ``rows``) with a problem
        # parsed values by column: a list, or an Arrow array (a numeric column checked at once)
        parsed: dict[str, list[object] | pa.Array] = {}
        width = min(map(len, data)) if data else 0  # columns every data row has
        for spec in self.specs:
            parsed[spec.column.name] = self._column(spec, rows, data, width, bad, problem)
        for column in self.absent:
            parsed[column.name] = [column.default] * n
        if bad or self.has_row_rules:
            parsed = {
                name: values.to_pylist() if isinstance(values, pa.Array) else values
                for name, values in parsed.items()
            }
        self._totals(totals, rows, parsed, bad, problem)
        ok = [k for k in range(n) if k not in bad] if bad else range(n)
        if self.has_row_rules:
            names = list(parsed)
            for k in ok:
                record = {name: parsed[name][k] for name in names}
                row_index = rows[k]
                _row_rules(
                    self.contract,
                    record,
                    row_index + 1,
                    self.label,
                    self.ctx,
                    lambda *args, row_index=row_index: problem((row_index, 1, 0), *args),
                )
        if found:
            found.sort(key=lambda item: item[0])
            sink.extend([p for _, p in found])
        if not n or (bad and len(bad) == n):
            return None
        if bad:
            columns = {name: [values[k] for k in ok] for name, values in parsed.items()}
            numbers = pa.array([rows[k] + 1 for k in ok], type=pa.int64())
        else:
            columns = parsed
            numbers = pa.array(
                [r + 1 for r in rows]
                if isinstance(rows, list)
                else range(rows.start + 1, rows.stop + 1),
                type=pa.int64(),
            )
        arrays = [_as_arrow(columns[f.name], f.type) for f in list(self.schema)[:-2]]
        arrays.append(pa.array([self.sheet.name] * len(numbers), type=pa.string()))
        arrays.append(numbers)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def validate_arrow_chunk(self, start: int, chunk: pa.RecordBatch) -> pa.RecordBatch | object:
        """The rows of ``chunk`` (text columns of a .csv, or a worksheet's columns as
        fastexcel typed them; the first is row ``start``) when every one of them is a data row
        that passes every cell rule and every rule between its cells, judged on each column's
        distinct values; ``_FALL_BACK`` otherwise (a .csv's chunk then goes through
        ``validate_chunk``, a worksheet's whole delivery through python-calamine's values:
        both locate and explain every problem)."""
        n = chunk.num_rows
        if not n:
            return None
        if (
            self.sheet.hidden_rows
            or self.error_rows
            or self.covered
            or self.uncached
            or self.sheet.formatted
        ):
            return _FALL_BACK  # cells only the cell-by-cell rules explain
        if self.fields is not None and chunk.num_columns != self.fields:
            return _FALL_BACK  # lines of a .csv with another number of fields than its header
        first = chunk.column(0)
        if first.null_count:
            return _FALL_BACK  # an empty first cell
        if pa.types.is_string(first.type):
            first = _strip(first)
            if (
                pc.any(pc.equal(pc.utf8_length(first), 0)).as_py()
                or pc.any(pc.starts_with(pc.utf8_lower(first), "total")).as_py()
                or _arrow_has_invisible(first)
            ):
                return _FALL_BACK  # a blank first cell, a control total, maybe one of them
        elif pa.types.is_floating(first.type):
            if pc.any(pc.is_nan(first)).as_py():
                return _FALL_BACK
        elif not (
            pa.types.is_integer(first.type)
            or pa.types.is_boolean(first.type)
            or pa.types.is_timestamp(first.type)
        ):
            return _FALL_BACK  # a first cell of a type the rows' rules do not expect here
        arrays = {}
        for spec in self.specs:
            if spec.alternate is not None or spec.index >= chunk.num_columns:
                return _FALL_BACK
            values = self._arrow_column(spec, chunk.column(spec.index))
            if values is None:
                return _FALL_BACK
            arrays[spec.column.name] = values
        if self.has_row_rules and self._row_rules_fail(start, n, arrays):
            return _FALL_BACK
        for spec in self.numeric:  # running sums, for a control total further down
            self.sums[spec.column.name] += pc.sum(arrays[spec.column.name]).as_py() or 0
        columns = []
        for field_ in list(self.schema)[:-2]:
            values = arrays.get(field_.name)
            if values is None:  # a column the file does not have: its default
                values = [self.contract.column(field_.name).default] * n
            columns.append(_as_arrow(values, field_.type))
        columns.append(pa.array([self.sheet.name] * n, type=pa.string()))
        columns.append(pa.array(range(start + 1, start + n + 1), type=pa.int64()))
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _row_rules_fail(self, start: int, n: int, arrays: dict[str, pa.Array]) -> bool:
        """Whether a row of the chunk breaks a rule between its cells (``_row_rules``, run on
        the columns the rules read, as ``validate_chunk`` runs it)."""
        contract = self.contract
        values = {
            name: arrays[name].to_pylist()
            if name in arrays
            else [contract.column(name).default] * n
            for name in self.row_rule_names
        }
        failed: list[tuple] = []
        for k in range(n):
            record = {name: column[k] for name, column in values.items()}
            _row_rules(
                contract, record, start + k + 1, self.label, self.ctx, lambda *a: failed.append(a)
            )
            if failed:
                return True
        return False

    def _arrow_column(self, spec: _ColumnSpec, cells: pa.Array) -> pa.Array | None:
        """One column's parsed values, each distinct cell judged once; None if a cell fails.
        ``cells``: a .csv's text column, or a worksheet's column as fastexcel typed it."""
        column = spec.column
        kind = self.schema.field(column.name).type
        if pa.types.is_string(cells.type):
            if cells.null_count:
                cells = cells.fill_null("")  # an empty cell of a worksheet: calamine's ""
            if column.type == "text" and column.allowed_lookup is None:
                # what _parse_cell makes of a text cell: the text without surrounding spaces,
                # if it is neither blank nor an Excel error value (else: judged below)
                stripped = _strip(cells)
                if not (
                    pc.any(pc.equal(pc.utf8_length(stripped), 0)).as_py()
                    or pc.any(pc.is_in(pc.utf8_lower(stripped), _EXCEL_ERRORS)).as_py()
                    or _arrow_has_invisible(stripped)  # removed by the cell rules: judged below
                ):
                    return stripped
        encoded = cells.dictionary_encode()
        raws = _python_values(encoded.dictionary, column)
        if raws is None:
            return None
        indices = encoded.indices
        if indices.null_count:  # empty cells of a typed column: calamine's ""
            raws.append("")
            indices = indices.fill_null(len(raws) - 1)
        verdicts = spec.verdicts(raws, self.ctx)
        if isinstance(verdicts, pa.Array):  # plain numbers within their bounds
            return _as_arrow(verdicts, kind).take(indices)
        if spec.has_failed:
            fill = column.default is not None or not column.required
            for k, verdict in enumerate(verdicts):
                if verdict is _EMPTY and fill:
                    verdicts[k] = column.default
                elif verdict.__class__ is _Failed:
                    return None
        return pa.array(verdicts, type=kind).take(indices)

    def _column(
        self, spec: _ColumnSpec, rows, data, width: int, bad: set[int], problem
    ) -> list[object]:
        """The parsed values of one column over the chunk's data rows; problems located."""
        index, ctx, column = spec.index, self.ctx, spec.column
        if index < width:
            raws = list(map(itemgetter(index), data))
        else:
            raws = [cells[index] if index < len(cells) else None for cells in data]
        text = spec.header_text
        values = spec.verdicts(raws, ctx)
        xml_errors = self.errors_by_column.get(index)
        formats = self.formats_by_column.get(index)
        if isinstance(values, pa.Array):  # plain numbers within bounds: nothing can fail
            if not xml_errors and not formats:
                return values
            values = values.to_pylist()
        # a blank cell is never compared with its alternate (code and name of a commune)
        blank = (
            [k for k, value in enumerate(values) if value is _EMPTY]
            if spec.alternate is not None and spec.has_failed
            else []
        )
        if (
            spec.has_failed
            and not xml_errors
            and not self.uncached
            and not self.covered
            and (column.default is not None or not column.required)
        ):  # an empty cell is simply its default (an optional column left blank)
            fill = column.default
            values = [fill if value is _EMPTY else value for value in values]
        failed = (
            [k for k, value in enumerate(values) if value.__class__ is _Failed]
            if spec.has_failed
            else []
        )
        if xml_errors:  # error cells calamine returned empty: found by scanning the XML
            position = {row_index: k for k, row_index in enumerate(rows)}
            for row_index, error in xml_errors.items():
                k = position.get(row_index)
                if k is not None:
                    values[k] = _Failed(f"valeur d'erreur Excel {error}")
                    raws[k] = error
            failed = sorted({*failed, *(position[r] for r in xml_errors if r in position)})
        if formats:  # numbers shown otherwise than they are (a percentage, a unit, × 1 000)
            position = {row_index: k for k, row_index in enumerate(rows)}
            shown = []
            for row_index, number_format in formats.items():
                k = position.get(row_index)
                raw = raws[k] if k is not None else None
                if raw.__class__ not in (int, float) or values[k].__class__ is _Failed:
                    continue
                reason = _shown_otherwise(column, number_format, raw)
                if reason is not None:
                    values[k] = _Failed(reason)
                    shown.append(k)
            failed = sorted({*failed, *shown})
        key = (0, spec.order)
        for k in failed:
            row_index = rows[k]
            outcome = values[k]
            values[k] = None
            if outcome is not _EMPTY:
                problem((row_index, *key), outcome.reason, row_index + 1, text, raws[k])
                bad.add(k)
            elif (row_index, index) in self.uncached:
                problem(
                    (row_index, *key),
                    "formule sans valeur calculée (classeur produit par un programme et jamais "
                    "recalculé) : ouvrez-le dans Excel, enregistrez-le, puis déposez-le à "
                    "nouveau, ou remplacez la formule par sa valeur",
                    row_index + 1,
                    text,
                )
                bad.add(k)
            elif (merge := self.covered.get((row_index, index))) is not None:
                problem(
                    (row_index, *key),
                    f"cellule fusionnée avec {cell_ref(merge[0], merge[1])} (plage "
                    f"{_merged_ref(merge)}) : la valeur n'est lue que dans la première "
                    "cellule de la plage ; défusionnez et recopiez la valeur sur chaque ligne",
                    row_index + 1,
                    text,
                )
                bad.add(k)
            elif column.default is not None:
                values[k] = column.default
            elif column.required:
                problem((row_index, *key), "cellule vide : valeur obligatoire", row_index + 1, text)
                bad.add(k)
        if spec.alternate is not None:
            self._alternate(spec, rows, data, values, failed + blank, bad, problem)
        return values

    def _alternate(self, spec, rows, data, values, failed, bad, problem) -> None:
        """A commune given by code and by name on the same row: both must agree."""
        other_index, other_text = spec.alternate
        skip = set(failed)
        for k, cells in enumerate(data):
            if k in skip or other_index >= len(cells) or is_empty(cells[other_index]):
                continue
            other = cells[other_index]
            same = spec.verdict(other, self.ctx, spec.alternate_memo, other_text) == values[k]
            if not same:
                code = values[k]
                row_index = rows[k]
                problem(
                    (row_index, 0, spec.order, 1),
                    f"« {other_text} » et « {spec.header_text} » ne désignent pas la même "
                    f"commune ({spec.header_text} {code} = "
                    f"{self.ctx.communes.names.get(code, '?')}) : gardez une seule des deux "
                    "colonnes ou corrigez-les",
                    row_index + 1,
                    other_text,
                    other,
                )
                bad.add(k)

    def _totals(self, totals, rows, parsed, bad, problem) -> None:
        """Control total rows against the sum of the valid rows above them; keeps the sums."""
        names = [spec.column.name for spec in self.numeric]
        done = 0
        for above, row_index, cells in totals + [(len(rows), None, None)]:
            for name in names:
                values = parsed[name]
                if isinstance(values, pa.Array):  # no bad row (see validate_chunk)
                    self.sums[name] += pc.sum(values.slice(done, above - done)).as_py() or 0
                    continue
                if bad:
                    part = [values[k] for k in range(done, above) if k not in bad]
                else:
                    part = values[done:above]
                self.sums[name] += sum([value for value in part if value is not None])
            done = above
            if row_index is None:
                break
            self.total_rows += 1
            for spec in self.numeric:
                raw = cells[spec.index] if spec.index < len(cells) else None
                if is_empty(raw):
                    continue
                try:
                    stated = parse_number(raw, spec.column.cell_units)
                except CellError as exc:
                    problem(
                        (row_index, 0, spec.order),
                        f"ligne de total : {exc.reason}",
                        row_index + 1,
                        spec.header_text,
                        raw,
                    )
                    continue
                computed = self.sums[spec.column.name]
                if abs(stated - computed) > TOTAL_TOLERANCE + 1e-9 * abs(computed):
                    problem(
                        (row_index, 0, spec.order),
                        "ligne de total différente de la somme des lignes au-dessus "
                        f"(somme calculée : {display(round(computed, 2))})",
                        row_index + 1,
                        spec.header_text,
                        raw,
                    )


_FIRST_DAY = dt.datetime(1900, 3, 1)  # before: times of day, and Excel's 29 February 1900
_MIDNIGHT = dt.time(0, 0)


def _python_values(values: pa.Array, column: Column) -> list[object] | None:
    """The distinct values of a column as the cell rules receive them: a .csv's texts as they
    are; a column typed by fastexcel as python-calamine gives them to Python, or None when
    that is not certain. Both read the same calamine cells: a number is a float
    (an integer if calamine read one), a boolean a bool, a text a str. A date cell is a
    timestamp for fastexcel; python-calamine gives a time below 1 (refused here), a date for
    a whole serial number, a datetime otherwise (both rounded to the millisecond, measured).
    A whole serial and one a hair off midnight are the same timestamp: a date here, maybe a
    datetime at 00:00 for calamine, which a date, month or text column reads the same
    (``parse_date``, ``parse_month``, ``display``); any other column fails on a date either
    way. Other types (durations...) are left to calamine."""
    kind = values.type
    if pa.types.is_timestamp(kind):
        if column.type not in ("date", "month", "text"):
            return None
        if len(values) and pc.min(values).as_py() < _FIRST_DAY:
            return None
        return [v.date() if v.time() == _MIDNIGHT else v for v in values.to_pylist()]
    if (
        pa.types.is_floating(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
    ):
        return values.to_pylist()
    return None


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


def _has_duplicates(table: pa.Table, names: list[str]) -> bool:
    """Whether two rows share the same values of ``names`` (nulls equal), in Arrow."""
    keys = table.select(names)
    return keys.group_by(names).aggregate([]).num_rows < keys.num_rows


def _table_rules(contract, table: pa.Table, label, ctx: IngestContext, problem) -> None:
    """Rules on the whole table. Arrow tells whether a rule can fail; the rows that fail it
    are then found in Python, on the columns the rule reads."""
    n = table.num_rows

    def values(name: str) -> list:
        return table.column(name).to_pylist()

    def row_numbers() -> list[int]:
        return values("_row_number")

    if contract.grain and n > 1 and _has_duplicates(table, list(contract.grain)):
        seen: dict[tuple, int] = {}
        keys = zip(*(values(g) for g in contract.grain), strict=True)
        for key, row in zip(keys, row_numbers(), strict=True):
            if key in seen:
                problem(
                    "doublon : même clé (" + ", ".join(contract.grain) + ") que la ligne "
                    f"{seen[key]}",
                    row,
                    label.get(contract.grain[0], contract.grain[0]),
                    " / ".join(display(k) for k in key),
                )
            else:
                seen[key] = row
    for column in contract.columns:
        if not column.unique or tuple(contract.grain) == (column.name,) or n < 2:
            continue
        filled = table.filter(table.column(column.name).is_valid())
        if not _has_duplicates(filled, [column.name]):
            continue
        first: dict[Any, int] = {}
        for value, row in zip(values(column.name), row_numbers(), strict=True):
            if value is None:
                continue
            if value in first:
                problem(
                    f"valeur en double (déjà présente ligne {first[value]})",
                    row,
                    label.get(column.name, column.name),
                    value,
                )
            else:
                first[value] = row
    for rule in contract.rules_of("constant"):
        column = rule["column"]
        counts = Counter(values(column))
        if len(counts) > 1:
            common = counts.most_common(1)[0][0]
            for value, row in zip(values(column), row_numbers(), strict=True):
                if value != common:
                    problem(
                        f"doit être identique sur toutes les lignes (valeur majoritaire : {display(common)})",
                        row,
                        label.get(column, column),
                        value,
                    )
    for rule in contract.rules_of("references"):
        target_column = rule.get("source_column", rule["column"])
        known = ctx.references(rule["source"], target_column)
        if known is None:
            problem(
                f"la source de référence « {rule['source']} » n'a pas encore de livraison acceptée "
                f"pour {ctx.campaign_year} : livrez-la d'abord",
                None,
                label.get(rule["column"], rule["column"]),
            )
            continue
        distinct = set(table.column(rule["column"]).unique().to_pylist())
        unknown = distinct - set(known) - {None}
        if not unknown:
            continue
        for value, row in zip(values(rule["column"]), row_numbers(), strict=True):
            if value in unknown:
                problem(
                    f"valeur inconnue de la source de référence « {rule['source']} »",
                    row,
                    label.get(rule["column"], rule["column"]),
                    value,
                )
    for _rule in contract.rules_of("covers_all_communes"):
        column = next(c.name for c in contract.columns if c.type == "commune")
        present = set(table.column(column).unique().to_pylist())
        missing = sorted(set(ctx.communes.names) - present)
        if missing and n:
            names = ", ".join(f"{ctx.communes.names[c]} ({c})" for c in missing[:10])
            more = f" et {len(missing) - 10} autres" if len(missing) > 10 else ""
            problem(
                f"{len(missing)} commune(s) membre(s) absente(s) : {names}{more}",
                None,
                label.get(column, column),
            )
    for rule in contract.rules_of("declared_indicator"):
        column = rule["column"]
        value_column = rule.get("value_column", "valeur")
        for indicator, amount, row in zip(
            values(column), values(value_column), row_numbers(), strict=True
        ):
            entry = ctx.catalogue.get(indicator)
            where = (row, label.get(column, column), indicator)
            if entry is None:
                problem("identifiant d'indicateur inconnu du catalogue", *where)
            elif entry.computation != "declared":
                problem(
                    "indicateur calculé à partir d'une source détaillée : il ne se déclare pas",
                    *where,
                )
            elif entry.department != ctx.department:
                problem(
                    f"indicateur de la direction « {entry.department} » : il se déclare dans son "
                    "propre dossier",
                    *where,
                )
            elif not entry.allow_negative and amount is not None and amount < 0:
                problem(
                    "valeur négative non autorisée pour cet indicateur",
                    row,
                    label.get(value_column, value_column),
                    amount,
                )


def _apply_privacy(contract: Contract, table: pa.Table, ctx: IngestContext) -> pa.Table:
    """Pseudonyms instead of identifiers, age in months instead of a birth date."""
    pseudonymised = [c for c in contract.columns if c.is_pseudonymised]
    aged = [c for c in contract.columns if c.age_reference]
    if pseudonymised and ctx.pseudonymise is None:
        raise RuntimeError("pseudonymisation requise mais aucune clé n'est configurée")
    for column in pseudonymised:
        memo: dict[str, str] = {}
        hidden = [
            None
            if value is None
            else memo.get(value) or memo.setdefault(value, ctx.pseudonymise(str(value)))
            for value in table.column(column.name).to_pylist()
        ]
        position = table.schema.get_field_index(column.name)
        table = table.set_column(position, column.name, pa.array(hidden, type=pa.string()))
    for column in aged:
        births = table.column(column.name).to_pylist()
        references = table.column(column.age_reference).to_pylist()
        ages = [
            _age_in_months(birth, at) if birth and at else None
            for birth, at in zip(births, references, strict=True)
        ]
        table = table.drop_columns([column.name]).append_column(
            pa.field("age_months", pa.int64()), pa.array(ages, type=pa.int64())
        )
    return table


def validate_delivery(contract: Contract, path: Path, ctx: IngestContext) -> ValidationResult:
    """Read and validate one file. Never raises on bad content."""
    # millions of cells are created and none is garbage: the cyclic collector would walk all
    # of them again and again (a third of the time of a large register)
    collecting = gc.isenabled()
    gc.disable()
    try:
        sheets = read_file(path)
        return validate_sheets(contract, sheets, ctx, consume=True)
    except ReadError as exc:
        return ValidationResult(
            sheet=exc.sheet, problems=[Problem(exc.reason, exc.sheet)], warnings=[]
        )
    finally:
        if collecting:
            gc.enable()
