"""Validation of one delivered file against its contract: the driver.

``validate_delivery`` applies every common rule of the collection kit and every rule of the
contract. It never raises on bad data: it returns the parsed rows (when there is no problem)
and the list of problems, each locating file, sheet, row, column and value, with a French
reason. A delivery is accepted only when that list is empty.

``validate_sheets`` is the order of the judgement: the data sheet and its header
(``header``), what around the cells would be read otherwise than it is seen (``layout``),
the rows ``CHUNK_ROWS`` at a time, in Arrow columns when the file allows it and cell by cell
otherwise (``chunks``), the rules on the whole table (``table``), then privacy.
"""

from __future__ import annotations

import gc
from collections import Counter
from pathlib import Path

import pyarrow as pa

from dagster_project.contracts.model import Contract
from dagster_project.ingest.normalize import normalize_header
from dagster_project.ingest.readers.file import read_file
from dagster_project.ingest.readers.sheet import ReadError, Sheet, column_letters
from dagster_project.ingest.validation.arrow_chunks import _FALL_BACK
from dagster_project.ingest.validation.chunks import _SheetState
from dagster_project.ingest.validation.columns import _ColumnSpec
from dagster_project.ingest.validation.context import IngestContext
from dagster_project.ingest.validation.header import (
    _find_data_sheet,
    _Header,
    _merged_ref,
    _required_headers,
)
from dagster_project.ingest.validation.layout import (
    _column_has_data,
    _hidden_columns_with_data,
    _hidden_data_sheet,
    _merged_headers_over_data,
    _other_headers,
    _other_sheets_hint,
    _register_rows_above,
    _rows_in_other_sheets,
)
from dagster_project.ingest.validation.results import Problem, ValidationResult, _ProblemSink
from dagster_project.ingest.validation.table import _apply_privacy, _table_rules

CHUNK_ROWS = 50_000  # rows validated and converted at a time


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
