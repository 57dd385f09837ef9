"""Side-by-side benchmark: raw calamine read, naive pandas peer, the project.

For each scale factor, on the same generated files (``bench/scale.py``), every stage runs in
its own child process; wall time and peak memory are measured from here:

* ``raw``            python-calamine reads every sheet of every workbook (``.csv``: the csv
                     module), nothing else: the floor of any Python reader;
* ``naive``          ``bench/naive_peer.py`` with ``pandas.read_excel`` as a script would call
                     it (default engine: openpyxl); ``naive_calamine`` the same script with
                     ``engine="calamine"`` (a better-informed peer);
* ``ingest``         the project's ingestion alone (``Ingestor`` on a fresh warehouse, every
                     contract, in reference order): read, validate, pseudonymise, load;
* ``kpi_run``        ``kpi run`` on a fresh warehouse and Dagster home: ingestion, dbt build,
                     checks (and publication when the project publishes); the Dagster event
                     log gives the time of each step, the memory samples its peak;
* ``freeze``         ``kpi freeze --year 2025``;
* ``redelivery``     one workbook (``eau_reseau``) delivered again with one cell changed,
                     then ``kpi run --select eau_reseau``;
* ``queries``        the analysts' example queries (``docs/analysts.md``, else
                     ``bench/queries.sql``) on the published copy: p50/p95 over 50 runs.

Peak memory: the largest sum of resident memory over the child's process tree (sampled
every 0.1 s from /proc) and the kernel's ``ru_maxrss`` (largest single process).

    python bench/run.py --sf 1 10 [--stages raw naive ...] [--repeat 3] [--profile]
    python bench/run.py --render          # rebuild results.csv / results.md from the JSON

Results: ``bench/results/sf<n>.json`` (everything measured) and ``results.csv`` /
``results.md`` (the table, with the machine and the versions). No figure is asserted by the
tests: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

RESULTS = BENCH / "results"
WORK = Path(os.environ.get("KPI_BENCH_DIR", "/tmp/kpi_bench"))
TOOLS = WORK / "tools"  # pyinstrument installed with pip --target (never in the project venv)
VENV_BIN = Path(sys.executable).parent
PY = sys.executable
KPI = str(VENV_BIN / "kpi")
BENCH_KEY = "bench-only-key-0123456789abcdef0123456789abcdef"  # fictitious agents only
ALL_STAGES = [
    "raw",
    "naive",
    "naive_calamine",
    "ingest",
    "project",
    "redelivery",
    "queries",
    "fixed",
]
QUERY_RUNS = 50


# ------------------------------------------------------------------------------ measuring


def _children(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(parents.get(current, []))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except (OSError, IndexError, ValueError):
        return 0


MEMORY_GUARD_KB = int(os.environ.get("KPI_BENCH_MEMORY_GUARD_GIB", "12")) * 2**20


class TreeSampler(threading.Thread):
    """Samples the resident memory of a process tree (sum over its processes); kills the
    tree (its own process group) beyond MEMORY_GUARD_KB, so that a benchmark never pushes
    the machine into swapping or the OOM killer."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()
        self.killed_for_memory = False

    def run(self) -> None:
        while not self.stop.is_set():
            total = sum(_rss_kb(p) for p in _children(self.pid))
            self.samples.append((time.time(), total))
            if total > MEMORY_GUARD_KB and not self.killed_for_memory:
                self.killed_for_memory = True
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
            self.stop.wait(self.interval)

    @property
    def peak_kb(self) -> int:
        return max((kb for _, kb in self.samples), default=0)

    def peak_between(self, start: float, end: float) -> int:
        return max((kb for t, kb in self.samples if start <= t <= end), default=0)


