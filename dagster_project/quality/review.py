"""Validation status of each indicator value, set by the people who check the figures.

Three French levels (``STATUSES``), recorded in ``review.value_reviews`` — one row per
decision, never updated: the history stays, and the latest decision per value
(year, indicator, commune) wins (view ``review.current_reviews``). A value of the year in
``anomalie`` blocks ``kpi freeze``; every release row carries the status and comment in
force when it was frozen.

This module holds the records and the queries: a decision recorded one by one
(``set_review``, ``kpi review set``), the values of a year with their current review
(``reviewed_values``, ``list_reviews``, ``kpi review list``), a value's history, the anomalies
that block the freeze. The review workbook (``kpi review export`` / ``import``) is
``review_workbook.py``, which records through this module.
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from dataclasses import dataclass

import duckdb

from dagster_project.warehouse.schema import REVIEW_STATUSES, ensure

# « sans anomalie apparente », « présomption d'anomalie », « anomalie »: declared with the
# table that accepts only them, review.value_reviews (warehouse.schema.REVIEW_STATUSES)
STATUS_OK, STATUS_SUSPECT, STATUS_ANOMALY = REVIEW_STATUSES
STATUSES = [STATUS_OK, STATUS_SUSPECT, STATUS_ANOMALY]
NOT_REVIEWED = "non revu"
# Statuses that need a comment saying what is wrong.
NEEDS_COMMENT = {STATUS_SUSPECT, STATUS_ANOMALY}

_ALIASES = {
    "ok": STATUS_OK,
    "sans anomalie": STATUS_OK,
    "sans anomalie apparente": STATUS_OK,
    "presomption": STATUS_SUSPECT,
    "presomption d'anomalie": STATUS_SUSPECT,
    "presomption anomalie": STATUS_SUSPECT,
    "anomalie": STATUS_ANOMALY,
}
STATUS_HELP = (
    "sans anomalie apparente, présomption d'anomalie ou anomalie (alias : ok, presomption)"
)


class ReviewError(ValueError):
    """A review cannot be recorded; the message (French) says why."""


def ensure_review_tables(con: duckdb.DuckDBPyConnection) -> None:
    """review.value_reviews and the view review.current_reviews (``warehouse.schema``)."""
    ensure(con, "review")


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.replace("’", "'").replace("`", "'"))
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().replace("_", " ").split())


def normalize_status(text: str | None) -> str | None:
    """The canonical French status for a level or an alias; None when unknown."""
    if text is None:
        return None
    return _ALIASES.get(_fold(str(text)))


def _clean(text) -> str | None:
    if text is None:
        return None
    text = str(text).strip()
    return text or None


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    }


def _require_values(con: duckdb.DuckDBPyConnection) -> None:
    if "marts.fct_indicator_values" not in _tables(con):
        raise ReviewError("aucune valeur d'indicateur dans l'entrepôt : lancez d'abord `kpi run`")


def _current_values(con: duckdb.DuckDBPyConnection, year: int) -> dict:
    return {
        (ind, code): value
        for ind, code, value in con.execute(
            "select indicator_id, code_insee, value from marts.fct_indicator_values where year = ?",
            [year],
        ).fetchall()
    }


def _current_reviews(con: duckdb.DuckDBPyConnection, year: int) -> dict:
    return {
        (ind, code): (status, comment)
        for ind, code, status, comment in con.execute(
            "select indicator_id, code_insee, status, comment from review.current_reviews "
            "where year = ?",
            [year],
        ).fetchall()
    }


def _insert(con, year, indicator_id, code_insee, status, comment, reviewer, value, origin, now):
    con.execute(
        "insert into review.value_reviews (year, indicator_id, code_insee, status, comment, "
        "reviewer, reviewed_at, value_at_review, origin) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [year, indicator_id, code_insee, status, comment, reviewer, now, value, origin],
    )


def set_review(
    con: duckdb.DuckDBPyConnection,
    year: int,
    indicator_id: str,
    code_insee: str | None,
    status: str,
    comment: str | None,
    reviewer: str,
    *,
    origin: str = "kpi review set",
    now: dt.datetime | None = None,
) -> str:
    """Record one decision on a value of the warehouse; returns the canonical status."""
    ensure_review_tables(con)
    _require_values(con)
    canonical = normalize_status(status)
    if canonical is None:
        raise ReviewError(f"statut « {status} » inconnu ; statuts admis : {STATUS_HELP}")
    reviewer = _clean(reviewer)
    if reviewer is None:
        raise ReviewError('le nom du relecteur est obligatoire (--reviewer "Nom")')
    comment = _clean(comment)
    if canonical in NEEDS_COMMENT and comment is None:
        raise ReviewError(f"un commentaire est obligatoire pour le statut « {canonical} »")
    code_insee = _clean(code_insee)
    values = _current_values(con, year)
    if (indicator_id, code_insee) not in values:
        communes = sum(1 for ind, code in values if ind == indicator_id and code)
        if not any(ind == indicator_id for ind, _ in values):
            raise ReviewError(f"l'indicateur « {indicator_id} » n'a aucune valeur en {year}")
        if code_insee is None:
            raise ReviewError(
                f"l'indicateur « {indicator_id} » n'a pas de valeur d'agglomération en {year} "
                f"({communes} valeur(s) par commune) : précisez --commune CODE_INSEE"
            )
        raise ReviewError(
            f"l'indicateur « {indicator_id} » n'a pas de valeur pour la commune {code_insee} en {year}"
        )
    _insert(
        con,
        year,
        indicator_id,
        code_insee,
        canonical,
        comment,
        reviewer,
        values[(indicator_id, code_insee)],
        origin,
        now or dt.datetime.now().replace(microsecond=0),
    )
    return canonical


def anomalies(con: duckdb.DuckDBPyConnection, year: int) -> list[dict]:
    """Values of the year whose current status is « anomalie » (they block the freeze)."""
    if "review.current_reviews" not in _tables(con):
        return []
    keys = ["indicator_id", "code_insee", "comment", "reviewer", "reviewed_at"]
    return [
        dict(zip(keys, row, strict=True))
        for row in con.execute(
            "select indicator_id, code_insee, comment, reviewer, reviewed_at "
            "from review.current_reviews where year = ? and status = ? "
            "order by indicator_id, code_insee nulls first",
            [year, STATUS_ANOMALY],
        ).fetchall()
    ]


# --------------------------------------------------------------------------- listing


@dataclass
class ReviewedValue:
    year: int
    indicator_id: str
    label: str | None
    department: str | None
    priority: str | None
    code_insee: str | None
    commune: str | None
    value: float | None
    unit: str | None
    previous_value: float | None
    status: str | None
    comment: str | None
    reviewer: str | None
    reviewed_at: dt.datetime | None
    value_at_review: float | None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous_value is None:
            return None
        return self.value - self.previous_value

    @property
    def change_pct(self) -> float | None:
        if self.change is None or not self.previous_value:
            return None
        return 100.0 * self.change / abs(self.previous_value)

    @property
    def changed_since_review(self) -> bool:
        return (
            self.status is not None
            and self.value is not None
            and self.value_at_review is not None
            and not math.isclose(self.value, self.value_at_review, rel_tol=1e-12, abs_tol=1e-12)
        )


def reviewed_values(
    con: duckdb.DuckDBPyConnection,
    year: int,
    *,
    narrowed: tuple[str, list, str] | None = None,
) -> list[ReviewedValue]:
    """Every value of the year with its label, previous-year value and current review;
    ``narrowed``: only those meeting a condition on ``f`` (the value), ``p`` (the previous
    year's) and more joined relations, given as (joins, their parameters, condition).
    A freeze's check of a few values among 390 000 (SF100) reads those only."""
    more_joins, join_params, condition = narrowed or ("", [], "")
    ensure_review_tables(con)
    _require_values(con)
    tables = _tables(con)
    label = "d.label_fr" if "marts.dim_indicators" in tables else "null"
    commune = "c.commune_name" if "marts.dim_communes" in tables else "null"
    joins = ""
    if "marts.dim_indicators" in tables:
        joins += (
            " left join (select indicator_id, any_value(label_fr) as label_fr "
            "from marts.dim_indicators group by 1) as d on d.indicator_id = f.indicator_id"
        )
    if "marts.dim_communes" in tables:
        joins += (
            " left join (select code_insee, any_value(commune_name) as commune_name "
            "from marts.dim_communes group by 1) as c on c.code_insee = f.code_insee"
        )
    rows = con.execute(
        f"""
        select f.year, f.indicator_id, {label}, f.department, f.priority, f.code_insee,
               {commune}, f.value, f.unit, p.value, r.status, r.comment, r.reviewer,
               r.reviewed_at, r.value_at_review
        from marts.fct_indicator_values as f
        left join marts.fct_indicator_values as p
          on p.year = f.year - 1 and p.indicator_id = f.indicator_id
         and p.code_insee is not distinct from f.code_insee
        left join review.current_reviews as r
          on r.year = f.year and r.indicator_id = f.indicator_id
         and r.code_insee is not distinct from f.code_insee
        {joins}
        {more_joins}
        where f.year = ? {f"and ({condition})" if condition else ""}
        order by f.priority nulls last, f.indicator_id, f.code_insee nulls first
        """,
        [*join_params, year],
    ).fetchall()
    return [ReviewedValue(*row) for row in rows]


def list_reviews(
    con: duckdb.DuckDBPyConnection, year: int, status: str | None = None
) -> list[ReviewedValue]:
    """Reviewed values of the year (or those with one status, or « non revu »)."""
    values = reviewed_values(con, year)
    if status is None:
        return [v for v in values if v.status is not None]
    if _fold(status) in ("non revu", "non revue", "nonrevu", "aucun"):
        return [v for v in values if v.status is None]
    canonical = normalize_status(status)
    if canonical is None:
        raise ReviewError(
            f"statut « {status} » inconnu ; statuts admis : {STATUS_HELP}, ou « non revu »"
        )
    return [v for v in values if v.status == canonical]


def status_counts(values: list[ReviewedValue]) -> dict[str, int]:
    counts = dict.fromkeys([*STATUSES, NOT_REVIEWED], 0)
    for v in values:
        counts[v.status or NOT_REVIEWED] += 1
    return counts


def history(
    con: duckdb.DuckDBPyConnection, year: int, indicator_id: str, code_insee: str | None
) -> list[dict]:
    """Every decision on one value, oldest first."""
    ensure_review_tables(con)
    keys = ["status", "comment", "reviewer", "reviewed_at", "value_at_review", "origin"]
    return [
        dict(zip(keys, row, strict=True))
        for row in con.execute(
            "select status, comment, reviewer, reviewed_at, value_at_review, origin "
            "from review.value_reviews where year = ? and indicator_id = ? "
            "and code_insee is not distinct from ? order by review_id",
            [year, indicator_id, code_insee],
        ).fetchall()
    ]
