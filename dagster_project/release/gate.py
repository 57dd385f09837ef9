"""What must hold before a year's values are frozen (``kpi freeze``): the gate.

The freeze is refused (``FreezeRefused``, in French) when a value of the year is reviewed as
« anomalie », when a blocking check (GX suites, dbt tests) of the last pipeline run failed
and was not waived with a written justification (``--waive``), or when an implausible value
is not qualified (``quality.plausibility``). ``prepare_freeze`` checks all of it and returns
what ``kpi freeze`` shows before it writes; the waived checks and the run's results
(``validation_summary``, without the run id) go into the manifest.
"""

from __future__ import annotations

import duckdb

from dagster_project.release.records import ensure_release_tables
from dagster_project.warehouse.relations import column_exists, table_exists


class FreezeRefused(RuntimeError):
    """The freeze cannot happen; the message (French) says why (``summary``: what the freeze
    would have shown, when it got that far)."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary


def _run_times(con: duckdb.DuckDBPyConnection) -> str | None:
    """SQL: each run's ``run_id`` and ``last_at``, when it last recorded a check or dbt result
    (None: neither table exists yet)."""
    parts = []
    for table in ("audit.check_results", "audit.dbt_results"):
        if table_exists(con, table):
            column = "checked_at" if table.endswith("check_results") else "recorded_at"
            parts.append(f"select run_id, max({column}) as last_at from {table} group by run_id")
    return " union all ".join(parts) if parts else None


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """Run id of the last pipeline run that recorded check or dbt results."""
    runs = _run_times(con)
    if runs is None:
        return None
    row = con.execute(f"select run_id from ({runs}) order by last_at desc limit 1").fetchone()
    return row[0] if row else None


def _run_time(con: duckdb.DuckDBPyConnection, run_id: str):
    """When the run last recorded a result (None: it recorded none)."""
    runs = _run_times(con)
    if runs is None:
        return None
    return con.execute(f"select max(last_at) from ({runs}) where run_id = ?", [run_id]).fetchone()[
        0
    ]


def _suite_names() -> set[str]:
    from dagster_project.quality.suites import check_specs

    return {spec["name"] for spec in check_specs()}


def run_checks(
    con: duckdb.DuckDBPyConnection, run_id: str | None, suites: set[str] | None = None
) -> list[dict]:
    """The Great Expectations suites' results that hold for the run: its own, and for each
    suite of the project it did not run (a run limited to some sources checks only those and
    the marts), the suite's latest result recorded before the run ended — its data has not
    changed since (``carried_from``: the run that produced it). ``suites``: the project's
    suites (default: those of the contracts and expectations/marts.yml)."""
    if run_id is None or not table_exists(con, "audit.check_results"):
        return []
    until = _run_time(con, run_id)
    if until is None:
        return []
    suites = _suite_names() if suites is None else suites
    rows = con.execute(
        "select check_name, asset, passed, blocking, severity, description_fr, run_id "
        "from audit.check_results where run_id = $run "
        "or (checked_at <= $until and list_contains($suites, check_name)) "
        "qualify row_number() over (partition by check_name, asset "
        "order by run_id = $run desc, checked_at desc, run_id desc) = 1 "
        "order by check_name, asset",
        {"run": run_id, "until": until, "suites": sorted(suites)},
    ).fetchall()
    return [
        {
            "check": name,
            "asset": asset,
            "passed": bool(passed),
            "blocking": bool(blocking),
            "severity": severity,
            "description": description,
            "carried_from": None if origin == run_id else origin,
        }
        for name, asset, passed, blocking, severity, description, origin in rows
    ]


def run_dbt_results(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[dict]:
    """dbt's results that hold for the run: its own rows (a limited dbt build records the
    other nodes' latest results with them: ``defs.assets.dbt.record_dbt_results``), or, for
    a run without a dbt step, those of the last dbt build before it ended."""
    if run_id is None or not table_exists(con, "audit.dbt_results"):
        return []
    until = _run_time(con, run_id)
    if until is None:
        return []
    build = con.execute(
        "select run_id from audit.dbt_results where run_id = $run or recorded_at <= $until "
        "group by run_id order by bool_or(run_id = $run) desc, max(recorded_at) desc limit 1",
        {"run": run_id, "until": until},
    ).fetchone()
    if build is None:
        return []
    return [
        {
            "unique_id": u,
            "status": s,
            "message": m,
            "carried_from": c or (b if b != run_id else None),
        }
        for u, s, m, c, b in con.execute(
            "select unique_id, status, message, "
            + (
                "carried_from"
                if column_exists(con, "audit.dbt_results", "carried_from")
                else "null"
            )
            + ", run_id from audit.dbt_results where run_id = ? order by unique_id",
            [build[0]],
        ).fetchall()
    ]


# dbt statuses that block: a failed test, an error, a node never executed (NOT_RUN of
# defs.assets.dbt, in a limited run after a test was added)
DBT_BLOCKING = ("fail", "error", "not_run")


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed, in the results that hold for the
    run (``run_checks``, ``run_dbt_results``: a limited run's own and the others' latest)."""
    failures = [
        {"check": c["check"], "asset": c["asset"], "description": c["description"]}
        for c in run_checks(con, run_id)
        if c["blocking"] and not c["passed"]
    ]
    failures += [
        {"check": r["unique_id"], "asset": "dbt", "description": f"{r['status']}: {r['message']}"}
        for r in run_dbt_results(con, run_id)
        if r["status"] in DBT_BLOCKING
    ]
    return failures


