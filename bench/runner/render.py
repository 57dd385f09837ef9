"""``results.md`` / ``results.csv`` from the JSON of every scale, with the targets' verdicts."""

from __future__ import annotations

import csv
import json
import re
import time
from typing import Any

from runner import RESULTS


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
    "redelivery": "project: re-delivery of eau_reseau (kpi run, changed source selected)",
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


def measured_when(*stages: tuple[int, dict[str, Any]]) -> str:
    """When the stages a target line combines were measured: one time when they come from one
    invocation of the bench (``bench_run``; for results saved before it was recorded: within
    ``SAME_RUN_SECONDS`` of each other), else each scale's first, said to come from different
    runs (a target line must not pass off figures of another day, or another machine, as one
    measurement)."""
    times = sorted(
        (s["started_at"], sf) for sf, s in stages if s and s.get("started_at") is not None
    )
    if not times:
        return "—"
    runs = {s.get("bench_run") for _sf, s in stages if s}
    if None not in runs:  # each stage says which invocation measured it
        if len(runs) == 1:
            return _stamp(times[0][0])
    elif times[-1][0] - times[0][0] <= SAME_RUN_SECONDS:  # results of older benches
        return _stamp(times[0][0])
    first = {}
    for started, sf in times:
        first.setdefault(sf, started)
    return "different runs: " + ", ".join(
        f"SF{sf} {_stamp(started)}" for sf, started in sorted(first.items())
    )


SAME_RUN_SECONDS = 3600


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def targets(results: dict[int, dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    """(target, measured, verdict, when measured) for the targets of issues 7 and 19."""
    out = []

    def stage(sf: int, key: str) -> dict[str, Any]:
        return results.get(sf, {}).get("stages", {}).get(key) or {}

    def at(sf: int, *keys: str) -> list[tuple[int, dict[str, Any]]]:
        return [(sf, stage(sf, key)) for key in keys]

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
                    measured_when(*at(sf, "raw", "ingest")),
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
                    measured_when(*at(10, "naive", "kpi_run", "freeze")),
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
                    measured_when(*at(10, "kpi_run", "freeze"), *at(100, "kpi_run", "freeze")),
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
            rss = results[100]["stages"][key].get("peak_tree_rss_mib")
            out.append(
                (
                    "SF100: peak memory < 4 GiB",
                    f"{peak / 1024:.2f} GiB ({key}"
                    + (
                        f"; PSS, RSS summed over its processes {rss / 1024:.2f} GiB)"
                        if rss
                        else ")"
                    ),
                    "met" if peak < 4096 else "not met",
                    measured_when(*at(100, key)),
                )
            )
    for sf in sorted(results):
        red = stage(sf, "redelivery")
        if red.get("ratio_to_full_run") is not None:
            runs = red.get("runs_wall_seconds") or []
            full = red.get("full_run_seconds") or stage(sf, "kpi_run")["wall_seconds"]
            measured = (
                f"median of {len(runs)} re-deliveries {red['wall_seconds']:.1f} s "
                f"({', '.join(f'{r:.1f}' for r in runs)}) / median full run {full:.1f} s"
                if len(runs) > 1
                else f"{red['wall_seconds']:.1f} s / {full:.1f} s"
            )
            out.append(
                (
                    f"SF{sf}: re-delivery ≤ 0.3 × full run",
                    f"{measured} = {red['ratio_to_full_run']:.2f}"
                    + (
                        f" (the same run with no file changed: {red['unchanged_run_seconds']:.1f} s)"
                        if red.get("unchanged_run_seconds")
                        else ""
                    ),
                    "met" if red["ratio_to_full_run"] <= 0.3 else "not met",
                    measured_when(*at(sf, "kpi_run", "redelivery")),
                )
            )
    for sf in sorted(results):  # issue 19
        run = stage(sf, "kpi_run")
        if run.get("paired_run_ratios_to_naive"):
            median = run["paired_run_ratio_to_naive_median"]
            out.append(
                (
                    f"SF{sf}: kpi run ≤ 2 × naive peer (median of pairs)",
                    f"{median:.2f}× ("
                    + ", ".join(f"{r:.2f}" for r in run["paired_run_ratios_to_naive"])
                    + ")",
                    "met" if median <= 2 else "not met",
                    measured_when(*at(sf, "kpi_run")),
                )
            )
        nothing = stage(sf, "redelivery").get("nothing_changed")
        if nothing:
            out.append(
                (
                    f"SF{sf}: nothing changed ≤ 3 s, said",
                    f"{nothing['wall_seconds']:.1f} s"
                    + (
                        " (« rien à faire »)"
                        if nothing.get("said_nothing_to_do")
                        else " (not said)"
                    ),
                    "met"
                    if nothing["wall_seconds"] <= 3 and nothing.get("said_nothing_to_do")
                    else "not met",
                    measured_when(*at(sf, "redelivery")),
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
                    measured_when(*at(largest, "queries")),
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
        lines += [
            "",
            "## Targets",
            "",
            "| target | measured | verdict | measured at |",
            "|---|---|---|---|",
        ]
        lines += [f"| {t} | {m} | {v} | {w} |" for t, m, v, w in checks]
    (RESULTS / "results.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