def run_measured(
    cmd: list[str], env: dict[str, str], label: str, log_dir: Path, timeout: float | None = None
) -> dict[str, Any]:
    """Run one child, return wall seconds, peaks, exit code and its JSON line (if any)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{label}.out", log_dir / f"{label}.err"
    load_before = os.getloadavg()[0]
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started_at = time.time()
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        timer = None
        if timeout:
            timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
            timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if timer:
            timer.cancel()
        sampler.stop.set()
        sampler.join()
    stdout = out_path.read_text(encoding="utf-8", errors="replace")
    payload = {}
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                payload = json.loads(line)
            except json.JSONDecodeError:
                continue
            break
    return {
        "label": label,
        "cmd": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(cmd)),
        "exit_code": proc.returncode,
        "timed_out": proc.returncode == -signal.SIGKILL and not sampler.killed_for_memory,
        "killed_for_memory": sampler.killed_for_memory,
        "wall_seconds": round(wall, 3),
        "started_at": started_at,
        "ended_at": started_at + wall,
        "peak_tree_mib": round(sampler.peak_kb / 1024, 1),
        "maxrss_mib": round(usage.ru_maxrss / 1024, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "child": payload,
        "_sampler": sampler,
    }


def _public(measure: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in measure.items() if not k.startswith("_")}


# ------------------------------------------------------------------------------ child stages


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
    from dagster_project.ingest.pipeline import Ingestor, discover

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
        from dagster_project.ingest.pipeline import ingestion_order

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


def child_kpi(lift: bool, argv: list[str]) -> int:
    """``kpi ...`` in this process, with the reader limits lifted when asked, and with the
    asset selection of ``--select`` given to Dagster as a list (the CLI hands it a set, which
    ``execute_in_process`` refuses: reported as a bug, patched here only)."""
    if lift:
        lift_limits()
    from dagster_project.cli import run as run_module

    original = getattr(run_module, "_selected_keys", None)
    if original is not None:

        def as_list(*args, **kwargs):
            keys = original(*args, **kwargs)
            return sorted(keys, key=lambda k: k.to_user_string()) if keys is not None else None

        run_module._selected_keys = as_list
    from dagster_project.cli import main

    return main(argv)


def child_dbt_parse() -> int:
    """Parse the (copied) dbt project with the environment ``kpi run`` gives dbt, so that the
    timed run finds a warm manifest and partial parsing, as on an analyst's machine."""
    from dagster_project.defs.resources import dbt_executable
    from dagster_project.settings import DBT_PROJECT_DIR, Settings

    settings = Settings.from_env()
    settings.export()
    subprocess.run(
        [
            dbt_executable(),
            "parse",
            "--quiet",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target",
            settings.dbt_target,
        ],
        cwd=DBT_PROJECT_DIR,
        check=True,
    )
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
        if key in ingestion_keys:
            category = "ingest"
        elif key == "dbt_models" or key.startswith("dbt"):
            category = "dbt"
        elif key.startswith(("raw", "marts", "seeds", "staging", "intermediate")):
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


# ------------------------------------------------------------------------------ a scale


