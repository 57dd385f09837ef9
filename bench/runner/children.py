"""What the benchmark's child processes run (``run.py _raw|_ingest|_dbtparse|_steps|
_queries``), and the files the stages touch (a re-delivery, the published copy)."""

from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

from runner import BENCH, ROOT, TOOLS


def child_raw(sources: Path) -> int:
    import csv as csv_module

    from python_calamine import CalamineWorkbook

    started, cpu_started = time.perf_counter(), time.process_time()
    files = rows = cells = 0
    for path in sorted(sources.glob("[0-9][0-9][0-9][0-9]/*/*")):
        suffix = path.suffix.lower()
        if suffix == ".xlsx":
            workbook = CalamineWorkbook.from_path(str(path))
            for name in workbook.sheet_names:
                data = workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)
                rows += len(data)
                cells += sum(len(r) for r in data)
        elif suffix == ".csv" and not path.name.endswith(".rejet.csv"):
            with path.open(encoding="utf-8", newline="") as handle:
                data = list(csv_module.reader(handle, delimiter=";"))
            rows += len(data)
            cells += sum(len(r) for r in data)
        else:
            continue
        files += 1
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "cpu_seconds": round(cpu, 3),
                "files": files,
                "rows": rows,
                "cells": cells,
            }
        )
    )
    return 0


LIFTED_LIMITS = {
    "KPI_MAX_FILE_BYTES": str(4 * 2**30),
    "KPI_MAX_UNCOMPRESSED_BYTES": str(16 * 2**30),
    "KPI_MAX_ROWS": str(50_000_000),
    "KPI_MAX_CELLS": str(500_000_000),
}


def lift_limits() -> None:
    """Benchmark only: raise the reader's safety limits when a scale's register cannot fit
    them (SF10 eau_qualite: 400 000 rows; SF100: 4 M rows, 300 MiB of csv). The project
    reads them from KPI_MAX_* (set in the child's environment); older readers without those
    variables get the module constants patched."""
    from dagster_project.ingest.readers import sheet as readers

    for name, value in LIFTED_LIMITS.items():
        setattr(readers, name.removeprefix("KPI_"), int(value))


def _reference_order(contracts) -> list[str]:
    order: list[str] = []

    def visit(source_id: str) -> None:
        if source_id in order:
            return
        for rule in contracts[source_id].rules_of("references"):
            visit(rule["source"])
        order.append(source_id)

    for source_id in contracts:
        visit(source_id)
    return order


def child_ingest(sources: Path, warehouse: Path, lift: bool, profile: Path | None) -> int:
    imports_started = time.perf_counter()
    import duckdb

    from dagster_project.contracts.model import default_contracts
    from dagster_project.ingest.discovery import discover
    from dagster_project.ingest.pipeline import Ingestor

    imports = time.perf_counter() - imports_started
    if lift:
        lift_limits()
    profiler = None
    if profile:
        sys.path.insert(0, str(TOOLS))
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    from dagster_project.ingest import store

    # the warehouse's own time (DuckDB: connection, tables, each source's transaction, the
    # checkpoint at close), to tell it from the reading and validating
    warehouse_seconds = 0.0

    def timed(function):
        def wrapper(*args, **kwargs):
            nonlocal warehouse_seconds
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                warehouse_seconds += time.perf_counter() - t0

        return wrapper

    for name in ("ensure_tables", "record_deliveries", "known_delivery"):
        if hasattr(store, name):
            setattr(store, name, timed(getattr(store, name)))
    started, cpu_started = time.perf_counter(), time.process_time()
    con = timed(duckdb.connect)(str(warehouse))
    contracts = default_contracts()
    files = discover(sources, contracts)
    ingestor = Ingestor(con, contracts)
    per_source, accepted, rejected = {}, 0, []
    try:  # the order a run gives its ingestion steps (older versions: references first)
        from dagster_project.ingest.discovery import ingestion_order

        order = ingestion_order(contracts, files)
    except ImportError:
        order = _reference_order(contracts)
    for source_id in order:
        t0 = time.perf_counter()
        summary = ingestor.ingest_source(source_id, files)
        per_source[source_id] = round(time.perf_counter() - t0, 3)
        accepted += len(summary.accepted)
        rejected += summary.rejected
    timed(con.close)()
    seconds = time.perf_counter() - started
    if profiler:
        profiler.stop()
        profile.write_text(profiler.output_text(unicode=False, color=False), encoding="utf-8")
        profile.with_suffix(".html").write_text(profiler.output_html(), encoding="utf-8")
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "cpu_seconds": round(time.process_time() - cpu_started, 3),
                "import_seconds": round(imports, 3),
                "warehouse_seconds": round(warehouse_seconds, 3),
                "accepted": accepted,
                "rejected": rejected,
                "per_source": per_source,
            }
        )
    )
    return 0


def child_dbt_parse() -> int:
    """Parse the (copied) dbt project with the environment ``kpi run`` gives dbt, so that the
    timed run finds a warm manifest and partial parsing, as on an analyst's machine."""
    from dagster_project.defs.assets.dbt import parse_project
    from dagster_project.settings import DBT_PROJECT_DIR, Settings

    Settings.from_env().export()
    parse_project()  # the command kpi's definitions run (same --target, same environment)
    print(json.dumps({"parsed": str(DBT_PROJECT_DIR)}))
    return 0


