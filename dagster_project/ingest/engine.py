"""Validation of one delivered file against its contract.

``validate_delivery`` applies every common rule of the collection kit and every rule of the
contract. It never raises on bad data: it returns the parsed rows (when there is no problem)
and the list of problems, each locating file, sheet, row, column and value, with a French
reason. A delivery is accepted only when that list is empty.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dagster_project.contracts import TYPE_LABELS_FR, Column, Contract
from dagster_project.ingest.normalize import (
    CellError,
    CommuneMatcher,
    display,
    excel_error,
    is_empty,
    normalize_header,
    parse_date,
    parse_month,
    parse_number,
    parse_yes_no,
)
from dagster_project.ingest.readers import (
    ReadError,
    Sheet,
    cell_ref,
    column_letters,
    read_file,
)

MAX_HEADER_SEARCH_ROWS = 11  # up to 10 title or blank rows, then the header
MAX_HEADER_DIAGNOSTIC_ROWS = 60  # how far down a misplaced header is looked for (to say so)
MAX_PROBLEMS = 2000  # beyond, the report says how many more there are
TOTAL_TOLERANCE = 0.01
MASKED = "(masqué)"


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
    records: list[dict[str, Any]]
    problems: list[Problem]
    warnings: list[Problem]
    header_row: int | None = None
    total_rows: int = 0
    omitted_problems: int = 0

    @property
    def accepted(self) -> bool:
        return not self.problems


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


def _find_data_sheet(contract: Contract, sheets: list[Sheet]) -> tuple[Sheet, _Header] | Problem:
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
    if column.step:
        ratio = value / column.step
        if abs(ratio - round(ratio)) > 1e-9:
            raise CellError(f"doit être un multiple de {display(column.step).replace('.', ',')}")


def _check_date_range(column: Column, value: dt.date, ctx: IngestContext) -> None:
    rule = column.effective_date_range
    if rule in (None, "any"):
        return
    if rule == "campaign_year":
        if value.year != ctx.campaign_year:
            raise CellError(f"date hors de l'année de la campagne {ctx.campaign_year}")
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
        value = parse_number(raw)
        if kind == "integer":
            if not float(value).is_integer():
                raise CellError("nombre entier attendu")
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


def _is_total_row(cells: Iterable[object]) -> bool:
    for cell in cells:
        if not is_empty(cell):
            return isinstance(cell, str) and cell.strip().lower().startswith("total")
    return False


# ----------------------------------------------------------------------------------------
# main entry point


def _age_in_months(birth: dt.date, at: dt.date) -> int:
    months = (at.year - birth.year) * 12 + (at.month - birth.month)
    if at.day < birth.day:
        months -= 1
    return months


def validate_sheets(
    contract: Contract, sheets: list[Sheet], ctx: IngestContext
) -> ValidationResult:
    found = _find_data_sheet(contract, sheets)
    if isinstance(found, Problem):
        return ValidationResult(sheet=found.sheet, records=[], problems=[found], warnings=[])
    sheet, header = found
    problems: list[Problem] = []
    warnings: list[Problem] = []
    masked = {c.name for c in contract.columns if c.privacy}

    def problem(reason: str, row: int | None, column: str | None, value: object = "") -> None:
        shown = MASKED if column in masked and not is_empty(value) else display(value)
        problems.append(Problem(reason, sheet.name, row, column, shown))

    for name, text in header.duplicates:
        problem(f"colonne « {name} » présente deux fois dans l'en-tête", header.row_index + 1, text)
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

    columns = [c for c in contract.columns if c.name in header.positions]
    absent_optional = [c for c in contract.columns if c.name not in header.positions]
    label = {c.name: header.positions[c.name][1] for c in columns}
    records: list[dict[str, Any]] = []
    numeric = [c for c in columns if c.type in ("integer", "number")]
    running_sums: dict[str, float] = dict.fromkeys((c.name for c in numeric), 0.0)
    total_rows = 0
    errors_by_row: dict[int, dict[int, str]] = defaultdict(dict)
    for (r, col), text in sheet.errors.items():
        errors_by_row[r][col] = text
    covered = _merge_cover(sheet, header)
    for merge in _merged_headers_over_data(sheet, header):
        owner = next(c for c in columns if header.positions[c.name][0] == merge[1])
        filled = ", ".join(
            column_letters(c)
            for c in range(merge[1] + 1, merge[3] + 1)
            if _column_has_data(sheet, header.row_index, c)
        )
        problem(
            f"en-tête « {label[owner.name]} » fusionné sur plusieurs colonnes "
            f"({_merged_ref(merge)}) : la colonne {filled} contient des valeurs mais pas "
            "d'en-tête à elle, ces valeurs seraient ignorées ; défusionnez l'en-tête et donnez "
            "à chaque colonne son propre en-tête",
            header.row_index + 1,
            label[owner.name],
        )

    for row_index in range(header.row_index + 1, len(sheet.rows)):
        cells = sheet.rows[row_index]
        row_number = row_index + 1
        row_errors = errors_by_row.get(row_index, {})
        if all(is_empty(c) for c in cells) and not row_errors:
            continue
        if row_index in sheet.hidden_rows:
            problem(
                "ligne masquée contenant des données : affichez-la et vérifiez-la, ou supprimez-la",
                row_number,
                None,
            )
            continue
        if _is_total_row(cells):
            total_rows += 1
            for column in numeric:
                raw = (
                    cells[header.positions[column.name][0]]
                    if header.positions[column.name][0] < len(cells)
                    else None
                )
                if is_empty(raw):
                    continue
                try:
                    stated = parse_number(raw)
                except CellError as exc:
                    problem(f"ligne de total : {exc.reason}", row_number, label[column.name], raw)
                    continue
                computed = running_sums[column.name]
                if abs(stated - computed) > TOTAL_TOLERANCE + 1e-9 * abs(computed):
                    problem(
                        "ligne de total différente de la somme des lignes au-dessus "
                        f"(somme calculée : {display(round(computed, 2))})",
                        row_number,
                        label[column.name],
                        raw,
                    )
            continue

        record: dict[str, Any] = {}
        row_ok = True
        for column in columns:
            index, header_text = header.positions[column.name]
            raw = cells[index] if index < len(cells) else None
            error = row_errors.get(index) or excel_error(raw)
            if error:
                problem(f"valeur d'erreur Excel {error}", row_number, header_text, error)
                row_ok = False
                continue
            if is_empty(raw):
                if (row_index, index) in sheet.uncached_formulas:
                    problem(
                        "formule sans valeur calculée (classeur produit par un programme et jamais "
                        "recalculé) : ouvrez-le dans Excel, enregistrez-le, puis déposez-le à "
                        "nouveau, ou remplacez la formule par sa valeur",
                        row_number,
                        header_text,
                    )
                    row_ok = False
                    continue
                merge = covered.get((row_index, index))
                if merge is not None:
                    problem(
                        f"cellule fusionnée avec {cell_ref(merge[0], merge[1])} (plage "
                        f"{_merged_ref(merge)}) : la valeur n'est lue que dans la première "
                        "cellule de la plage ; défusionnez et recopiez la valeur sur chaque ligne",
                        row_number,
                        header_text,
                    )
                    row_ok = False
                    continue
                if column.default is not None:
                    record[column.name] = column.default
                elif column.required:
                    problem("cellule vide : valeur obligatoire", row_number, header_text)
                    row_ok = False
                else:
                    record[column.name] = None
                continue
            try:
                record[column.name] = _parse_cell(column, raw, ctx, header_text)
            except CellError as exc:
                reason = (
                    exc.reason if exc.complete else f"{exc.reason} ({TYPE_LABELS_FR[column.type]})"
                )
                problem(reason, row_number, header_text, raw)
                row_ok = False
                continue
            alternate = header.alternates.get(column.name)
            if alternate and alternate[0] < len(cells) and not is_empty(cells[alternate[0]]):
                other = cells[alternate[0]]
                try:
                    same = _parse_cell(column, other, ctx, alternate[1]) == record[column.name]
                except CellError:
                    same = False
                if not same:
                    code = record[column.name]
                    problem(
                        f"« {alternate[1]} » et « {header_text} » ne désignent pas la même "
                        f"commune ({header_text} {code} = {ctx.communes.names.get(code, '?')}) : "
                        "gardez une seule des deux colonnes ou corrigez-les",
                        row_number,
                        alternate[1],
                        other,
                    )
                    row_ok = False
        for column in absent_optional:
            record[column.name] = column.default
        if not row_ok:
            continue
        for column in numeric:
            value = record.get(column.name)
            if value is not None:
                running_sums[column.name] += value
        _row_rules(contract, record, row_number, label, ctx, problem)
        record["_sheet"] = sheet.name
        record["_row_number"] = row_number
        records.append(record)

    if not records and not problems:
        problem(
            "aucune ligne de données sous l'en-tête" + _other_sheets_hint(contract, sheets, sheet),
            header.row_index + 2,
            None,
        )
    _table_rules(contract, records, label, ctx, problem)
    omitted = max(0, len(problems) - MAX_PROBLEMS)
    result = ValidationResult(
        sheet=sheet.name,
        records=records if not problems else [],
        problems=problems[:MAX_PROBLEMS],
        warnings=warnings,
        header_row=header.row_index + 1,
        total_rows=total_rows,
        omitted_problems=omitted,
    )
    if result.accepted:
        _apply_privacy(contract, result.records, ctx)
    return result


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


def _table_rules(contract, records, label, ctx: IngestContext, problem) -> None:
    if contract.grain:
        seen: dict[tuple, int] = {}
        for record in records:
            key = tuple(record.get(g) for g in contract.grain)
            if key in seen:
                problem(
                    "doublon : même clé (" + ", ".join(contract.grain) + ") que la ligne "
                    f"{seen[key]}",
                    record["_row_number"],
                    label.get(contract.grain[0], contract.grain[0]),
                    " / ".join(display(k) for k in key),
                )
            else:
                seen[key] = record["_row_number"]
    for column in contract.columns:
        if column.unique and tuple(contract.grain) != (column.name,):
            first: dict[Any, int] = {}
            for record in records:
                value = record.get(column.name)
                if value is None:
                    continue
                if value in first:
                    problem(
                        f"valeur en double (déjà présente ligne {first[value]})",
                        record["_row_number"],
                        label.get(column.name, column.name),
                        value,
                    )
                else:
                    first[value] = record["_row_number"]
    for rule in contract.rules_of("constant"):
        values = Counter(r.get(rule["column"]) for r in records)
        if len(values) > 1:
            common = values.most_common(1)[0][0]
            for record in records:
                if record.get(rule["column"]) != common:
                    problem(
                        f"doit être identique sur toutes les lignes (valeur majoritaire : {display(common)})",
                        record["_row_number"],
                        label.get(rule["column"], rule["column"]),
                        record.get(rule["column"]),
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
        for record in records:
            value = record.get(rule["column"])
            if value is not None and value not in known:
                problem(
                    f"valeur inconnue de la source de référence « {rule['source']} »",
                    record["_row_number"],
                    label.get(rule["column"], rule["column"]),
                    value,
                )
    for _rule in contract.rules_of("covers_all_communes"):
        column = next(c.name for c in contract.columns if c.type == "commune")
        present = {r.get(column) for r in records}
        missing = sorted(set(ctx.communes.names) - present)
        if missing and records:
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
        for record in records:
            indicator = record.get(column)
            entry = ctx.catalogue.get(indicator)
            where = (record["_row_number"], label.get(column, column), indicator)
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
            elif (
                not entry.allow_negative
                and record.get(value_column) is not None
                and record[value_column] < 0
            ):
                problem(
                    "valeur négative non autorisée pour cet indicateur",
                    record["_row_number"],
                    label.get(value_column, value_column),
                    record[value_column],
                )


def _apply_privacy(contract: Contract, records: list[dict[str, Any]], ctx: IngestContext) -> None:
    pseudonymised = [c for c in contract.columns if c.is_pseudonymised]
    aged = [c for c in contract.columns if c.age_reference]
    if pseudonymised and ctx.pseudonymise is None:
        raise RuntimeError("pseudonymisation requise mais aucune clé n'est configurée")
    for record in records:
        for column in pseudonymised:
            if record.get(column.name) is not None:
                record[column.name] = ctx.pseudonymise(str(record[column.name]))
        for column in aged:
            birth = record.pop(column.name, None)
            reference = record.get(column.age_reference)
            record["age_months"] = _age_in_months(birth, reference) if birth and reference else None


def validate_delivery(contract: Contract, path: Path, ctx: IngestContext) -> ValidationResult:
    """Read and validate one file. Never raises on bad content."""
    try:
        sheets = read_file(path)
    except ReadError as exc:
        return ValidationResult(
            sheet=exc.sheet, records=[], problems=[Problem(exc.reason, exc.sheet)], warnings=[]
        )
    return validate_sheets(contract, sheets, ctx)