class ScaleRun:
    def __init__(self, sf: int, repeat: int, timeout: float | None):
        self.sf = sf
        self.repeat = repeat
        self.timeout = timeout
        self.root = WORK / f"sf{sf}"
        self.sources = self.root / "sources"
        self.dbt = self.root / "dbt"
        self.project = self.root / "project"
        self.logs = self.root / "logs"
        self.result: dict[str, Any] = {"sf": sf, "stages": {}}
        self.manifest: dict[str, Any] = {}

    # --- environment
    @property
    def warehouse(self) -> Path:
        return self.project / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "KPI_DBT_DIR": str(self.dbt),
                "KPI_SOURCES": str(self.sources),
                "KPI_WAREHOUSE": str(self.warehouse),
                "KPI_RELEASES": str(self.project / "releases"),
                "DAGSTER_HOME": str(self.project / "dagster_home"),
                "KPI_PSEUDONYM_KEY": env.get("KPI_PSEUDONYM_KEY") or BENCH_KEY,
                "DAGSTER_DISABLE_TELEMETRY": "1",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "PYTHONHASHSEED": "0",
            }
        )
        env.pop("KPI_BUILD_WAREHOUSE", None)
        if self.lift:
            env.update(LIFTED_LIMITS)
        return env

    @property
    def lift(self) -> bool:
        """Does a file of this scale exceed the reader's default limits?"""
        defaults = {"MAX_FILE_BYTES": 50 * 2**20, "MAX_ROWS": 200_000, "MAX_CELLS": 5_000_000}
        try:
            from dagster_project.ingest.readers import sheet as readers

            limits = {k: int(getattr(readers, k, v)) for k, v in defaults.items()}
        except ImportError:
            limits = defaults
        return any(
            f["bytes"] > limits["MAX_FILE_BYTES"]
            or f["rows"] > limits["MAX_ROWS"]
            or f["rows"] * 9 > limits["MAX_CELLS"]
            for f in self.manifest.get("files", [])
        )

    def _me(self, *args: str) -> list[str]:
        return [PY, str(Path(__file__).resolve()), *args]

    def _kpi(self, *args: str) -> list[str]:
        if "--select" in args:
            return self._me("_kpi", *(["--lift"] if self.lift else []), "--", *args)
        return [KPI, *args]

    def measure(self, label: str, cmd: list[str]) -> dict[str, Any]:
        m = run_measured(cmd, self.env(), label, self.logs, self.timeout)
        state = "ok" if m["exit_code"] == 0 else f"exit {m['exit_code']}"
        if m["timed_out"]:
            state = "TIMEOUT"
        if m["killed_for_memory"]:
            state = "KILLED (memory guard)"
        print(
            f"  SF{self.sf} {label:<22} {m['wall_seconds']:>9.1f} s  "
            f"{m['peak_tree_mib']:>8.0f} MiB  {state}",
            flush=True,
        )
        return m

    def best_of(self, label: str, cmd: list[str], before=None) -> dict[str, Any]:
        runs = []
        for i in range(self.repeat):
            if before:
                before()
            runs.append(self.measure(f"{label}" + (f"_{i + 1}" if self.repeat > 1 else ""), cmd))
        best = min(runs, key=lambda m: m["wall_seconds"])
        out = _public(best)
        out["runs_wall_seconds"] = [m["wall_seconds"] for m in runs]
        return out

    # --- setup
    def prepare(self, regenerate: bool) -> None:
        import scale

        manifest_path = self.root / "manifest.json"
        if regenerate or not manifest_path.is_file():
            print(f"SF{self.sf} : génération…", flush=True)
            scale.generate(self.sf, self.root)
        self.manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        # always a fresh copy: the project's dbt models may have changed since generation
        self.result["dbt_tests_patched"] = scale.copy_dbt_project(self.sf, self.dbt)
        self.result["dataset"] = {
            k: self.manifest[k]
            for k in ("sf", "communes", "epcis", "rows", "bytes", "generation_seconds")
        }
        self.result["dataset"]["files"] = len(self.manifest["files"])
        self.result["dataset"]["largest"] = max(self.manifest["files"], key=lambda f: f["rows"])
        self.result["limits_lifted"] = self.lift

    def reset_project(self) -> None:
        if self.project.exists():
            shutil.rmtree(self.project, onerror=_force_remove)
        self.project.mkdir(parents=True)

    # --- stages
    def stage_raw(self) -> None:
        self.result["stages"]["raw"] = self.best_of("raw", self._me("_raw", str(self.sources)))

    def stage_naive(self, engine: str) -> None:
        label = "naive" if engine == "openpyxl" else f"naive_{engine}"
        out = self.root / f"{label}_values.csv"
        cmd = [
            PY,
            str(BENCH / "naive_peer.py"),
            str(self.sources),
            "--communes",
            str(self.dbt / "seeds" / "communes.csv"),
            "--engine",
            engine,
            "--out",
            str(out),
        ]
        self.result["stages"][label] = self.best_of(label, cmd)

    def stage_ingest(self, profile: bool = False) -> None:
        scratch = self.root / "ingest_only.duckdb"

        def fresh() -> None:
            for p in (scratch, scratch.with_suffix(".duckdb.wal")):
                p.unlink(missing_ok=True)

        args = ["_ingest", str(self.sources), str(scratch)] + (["--lift"] if self.lift else [])
        if profile:
            fresh()
            target = self.root / "profile_ingest.txt"
            m = self.measure("ingest_profiled", self._me(*args, "--profile", str(target)))
            self.result["profile"] = {"text": str(target), "wall_seconds": m["wall_seconds"]}
            RESULTS.mkdir(exist_ok=True)
            shutil.copy(target, RESULTS / f"profile_ingest_sf{self.sf}.txt")
            return
        self.result["stages"]["ingest"] = self.best_of("ingest", self._me(*args), before=fresh)

    def stage_raw_and_ingest(self) -> None:
        """The raw read and the ingestion in turn (raw, ingest, raw, ingest...): each pair
        runs in the same minute of the machine, whose speed drifts (bench/README.md), so
        the ratio is taken pair by pair and its median kept; best of each kept as well."""
        scratch = self.root / "ingest_only.duckdb"
        ingest_cmd = self._me(
            "_ingest", str(self.sources), str(scratch), *(["--lift"] if self.lift else [])
        )
        raws, ingests, ratios = [], [], []
        for i in range(max(self.repeat, 1)):
            for path in (scratch, scratch.with_suffix(".duckdb.wal")):
                path.unlink(missing_ok=True)
            raws.append(self.measure(f"raw_{i + 1}", self._me("_raw", str(self.sources))))
            ingests.append(self.measure(f"ingest_{i + 1}", ingest_cmd))
            raw_s = (raws[-1].get("child") or {}).get("seconds")
            ingest_s = (ingests[-1].get("child") or {}).get("seconds")
            if raw_s and ingest_s:
                ratios.append(round(ingest_s / raw_s, 3))
        for key, runs in (("raw", raws), ("ingest", ingests)):
            best = _public(min(runs, key=lambda m: m["wall_seconds"]))
            best["runs_wall_seconds"] = [m["wall_seconds"] for m in runs]
            best["runs_inner_seconds"] = [(m.get("child") or {}).get("seconds") for m in runs]
            self.result["stages"][key] = best
        if ratios:
            self.result["stages"]["ingest"]["paired_ratios"] = ratios
            self.result["stages"]["ingest"]["paired_ratio_median"] = statistics.median(ratios)

    def _fresh_run(self, suffix: str = "") -> dict[str, Any]:
        """``kpi run`` on a fresh warehouse and Dagster home, after an untimed ``dbt parse``
        (as on a working machine), with the Dagster step breakdown."""
        from dagster_project.contracts.model import default_contracts

        self.reset_project()
        parse = self.measure(f"dbt_parse_warmup{suffix}", self._me("_dbtparse"))
        if parse["exit_code"]:
            raise RuntimeError("dbt parse a échoué : voir " + str(self.logs))
        m = self.measure(f"kpi_run{suffix}", self._kpi("run"))
        steps_keys = [f"{c.raw_schema}__{c.source_id}" for c in default_contracts().values()]
        steps = self.measure(f"dagster_steps{suffix}", self._me("_steps", *steps_keys))["child"]
        stage = _public(m)
        stage["breakdown"] = self._breakdown(m, steps)
        return stage

    def stage_naive_and_project(self) -> None:
        """The naive peer and the project (``kpi run`` then ``kpi freeze``) in turn, ``repeat``
        pairs: like the raw read and the ingestion, each pair runs in the same minutes of the
        machine, whose speed drifts by a third between sessions (bench/README.md); the target
        is judged on the median of the pairs' ratios, project / peer."""
        ratios, projects, naives = [], [], []
        repeat, self.repeat = self.repeat, 1  # one peer run per pair
        try:
            for _ in range(max(repeat, 1)):
                self.stage_naive("openpyxl")
                naives.append(self.result["stages"]["naive"])
                self.stage_project()
                projects.append((self.result["stages"]["kpi_run"], self.result["stages"]["freeze"]))
                total = projects[-1][0]["wall_seconds"] + projects[-1][1]["wall_seconds"]
                ratios.append(round(total / naives[-1]["wall_seconds"], 3))
        finally:
            self.repeat = repeat
        best = min(range(len(ratios)), key=lambda i: naives[i]["wall_seconds"])
        self.result["stages"]["naive"] = naives[best]
        self.result["stages"]["naive"]["runs_wall_seconds"] = [n["wall_seconds"] for n in naives]
        fastest = min(projects, key=lambda p: p[0]["wall_seconds"] + p[1]["wall_seconds"])
        self.result["stages"]["kpi_run"], self.result["stages"]["freeze"] = fastest
        self.result["stages"]["kpi_run"]["pairs_end_to_end_seconds"] = [
            round(p[0]["wall_seconds"] + p[1]["wall_seconds"], 1) for p in projects
        ]
        self.result["stages"]["kpi_run"]["paired_ratios_to_naive"] = ratios
        self.result["stages"]["kpi_run"]["paired_ratio_to_naive_median"] = statistics.median(ratios)

    def stage_project(self) -> None:
        stage = self._fresh_run()
        log = self.warehouse.with_name(self.warehouse.stem + ".run.log")
        if log.is_file():
            text = log.read_text(encoding="utf-8", errors="replace")
            stage["dbt_full_reparse"] = "Unable to do partial parsing" in text
            stage["dbt_failures"] = len(re.findall(r"^\d+ of \d+ (?:FAIL|ERROR)", text, re.M))
        self.result["stages"]["kpi_run"] = stage
        self.result["stages"]["freeze"] = _public(
            self.measure("freeze", self._kpi("freeze", "--year", "2025"))
        )
        self.check_same_values()

    def _breakdown(self, m: dict[str, Any], steps: dict[str, Any]) -> dict[str, Any]:
        if not steps or not steps.get("windows"):
            return {}
        sampler: TreeSampler = m["_sampler"]
        out: dict[str, Any] = {}
        for category in ("ingest", "checks", "dbt", "other_steps"):
            windows = [w for w in steps["windows"] if w["category"] == category]
            if not windows:
                continue
            out[category] = {
                "seconds": round(sum(w["end"] - w["start"] for w in windows), 2),
                "steps": len(windows),
                "peak_tree_mib": round(
                    max(sampler.peak_between(w["start"], w["end"] + 0.2) for w in windows) / 1024,
                    1,
                ),
            }
        stepped = sum(v["seconds"] for v in out.values())
        run_span = steps["last_event"] - steps["first_event"]
        out["dagster_before_first_step"] = round(steps["first_step"] - steps["first_event"], 2)
        out["dagster_between_steps"] = round(
            run_span - stepped - out["dagster_before_first_step"], 2
        )
        outside = m["wall_seconds"] - run_span
        stdout = (self.logs / f"{m['label']}.out").read_text(encoding="utf-8", errors="replace")
        published = re.search(r"tables, ([\d.]+) s\]", stdout)
        if published:
            out["publish"] = float(published[1])
            outside -= out["publish"]
        out["process_outside_run"] = round(outside, 2)
        out["event_counts"] = steps.get("event_counts", {})
        return out

    def stage_fixed(self) -> None:
        """``kpi run`` on the same project (the scale's dbt copy, a fresh warehouse and Dagster
        home) with a campaign folder that holds no delivery: what a run costs whatever the
        data (Python imports, Dagster, dbt's per-node work on empty tables, GX)."""
        saved = self.sources, self.project
        self.sources = self.root / "empty_campaign"
        (self.sources / "2025").mkdir(parents=True, exist_ok=True)
        self.project = self.root / "project_empty"
        try:
            self.result["stages"]["fixed"] = self._fresh_run("_empty")
        finally:
            self.sources, self.project = saved

    def stage_redelivery(self) -> None:
        if "kpi_run" not in self.result["stages"]:
            self.stage_project()
        path = next(self.sources.glob("2025/water/eau_reseau_2025.*"))
        original = self.logs / f"original_{path.name}"
        shutil.copy2(path, original)
        changed = redeliver(path)
        try:
            m = self.measure("redelivery", self._kpi("run", "--select", "eau_reseau"))
            # the same selection again, no file changed: what this run costs whatever the data
            # (imports, Dagster, the raw check's Great Expectations, dbt's start, publication)
            floor = self.measure("redelivery_unchanged", self._kpi("run", "--select", "eau_reseau"))
        finally:
            shutil.copy2(original, path)  # the generated campaign stays as generated
        stage = _public(m)
        stage["changed"] = changed
        stage["unchanged_run_seconds"] = floor["wall_seconds"]
        full = self.result["stages"]["kpi_run"]["wall_seconds"]
        stage["ratio_to_full_run"] = round(m["wall_seconds"] / full, 3)
        # what changed: the values that differ from the peer's (computed on the original file)
        stage["values_changed"] = self.check_same_values(record=False)
        self.result["stages"]["redelivery"] = stage

    def stage_queries(self) -> None:
        database = published_database(self.warehouse)
        if database is None:
            self.result["stages"]["queries"] = {"error": "aucune base avec marts"}
            return
        m = self.measure("queries", self._me("_queries", str(database), str(QUERY_RUNS)))
        stage = _public(m)
        stage["database"] = str(database)
        self.result["stages"]["queries"] = stage

    def check_same_values(self, record: bool = True) -> list[list[Any]] | None:
        """The naive peer must compute the project's numbers (else the race is unfair).
        Returns the differing values (indicator, commune, project, peer)."""
        database = published_database(self.warehouse)
        peer = self.root / "naive_calamine_values.csv"
        if not peer.is_file():
            peer = self.root / "naive_values.csv"
        if database is None or not peer.is_file():
            return None
        import duckdb
        import pandas as pd

        with duckdb.connect(str(database), read_only=True) as con:
            project = con.execute(
                "select indicator_id, year, code_insee, value from marts.fct_indicator_values"
            ).df()
        naive = pd.read_csv(peer, dtype={"code_insee": str})
        both = project.merge(naive, on=["indicator_id", "year", "code_insee"], how="outer")
        tolerance = 1e-6 * both["value_x"].abs().clip(lower=1)
        equal = (both["value_x"] - both["value_y"]).abs() <= tolerance
        differing = both[~equal]
        if record:
            self.result["same_values"] = {
                "project_values": int(both["value_x"].notna().sum()),
                "peer_values": int(both["value_y"].notna().sum()),
                "equal": int(equal.sum()),
                "peer": peer.name,
            }
        return [
            [r.indicator_id, None if pd.isna(r.code_insee) else r.code_insee, r.value_x, r.value_y]
            for r in differing.head(20).itertuples()
        ]

    def save(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        self.result["machine"] = machine()
        self.result["measured_at"] = dt.datetime.now().isoformat(timespec="seconds")
        path = RESULTS / f"sf{self.sf}.json"
        previous = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        merged = {**previous, **self.result}
        merged["stages"] = {**previous.get("stages", {}), **self.result["stages"]}
        path.write_text(json.dumps(merged, indent=1, ensure_ascii=False), encoding="utf-8")
        return path


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


# ------------------------------------------------------------------------------ reporting


def machine() -> dict[str, Any]:
    from dagster_project.lib.versions import tool_versions

    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    # the release manifest's tools (the Excel libraries of the naive peer and exports among them)
    versions = tool_versions(absent=None)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _num(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}".replace(",", " ")
    return str(value)


STAGE_LABELS = {
    "raw": "raw read (python-calamine)",
    "naive": "naive peer (pandas read_excel, openpyxl)",
    "naive_calamine": "naive peer (pandas read_excel, calamine)",
    "ingest": "project: ingestion alone",
    "kpi_run": "project: kpi run (ingest + dbt build + checks)",
    "freeze": "project: kpi freeze",
    "redelivery": "project: re-delivery of eau_reseau (kpi run --select)",
    "queries": "analyst queries (p95, worst query)",
    "fixed": "project: kpi run on a campaign with no delivery (fixed cost)",
}


def table_rows(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for res in results:
        sf = res["sf"]
        data = res.get("dataset", {})
        for key, label in STAGE_LABELS.items():
            stage = res.get("stages", {}).get(key)
            if not stage:
                continue
            row = {
                "sf": sf,
                "stage": key,
                "label": label,
                "rows": data.get("rows"),
                "wall_seconds": stage.get("wall_seconds"),
                "inner_seconds": (stage.get("child") or {}).get("seconds"),
                "inner_cpu_seconds": (stage.get("child") or {}).get("cpu_seconds"),
                "cpu_seconds": stage.get("cpu_seconds"),
                "peak_tree_mib": stage.get("peak_tree_mib"),
                "maxrss_mib": stage.get("maxrss_mib"),
                "exit_code": stage.get("exit_code"),
                "load": stage.get("load_before"),
            }
            if key == "queries":
                queries = [
                    q for q in (stage.get("child") or {}).get("queries", []) if "p95_ms" in q
                ]
                if queries:
                    worst = max(queries, key=lambda q: q["p95_ms"])
                    row["inner_seconds"] = round(worst["p95_ms"] / 1000, 4)
            rows.append(row)
            if key in ("kpi_run", "fixed"):
                for part, values in (stage.get("breakdown") or {}).items():
                    if isinstance(values, dict) and "seconds" in values:
                        rows.append(
                            {
                                "sf": sf,
                                "stage": f"{key}.{part}",
                                "label": f"  of which {part} (Dagster steps)",
                                "rows": data.get("rows"),
                                "wall_seconds": values["seconds"],
                                "peak_tree_mib": values.get("peak_tree_mib"),
                            }
                        )
                    elif isinstance(values, int | float):
                        rows.append(
                            {
                                "sf": sf,
                                "stage": f"{key}.{part}",
                                "label": f"  of which {part.replace('_', ' ')}",
                                "rows": data.get("rows"),
                                "wall_seconds": values,
                            }
                        )
    return rows


def targets(results: dict[int, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for the targets of issue 7."""
    out = []

    def stage(sf: int, key: str) -> dict[str, Any]:
        return results.get(sf, {}).get("stages", {}).get(key) or {}

    def project_total(sf: int) -> float | None:
        run, freeze = stage(sf, "kpi_run"), stage(sf, "freeze")
        if not run or not freeze:
            return None
        return run["wall_seconds"] + freeze["wall_seconds"]

    for sf in sorted(results):
        raw_child = stage(sf, "raw").get("child") or {}
        ingest_child = stage(sf, "ingest").get("child") or {}
        raw, ingest = raw_child.get("seconds"), ingest_child.get("seconds")
        if raw and ingest:
            ratio = ingest / raw
            measured = f"best {ingest:.1f} s / best {raw:.1f} s = {ratio:.2f}×"
            paired = stage(sf, "ingest").get("paired_ratios")
            if paired:  # the verdict: the median of the pairs run side by side
                ratio = stage(sf, "ingest")["paired_ratio_median"]
                measured = (
                    f"median of {len(paired)} pairs {ratio:.2f}× "
                    f"({', '.join(f'{r:.2f}' for r in paired)}); " + measured
                )
            raw_cpu, ingest_cpu = raw_child.get("cpu_seconds"), ingest_child.get("cpu_seconds")
            if raw_cpu and ingest_cpu:  # the ingestion uses both cores (read ahead, Arrow)
                measured += f"; CPU {ingest_cpu:.1f} s / {raw_cpu:.1f} s"
            duckdb_s = ingest_child.get("warehouse_seconds")
            if duckdb_s is not None:  # DuckDB's share: a cost the raw read does not have
                measured += (
                    f"; of which DuckDB {duckdb_s:.2f} s (connection, tables, one transaction "
                    f"per source, checkpoint), the rest {ingest - duckdb_s:.2f} s = "
                    f"{(ingest - duckdb_s) / raw:.2f}×"
                )
            out.append(
                (
                    f"SF{sf}: ingestion ≤ 1.5 × raw calamine read",
                    measured,
                    "met" if ratio <= 1.5 else "not met",
                )
            )
    if 10 in results:
        total, naive = project_total(10), stage(10, "naive").get("wall_seconds")
        naive_cal = stage(10, "naive_calamine").get("wall_seconds")
        if total and naive:
            measured = f"project {total:.0f} s vs naive {naive:.0f} s (openpyxl)" + (
                f", {naive_cal:.0f} s (calamine)" if naive_cal else ""
            )
            faster = total < naive
            paired = stage(10, "kpi_run").get("paired_ratios_to_naive")
            if paired:  # the verdict: the median of the pairs run in turn
                median = stage(10, "kpi_run")["paired_ratio_to_naive_median"]
                measured = (
                    f"median of {len(paired)} pairs, project / naive {median:.2f} "
                    f"({', '.join(f'{r:.2f}' for r in paired)}); fastest of each: " + measured
                )
                faster = median < 1
            out.append(
                (
                    "SF10: end to end faster than the naive peer",
                    measured,
                    "met" if faster else "not met",
                )
            )
    if 10 in results and 100 in results:
        a, b = project_total(10), project_total(100)
        if a and b:
            out.append(
                (
                    "SF10 → SF100 growth ≤ 12×",
                    f"{a:.0f} s → {b:.0f} s = {b / a:.1f}×",
                    "met" if b / a <= 12 else "not met",
                )
            )
    if 100 in results:
        peaks = [
            (k, v.get("peak_tree_mib"))
            for k, v in results[100].get("stages", {}).items()
            if k in ("ingest", "kpi_run", "freeze") and v.get("peak_tree_mib")
        ]
        if peaks:
            key, peak = max(peaks, key=lambda kv: kv[1])
            out.append(
                (
                    "SF100: peak memory < 4 GiB",
                    f"{peak / 1024:.2f} GiB ({key})",
                    "met" if peak < 4096 else "not met",
                )
            )
    for sf in sorted(results):
        red = stage(sf, "redelivery")
        if red.get("ratio_to_full_run") is not None:
            out.append(
                (
                    f"SF{sf}: re-delivery ≤ 0.3 × full run",
                    f"{red['wall_seconds']:.0f} s / {stage(sf, 'kpi_run')['wall_seconds']:.0f} s "
                    f"= {red['ratio_to_full_run']:.2f}"
                    + (
                        f" (the same run with no file changed: {red['unchanged_run_seconds']:.0f} s)"
                        if red.get("unchanged_run_seconds")
                        else ""
                    ),
                    "met" if red["ratio_to_full_run"] <= 0.3 else "not met",
                )
            )
    largest = max((sf for sf in results if stage(sf, "queries").get("child")), default=None)
    if largest:
        queries = [q for q in stage(largest, "queries")["child"]["queries"] if "p95_ms" in q]
        if queries:
            worst = max(queries, key=lambda q: q["p95_ms"])
            out.append(
                (
                    f"SF{largest}: analyst queries p95 < 50 ms",
                    f"worst p95 {worst['p95_ms']:.1f} ms ({worst['name']}), {len(queries)} queries",
                    "met" if worst["p95_ms"] < 50 else "not met",
                )
            )
    return out


def render() -> None:
    results = {}
    for path in sorted(RESULTS.glob("sf*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        results[data["sf"]] = data
    if not results:
        return
    ordered = [results[k] for k in sorted(results)]
    rows = table_rows(ordered)
    fields = [
        "sf",
        "stage",
        "label",
        "rows",
        "wall_seconds",
        "inner_seconds",
        "inner_cpu_seconds",
        "cpu_seconds",
        "peak_tree_mib",
        "maxrss_mib",
        "exit_code",
        "load",
    ]
    with (RESULTS / "results.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    any_result = ordered[-1]
    mach = any_result.get("machine", {})
    lines = [
        "# Benchmark results",
        "",
        "Generated by `bench/run.py` (do not edit by hand). Machine: "
        f"{mach.get('cpu')}, {mach.get('cores')} cores, {mach.get('memory_gib')} GiB, "
        f"{mach.get('os')}, Python {mach.get('python')}.",
        "",
        "Versions: "
        + ", ".join(f"{k} {v}" for k, v in (mach.get("versions") or {}).items() if v)
        + ".",
        "",
        "## Datasets",
        "",
        "| scale | communes | files | rows | size (MiB) | largest register | generated in (s) | measured at | reader limits lifted |",
        "|---|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for res in ordered:
        d = res.get("dataset", {})
        largest = d.get("largest", {})
        lines.append(
            f"| SF{res['sf']} | {d.get('communes')} | {d.get('files')} | {d.get('rows'):,} | "
            f"{d.get('bytes', 0) / 2**20:.1f} | {largest.get('path')} ({largest.get('rows', 0):,} rows) | "
            f"{d.get('generation_seconds')} | {res.get('measured_at')} | "
            f"{'yes' if res.get('limits_lifted') else 'no'} |".replace(",", " ")
        )
    lines += [
        "",
        "## Stages",
        "",
        "`wall` is measured from outside the child process (interpreter start and imports "
        "included); `inner` is the child's own timer around the work (imports excluded). "
        "`CPU` is the user + system time of the child and its children (less sensitive than "
        "wall time to other processes on the machine). "
        "`peak` is the largest sum of resident memory over the child's process tree, "
        "`maxrss` the largest single process. `load` is the 1-minute load average when the "
        "stage started (2 cores: above 2, other processes competed for the CPU).",
        "",
        "| scale | stage | wall (s) | inner (s) | CPU (s) | peak (MiB) | maxrss (MiB) | exit | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| SF{row['sf']} | {row['label']} | {_num(row.get('wall_seconds'))} | "
            f"{_num(row.get('inner_seconds'), 3 if row['stage'] == 'queries' else 1)} | "
            f"{_num(row.get('cpu_seconds'))} | {_num(row.get('peak_tree_mib'), 0)} | {_num(row.get('maxrss_mib'), 0)} | "
            f"{_num(row.get('exit_code'))} | {_num(row.get('load'), 2)} |"
        )
    same = [(r["sf"], r["same_values"]) for r in ordered if r.get("same_values")]
    if same:
        lines += ["", "## Same numbers", ""]
        for sf, s in same:
            lines.append(
                f"- SF{sf}: {s['equal']} of {s['project_values']} project values equal the "
                f"naive peer's ({s['peer_values']} values)"
                + (f"; {s['note']}." if s.get("note") else ".")
            )
        for res in ordered:
            changed = res.get("stages", {}).get("redelivery", {}).get("values_changed")
            if changed is not None:
                lines.append(
                    f"- SF{res['sf']} re-delivery: {len(changed)} value(s) differ from the peer "
                    "afterwards (the ones the changed cell feeds): "
                    + "; ".join(
                        f"{i} {c or 'agglomération'} {p} (peer {q})" for i, c, p, q in changed
                    )
                    + "."
                )
    query_stage = [
        (r["sf"], r["stages"]["queries"]) for r in ordered if r.get("stages", {}).get("queries")
    ]
    if query_stage:
        sf, stage = query_stage[-1]
        child = stage.get("child") or {}
        lines += [
            "",
            f"## Analyst queries (SF{sf}, {child.get('runs')} runs each, `{child.get('database')}`)",
            "",
            "| query | origin | rows | p50 (ms) | p95 (ms) | max (ms) |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for q in child.get("queries", []):
            if "error" in q:
                error = re.sub(r"[\s|]+", " ", q["error"])[:80]
                lines.append(f"| {q['name']} | {q['origin']} | error: {error} | | | |")
            else:
                lines.append(
                    f"| {q['name']} | {q['origin']} | {q['rows']} | {q['p50_ms']} | "
                    f"{q['p95_ms']} | {q['max_ms']} |"
                )
    checks = targets(results)
    if checks:
        lines += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
        lines += [f"| {t} | {m} | {v} |" for t, m, v in checks]
    (RESULTS / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------ main


def run_scale(sf: int, stages: list[str], args) -> None:
    run = ScaleRun(sf, args.repeat, args.timeout)
    run.prepare(args.regenerate)
    for name in stages:
        try:
            if name == "raw" and "ingest" in stages:
                run.stage_raw_and_ingest()
            elif name == "ingest" and "raw" in stages:
                continue  # measured with the raw read, pair by pair
            elif name == "raw":
                run.stage_raw()
            elif name == "naive" and "project" in stages and args.repeat > 1:
                run.stage_naive_and_project()
            elif name == "project" and "naive" in stages and args.repeat > 1:
                continue  # measured with the naive peer, pair by pair
            elif name == "naive":
                run.stage_naive("openpyxl")
            elif name == "naive_calamine":
                run.stage_naive("calamine")
            elif name == "ingest":
                run.stage_ingest()
            elif name == "project":
                run.stage_project()
            elif name == "redelivery":
                run.stage_redelivery()
            elif name == "queries":
                run.stage_queries()
            elif name == "fixed":
                run.stage_fixed()
        finally:
            run.save()
    if args.profile:
        run.stage_ingest(profile=True)
    run.save()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0].startswith("_"):
        return _child(argv)
    parser = argparse.ArgumentParser(description="Benchmark côte à côte (voir bench/README.md).")
    parser.add_argument("--sf", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--stages", nargs="+", default=ALL_STAGES, choices=ALL_STAGES)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of raw/naive/ingest (best kept)"
    )
    parser.add_argument("--timeout", type=float, help="seconds after which a stage is killed")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the files")
    parser.add_argument("--profile", action="store_true", help="pyinstrument profile of ingestion")
    parser.add_argument("--render", action="store_true", help="only rebuild results.csv/.md")
    args = parser.parse_args(argv)
    if not args.render:
        for sf in args.sf:
            run_scale(sf, args.stages, args)
    render()
    print((RESULTS / "results.md").read_text(encoding="utf-8") if RESULTS.exists() else "")
    return 0


def _child(argv: list[str]) -> int:
    command, rest = argv[0], argv[1:]
    lift = "--lift" in rest
    if command == "_raw":
        return child_raw(Path(rest[0]))
    if command == "_ingest":
        profile = Path(rest[rest.index("--profile") + 1]) if "--profile" in rest else None
        return child_ingest(Path(rest[0]), Path(rest[1]), lift, profile)
    if command == "_kpi":
        return child_kpi(lift, rest[rest.index("--") + 1 :])
    if command == "_dbtparse":
        return child_dbt_parse()
    if command == "_steps":
        return child_steps(rest)
    if command == "_queries":
        return child_queries(Path(rest[0]), int(rest[1]))
    raise SystemExit(f"unknown child command {command}")


if __name__ == "__main__":
    sys.exit(main())
