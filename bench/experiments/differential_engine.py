"""Differential check of the column-wise ingestion engine against the row-wise one it replaced.

The original ``ingest/engine.py`` is taken from git (commit 4b97587, before the rewrite) and
both validate the same sheets: every generated bad input (tests/bad_inputs), the bundled demo
campaign and, when present, the benchmark's SF1 campaign. Problems (reason, sheet, row,
column, value), accepted rows, omitted problems and control-total rows must be equal.

    python bench/experiments/differential_engine.py
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = "4b97587"
sys.path.insert(0, str(ROOT / "tests"))

from bad_inputs.generate import generate  # noqa: E402

from dagster_project.contracts.model import default_contracts  # noqa: E402
from dagster_project.ingest.readers.file import read_file  # noqa: E402
from dagster_project.ingest.readers.sheet import ReadError  # noqa: E402
from dagster_project.ingest.reference_data import load_catalogue, load_communes  # noqa: E402
from dagster_project.ingest.validation import context as new_context  # noqa: E402
from dagster_project.ingest.validation import driver as new  # noqa: E402

UDIS = {"UDI-BETHUNOIS", "UDI-LYS", "UDI-NOEUX-LABOURSE", "UDI-AUCHEL", "UDI-BRUAY"}


def original_engine(folder: Path):
    source = subprocess.run(
        ["git", "show", f"{ORIGINAL}:dagster_project/ingest/engine.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = folder / "original_engine.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("original_engine", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["original_engine"] = module
    spec.loader.exec_module(module)
    return module


def delivered(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix in (".xlsx", ".csv") and not p.name.endswith(".rejet.csv")
    )


def main() -> int:
    contracts = default_contracts()
    communes, catalogue = load_communes(), load_catalogue()
    by_length = sorted(contracts, key=len, reverse=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old = original_engine(folder)
        generate(folder / "cases", heavy=False)
        files = delivered(folder / "cases") + delivered(ROOT / "sources")
        files += delivered(Path("/tmp/kpi_bench/sf1/sources"))
        compared = differing = 0
        for path in files:
            source = next((s for s in by_length if path.name.startswith(s)), None)
            if source is None:
                continue
            try:
                sheets = read_file(path)
                for sheet in sheets:  # the original engine reads a .csv as one list of rows
                    if sheet.tail is not None:
                        sheet.rows.extend(sheet.tail)
                        sheet.tail = None
            except ReadError:
                continue
            year_folder = path.parent.parent.name
            year = int(year_folder) if year_folder.isdigit() else 2025

            def context(module, year=year, department=path.parent.name):
                return module.IngestContext(
                    campaign_year=year,
                    department=department,
                    communes=communes,
                    today=dt.date(2026, 1, 31),
                    references=lambda _source, _column: UDIS,
                    catalogue=catalogue,
                    pseudonymise=lambda value: "P" + value[-3:],
                )

            a = old.validate_sheets(contracts[source], copy.deepcopy(sheets), context(old))
            b = new.validate_sheets(contracts[source], sheets, context(new_context))
            compared += 1
            problems_a = [(p.reason, p.sheet, p.row, p.column, p.value) for p in a.problems]
            problems_b = [(p.reason, p.sheet, p.row, p.column, p.value) for p in b.problems]
            same = (
                problems_a == problems_b
                and a.records == b.records
                and a.omitted_problems == b.omitted_problems
                and a.total_rows == b.total_rows
            )
            if not same:
                differing += 1
                print(f"DIFF {path}: {len(problems_a)}/{len(problems_b)} problems")
        print(f"{compared} files compared, {differing} differ")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