def child_steps(ingestion_keys: list[str]) -> int:
    """Step timings of the latest run of the Dagster instance (DAGSTER_HOME)."""
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    runs = instance.get_runs(limit=1)
    if not runs:
        print(json.dumps({}))
        return 0
    run = runs[0]
    events = instance.all_logs(run.run_id)
    steps: dict[str, dict[str, float]] = {}
    counts: dict[str, int] = {}
    for entry in events:
        event = entry.dagster_event
        kind = event.event_type_value if event else "LOG"
        counts[kind] = counts.get(kind, 0) + 1
        if event and entry.step_key and kind in ("STEP_START", "STEP_SUCCESS", "STEP_FAILURE"):
            steps.setdefault(entry.step_key, {})[kind] = entry.timestamp
    windows = []
    for key, marks in steps.items():
        start = marks.get("STEP_START")
        end = marks.get("STEP_SUCCESS") or marks.get("STEP_FAILURE")
        if start is None or end is None:
            continue
        # steps of the project since 5 December (one per reference level: ingest_sources,
        # raw_suites, ingest_sources_2, raw_suites_2, mart_suites), and one step per source
        # and per suite before
        if key in ingestion_keys or key.startswith("ingest_sources"):
            category = "ingest"
        elif key == "dbt_models" or key.startswith("dbt"):
            category = "dbt"
        elif key.startswith(("raw", "marts", "mart_suites", "seeds", "staging", "intermediate")):
            category = "checks"
        else:
            category = "other_steps"
        windows.append({"step": key, "category": category, "start": start, "end": end})
    first = min(e.timestamp for e in events)
    last = max(e.timestamp for e in events)
    first_step = min((w["start"] for w in windows), default=first)
    print(
        json.dumps(
            {
                "run_id": run.run_id,
                "first_event": first,
                "last_event": last,
                "first_step": first_step,
                "event_counts": counts,
                "windows": windows,
            }
        )
    )
    return 0


def child_queries(database: Path, runs: int) -> int:
    import duckdb

    queries = analyst_queries()
    con = duckdb.connect(str(database), read_only=True)
    out = []
    for name, sql, origin in queries:
        try:
            rows = len(con.execute(sql).fetchall())  # warm-up
        except duckdb.Error as exc:
            out.append({"name": name, "origin": origin, "error": str(exc)[:300]})
            continue
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            con.execute(sql).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out.append(
            {
                "name": name,
                "origin": origin,
                "rows": rows,
                "p50_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[max(0, round(0.95 * len(times)) - 1)], 2),
                "max_ms": round(times[-1], 2),
            }
        )
    con.close()
    print(json.dumps({"database": str(database), "runs": runs, "queries": out}))
    return 0


def analyst_queries() -> list[tuple[str, str, str]]:
    """(name, sql, origin): the example queries of docs/analysts.md (the ```sql blocks from
    its "Exemples de requêtes" section on, named after their heading; DuckDB shell commands
    skipped), else bench/queries.sql."""
    doc = ROOT / "docs" / "analysts.md"
    found: list[tuple[str, str, str]] = []
    if doc.is_file():
        text = doc.read_text(encoding="utf-8")
        start = re.search(r"^#+ Exemples de requ", text, flags=re.M)
        text = text[start.start() :] if start else text
        heading = "query"
        for part in re.split(r"(^#+ [^\n]*|```sql\n.*?```)", text, flags=re.M | re.S):
            if part.startswith("#"):
                heading = part.lstrip("#").strip()
            elif part.startswith("```sql"):
                body = part[len("```sql\n") : -3]
                for statement in body.split(";"):
                    if not _has_sql(statement) or statement.strip().startswith("."):
                        continue
                    name = (
                        heading if not any(n == heading for n, _, _ in found) else heading + " (2)"
                    )
                    found.append((name, statement.strip(), "docs/analysts.md"))
    if found:
        return found
    text = (BENCH / "queries.sql").read_text(encoding="utf-8")
    for part in re.split(r"^-- name: ", text, flags=re.M)[1:]:
        name, _, sql = part.partition("\n")
        found.append((name.strip(), sql.strip().rstrip(";"), "bench/queries.sql"))
    return found


def _has_sql(statement: str) -> bool:
    lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
    return bool("".join(lines).strip())


def _force_remove(func, path, _exc) -> None:
    os.chmod(path, 0o700)
    os.chmod(os.path.dirname(path), 0o700)
    func(path)


def redeliver(path: Path) -> str:
    """Deliver the workbook again with one cell changed (management mode of the first row);
    a new modification time makes it the delivery in force."""
    if path.suffix == ".csv":
        text = path.read_text(encoding="utf-8").splitlines(keepends=True)
        text[1] = text[1].replace("Regie", "Delegation", 1)
        path.write_text("".join(text), encoding="utf-8")
        return "csv: first row management mode"
    import openpyxl

    workbook = openpyxl.load_workbook(path)
    sheet = workbook.worksheets[0]
    header_row = next(
        r for r in range(1, 12) if str(sheet.cell(r, 3).value or "").lower().startswith("mode")
    )
    cell = sheet.cell(header_row + 1, 3)
    before = cell.value
    cell.value = "Delegation" if str(before).lower() == "regie" else "Regie"
    workbook.save(path)
    now = time.time()
    os.utime(path, (now, now))
    return f"{sheet.title}!C{header_row + 1}: {before} -> {cell.value}"


def published_database(warehouse: Path) -> Path | None:
    """The published copy when the project publishes one, else the build/warehouse file."""
    import duckdb

    candidates = [warehouse, warehouse.parent / ".build" / warehouse.name]
    for path in candidates:
        if not path.is_file():
            continue
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                ok = con.execute(
                    "select count(*) from information_schema.tables "
                    "where table_schema = 'marts' and table_name = 'fct_indicator_values'"
                ).fetchone()[0]
        except duckdb.Error:
            continue
        if ok:
            return path
    return None