def _waiver_matches(name: str, failure: dict) -> bool:
    """``--waive`` names a check: its full name, or the short name of a dbt test."""
    check = failure["check"]
    if name == check:
        return True
    parts = check.split(".")
    return failure["asset"] == "dbt" and len(parts) >= 3 and name == parts[2]


def apply_waivers(failures: list[dict], waivers: dict[str, str]) -> tuple[list[dict], list[dict]]:
    """Split failures into (still blocking, waived); refuse waivers that are unusable."""
    problems = []
    for name, justification in sorted(waivers.items()):
        if not (justification or "").strip():
            problems.append(f"  - {name} : une levée exige une justification écrite")
        if not any(_waiver_matches(name, f) for f in failures):
            problems.append(
                f"  - {name} : ce contrôle n'est pas en échec bloquant lors de la dernière "
                "exécution, il n'y a rien à lever"
            )
    if problems:
        raise FreezeRefused("levée(s) de contrôle refusée(s) :\n" + "\n".join(problems))
    remaining, waived = [], []
    for failure in failures:
        name = next((n for n in sorted(waivers) if _waiver_matches(n, failure)), None)
        if name is None:
            remaining.append(failure)
        else:
            waived.append({**failure, "justification": waivers[name].strip()})
    waived.sort(key=lambda w: (w["check"], w["asset"] or ""))
    return remaining, waived


def validation_summary(con: duckdb.DuckDBPyConnection, run_id: str | None) -> dict:
    """The check and dbt results that hold for the run (its own and, for a limited run, the
    others' latest: ``run_checks``, ``run_dbt_results``), without run ids (they differ
    between warehouses)."""
    summary: dict = {"checks": [], "dbt": {}}
    if run_id is None:
        return summary
    summary["checks"] = [
        {k: c[k] for k in ("check", "asset", "passed", "blocking", "severity")}
        for c in run_checks(con, run_id)
    ]
    counts: dict[str, int] = {}
    for row in run_dbt_results(con, run_id):
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    summary["dbt"] = dict(sorted(counts.items()))
    return summary


def prepare_freeze(
    con: duckdb.DuckDBPyConnection, year: int, *, waivers: dict[str, str] | None = None
):
    """Everything ``kpi freeze`` checks and shows before it writes: (summary, waived checks,
    run id). Raises ``FreezeRefused`` (French) when a value of the year is reviewed as
    ``anomalie``, when a blocking check of the last run failed and was not waived with a
    written justification, or when an implausible value is not qualified
    (``quality.plausibility``)."""
    from dagster_project.quality.plausibility import freeze_summary
    from dagster_project.quality.review import anomalies, ensure_review_tables

    ensure_release_tables(con)
    ensure_review_tables(con)
    if not table_exists(con, "marts.fct_indicator_values"):
        raise FreezeRefused("aucune valeur à figer : lancez d'abord `kpi run`")
    flagged = anomalies(con, year)
    if flagged:
        listed = "\n".join(
            f"  - {a['indicator_id']} ({a['code_insee'] or 'agglomération'}) : "
            f"{a['comment'] or 'sans commentaire'} — {a['reviewer']}"
            for a in flagged[:20]
        )
        more = f"\n  … et {len(flagged) - 20} autre(s)" if len(flagged) > 20 else ""
        raise FreezeRefused(
            f"gel refusé : {len(flagged)} valeur(s) de {year} en statut « anomalie » :\n"
            f"{listed}{more}\nCorrigez-les puis relancez `kpi run`, ou changez leur statut "
            "(`kpi review set ...`)."
        )
    run_id = latest_run_id(con)
    failures, waived = apply_waivers(blocking_failures(con, run_id), waivers or {})
    if failures:
        listed = "\n".join(
            f"  - {f['check']} ({f['asset']}) : {f['description']}" for f in failures[:20]
        )
        raise FreezeRefused(
            f"gel refusé : {len(failures)} contrôle(s) bloquant(s) en échec lors de la dernière "
            f"exécution ({run_id}) :\n{listed}\n"
            'Un contrôle ne se lève qu\'avec une justification écrite : --waive NOM --justification "..."'
        )
    summary = freeze_summary(con, year, run_id)
    if summary.unqualified:
        raise FreezeRefused(summary.refusal(), summary=summary)
    return summary, waived, run_id
