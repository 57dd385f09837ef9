"""Scratch experiment behind proposal 1 of bench/README.md (not project code).

Validates one generated delivery three ways, on the same sheets read once:
the project's ``validate_sheets`` (row by row), the same with ``_parse_cell`` memoised, and
a column-wise pass that parses each distinct value of a column once (then checks the grain
on the parsed columns). Asserts that the memoised run gives the same records.

    KPI_DBT_DIR=/tmp/kpi_bench/sf10/dbt KPI_MAX_ROWS=50000000 \\
        python bench/experiments/columnwise_validation.py 10 eau_qualite dechets_collecte
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import sys
import time
from pathlib import Path

from dagster_project.contracts.model import default_contracts
from dagster_project.ingest.normalize import CellError, CommuneMatcher, is_empty
from dagster_project.ingest.readers.file import read_file
from dagster_project.ingest.validation import cells, columns
from dagster_project.ingest.validation.context import IngestContext
from dagster_project.ingest.validation.driver import validate_sheets
from dagster_project.ingest.validation.header import _find_data_sheet

WORK = Path(os.environ.get("KPI_BENCH_DIR", "/tmp/kpi_bench"))


def column_wise(contract, sheets, ctx) -> tuple[int, int]:
    """Parse each distinct value of each column once; returns (problems, duplicate keys)."""
    sheet, header = _find_data_sheet(contract, sheets)
    body = sheet.rows[header.row_index + 1 :]
    parsed_columns, problems = {}, 0
    for column in contract.columns:
        if column.name not in header.positions:
            continue
        index, text = header.positions[column.name]
        memo: dict = {}
        parsed = []
        for value in (r[index] if index < len(r) else None for r in body):
            key = (value.__class__, value)
            hit = memo.get(key)
            if hit is None:
                if is_empty(value):
                    hit = (True, column.default)
                else:
                    try:
                        hit = (True, cells._parse_cell(column, value, ctx, text))
                    except CellError as exc:
                        hit = (False, exc)
                memo[key] = hit
            problems += not hit[0]
            parsed.append(hit[1])
        parsed_columns[column.name] = parsed
    keys = list(zip(*(parsed_columns[g] for g in contract.grain), strict=True))
    return problems, len(keys) - len(set(keys))


def main(sf: str, sources: list[str]) -> None:
    root = WORK / f"sf{sf}"
    with (root / "dbt" / "seeds" / "communes.csv").open(encoding="utf-8") as handle:
        communes = CommuneMatcher({r["code_insee"]: r["nom"] for r in csv.DictReader(handle)})
    contracts = default_contracts()
    for source in sources:
        path = next((root / "sources" / "2025").glob(f"*/{source}_2025.*"))
        started = time.perf_counter()
        sheets = read_file(path)
        read = time.perf_counter() - started
        udis = {r[2] for s in sheets for r in s.rows if len(r) > 2}
        ctx = IngestContext(
            campaign_year=2025,
            department=path.parent.name,
            communes=communes,
            today=dt.date(2026, 1, 1),
            references=lambda _source, _column, udis=udis: udis,
        )
        contract = contracts[source]
        started = time.perf_counter()
        reference = validate_sheets(contract, sheets, ctx)
        row_wise = time.perf_counter() - started

        original, caches = columns._parse_cell, {}

        def memoised(column, raw, ctx, header, original=original, caches=caches):
            cache = caches.setdefault(column.name, {})
            key = (type(raw), raw)
            hit = cache.get(key)
            if hit is None:
                try:
                    hit = (True, original(column, raw, ctx, header))
                except CellError as exc:
                    hit = (False, exc)
                cache[key] = hit
            if hit[0]:
                return hit[1]
            raise hit[1]

        columns._parse_cell = memoised
        started = time.perf_counter()
        again = validate_sheets(contract, sheets, ctx)
        memo_time = time.perf_counter() - started
        columns._parse_cell = original
        assert again.records == reference.records

        started = time.perf_counter()
        problems, duplicates = column_wise(contract, sheets, ctx)
        columns_time = time.perf_counter() - started
        print(
            f"{source}: {len(reference.records)} rows; read {read:.2f} s; validate_sheets "
            f"{row_wise:.2f} s; memoised _parse_cell {memo_time:.2f} s; column-wise "
            f"{columns_time:.2f} s (problems {problems}, duplicates {duplicates})"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
