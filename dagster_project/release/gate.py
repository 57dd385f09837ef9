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
from dagster_project.warehouse.relations import table_exists


class FreezeRefused(RuntimeError):
    """The freeze cannot happen; the message (French) says why (``summary``: what the freeze
    would have shown, when it got that far)."""

    def __init__(self, message: str, summary=None):
        super().__init__(message)
        self.summary = summary


def latest_run_id(con: duckdb.DuckDBPyConnection) -> str | None:
    """Run id of the last pipeline run that recorded check or dbt results."""
    parts = []
    for table in ("audit.check_results", "audit.dbt_results"):
        if table_exists(con, table):
            column = "checked_at" if table.endswith("check_results") else "recorded_at"
            parts.append(f"select run_id, max({column}) as last_at from {table} group by run_id")
    if not parts:
        return None
    row = con.execute(
        f"select run_id from ({' union all '.join(parts)}) order by last_at desc limit 1"
    ).fetchone()
    return row[0] if row else None


def blocking_failures(con: duckdb.DuckDBPyConnection, run_id: str | None) -> list[dict]:
    """Blocking checks (GX suites, dbt tests) that failed in the run."""
    if run_id is None:
        return []
    failures = []
    if table_exists(con, "audit.check_results"):
        for name, asset, description in con.execute(
            "select check_name, asset, description_fr from audit.check_results "
            "where run_id = ? and blocking and not passed order by check_name",
            [run_id],
        ).fetchall():
            failures.append({"check": name, "asset": asset, "description": description})
    if table_exists(con, "audit.dbt_results"):
        for unique_id, status, message in con.execute(
            "select unique_id, status, message from audit.dbt_results "
            "where run_id = ? and status in ('fail', 'error') order by unique_id",
            [run_id],
        ).fetchall():
            failures.append(
                {"check": unique_id, "asset": "dbt", "description": f"{status}: {message}"}
            )
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
    """Check and dbt results of the run, without the run id (it differs between warehouses)."""
    summary: dict = {"checks": [], "dbt": {}}
    if run_id is None:
        return summary
    if table_exists(con, "audit.check_results"):
        summary["checks"] = [
            {"check": n, "asset": a, "passed": bool(p), "blocking": bool(b), "severity": s}
            for n, a, p, b, s in con.execute(
                "select check_name, asset, passed, blocking, severity from audit.check_results "
                "where run_id = ? order by check_name, asset",
                [run_id],
            ).fetchall()
        ]
    if table_exists(con, "audit.dbt_results"):
        summary["dbt"] = dict(
            con.execute(
                "select status, count(*) from audit.dbt_results where run_id = ? group by status order by status",
                [run_id],
            ).fetchall()
        )
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
