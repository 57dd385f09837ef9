"""The rows of the data sheet, judged ``CHUNK_ROWS`` at a time, cell by cell.

``_SheetState`` is what runs across the chunks of a sheet: running sums (for the control
totals), the columns' memos, the problems in the order of the sheet (row, then contract
column). ``validate_chunk`` sets apart what is not a data row (empty rows, hidden rows,
control totals, ragged lines of a ``.csv``), judges each column of the data rows
(``columns._ColumnSpec``), locates every problem (error cells calamine returned empty,
formulas without a value, merged cells, numbers shown otherwise than they are, a commune
given by code and by name that disagree), runs the rules between the cells of each row, and
returns the rows that pass as an Arrow batch. The Arrow path of a chunk is
``arrow_chunks._ArrowChunks``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from operator import itemgetter

import pyarrow as pa
import pyarrow.compute as pc

from dagster_project.contracts.model import DUCKDB_TYPES
from dagster_project.ingest.normalize import CellError, display, is_empty, parse_number
from dagster_project.ingest.readers.sheet import NumberFormat, cell_ref
from dagster_project.ingest.store import ARROW_TYPES
from dagster_project.ingest.validation.arrow_chunks import _ArrowChunks, _as_arrow
from dagster_project.ingest.validation.cells import _shown_otherwise
from dagster_project.ingest.validation.columns import _EMPTY, _ColumnSpec, _Failed, _has_invisible
from dagster_project.ingest.validation.header import _merged_ref
from dagster_project.ingest.validation.layout import _merge_cover
from dagster_project.ingest.validation.results import Problem
from dagster_project.ingest.validation.rows import (
    _EMPTY_ROW,
    _PLAIN_FIRST_TYPES,
    _TOTAL_ROW,
    _fields_reason,
    _first_filled,
    _line_of,
    _row_kind,
    _row_rules,
)

TOTAL_TOLERANCE = 0.01


class _SheetState(_ArrowChunks):
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
        # numeric cells whose number format shows something else (readers.sheet.NumberFormat)
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
