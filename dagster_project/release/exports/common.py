"""What every export of a release reads: its values with labels, history and review status.

Values of the release year come from ``release.release_values`` when it holds rows for the
release, otherwise from ``marts.fct_indicator_values``; labels from ``marts.dim_indicators``,
commune names from ``marts.dim_communes``; the previous year's value and the linked target from
the per-priority marts (``marts.p1_indicators`` ... ``marts.territoire_indicators``); review
statuses frozen with the release (``release_values.review_status``), else the current ones
(``review.current_reviews``) when reviews are set up. Rows come out in the order of
the report (the catalogue's order), so every export is deterministic.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field

import duckdb

from dagster_project.contracts.reference import unit_label
from dagster_project.settings import CATALOGUE_CSV
from dagster_project.warehouse.relations import column_names, table_exists

PRIORITIES = ["P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"]
PRIORITY_TITLES = {
    "P1": "Priorité 1",
    "P2": "Priorité 2",
    "P3": "Priorité 3",
    "P4": "Priorité 4",
    "APPUI": "Appui stratégique et moyens",
    "TERRITOIRE": "Territoire",
    "AUTRES": "Autres indicateurs",
}
OTHER = "AUTRES"
PRIORITY_MARTS = {
    "P1": "marts.p1_indicators",
    "P2": "marts.p2_indicators",
    "P3": "marts.p3_indicators",
    "P4": "marts.p4_indicators",
    "APPUI": "marts.appui_indicators",
    "TERRITOIRE": "marts.territoire_indicators",
}
AGGLOMERATION = "Agglomération"
PUBLISHER = "Communauté d'agglomération de Béthune-Bruay, Artois Lys Romane"

# Units in French: the labels of dbt/seeds/units.csv (the marts' unit_label column), read by
# contracts.reference.unit_label (``unit_fr``).
# Short forms after a number ("12 %", "1 200 €"); other units are written in full.
UNIT_SUFFIX = {"pct": "%", "eur": "€", "eur_ht": "€ HT", "pct_points": "pts"}

# Review statuses are French already (dagster_project.quality.review: « sans anomalie apparente »,
# « présomption d'anomalie », « anomalie »); a value without a decision is « non revu ».
NOT_REVIEWED = "non revu"


def unit_fr(unit: str | None) -> str:
    """« kg par habitant » for ``kg_per_inhabitant`` (dbt/seeds/units.csv)."""
    return unit_label(unit)


def review_status_fr(status: str | None) -> str:
    text = "" if status is None else str(status).strip()
    return text or NOT_REVIEWED


# --------------------------------------------------------------------------------------------
# French formatting
# --------------------------------------------------------------------------------------------

NNBSP = "\u202f"  # thin no-break space: thousands separator and before % or €


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def format_number(value, decimals: int = 2) -> str:
    """1234567.891 -> '1 234 567,89' (at most ``decimals`` decimals, no trailing zeros)."""
    if is_missing(value):
        return ""
    number = float(value)
    text = f"{abs(number):,.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    text = text.replace(",", NNBSP).replace(".", ",")
    if number < 0 and text.strip("0,"):
        text = "−" + text
    return text


def format_value(value, unit: str | None) -> str:
    """A value with its unit, as a reader expects it: '12,5 %', '1 200 €', '38 communes'."""
    number = format_number(value)
    if not number:
        return ""
    if unit in UNIT_SUFFIX:
        return f"{number}{NNBSP}{UNIT_SUFFIX[unit]}"
    label = unit_fr(unit)
    if not label or label in ("nombre", "ratio", "rang"):
        return number
    return f"{number} {label.removeprefix('nombre ')}"  # « 3 par an », not « 3 nombre par an »


def format_change_pct(value) -> str:
    if is_missing(value):
        return ""
    sign = "+" if value > 0 else ""
    return f"{sign}{format_number(value, 1)}{NNBSP}%"


def format_date(value) -> str:
    if value is None:
        return ""
    return value.strftime("%d/%m/%Y")


# --------------------------------------------------------------------------------------------
# The release's rows
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One value of the release, with everything a reader needs next to it."""

    priority: str
    objective: str
    indicator_id: str
    label_fr: str
    code_insee: str | None
    commune_name: str
    value: float
    unit: str | None
    as_of_date: dt.date | None
    previous_year_value: float | None
    change: float | None
    change_pct: float | None
    target_value: float | None
    comment: str | None
    review_status: str
    review_comment: str | None
    kind: str | None
    order: int
    # an implausible value someone qualified (quality.plausibility): said next to it
    plausibility_note: str | None = None

    @property
    def comment_text(self) -> str:
        parts = [self.comment] if self.comment else []
        if self.review_comment:
            parts.append(f"Revue : {self.review_comment}")
        return " — ".join(parts)


class _RowIndex:
    """The release's rows grouped once (each group keeps the rows' order)."""

    def __init__(self, rows: list[Row]):
        self.priorities: set[str] = set()
        self.agglomeration: dict[str, list[Row]] = {}
        self.communes: list[Row] = []
        self.communes_by_priority: dict[str, list[Row]] = {}
        self.commune_rows: dict[str, list[Row]] = {}
        for r in rows:
            self.priorities.add(r.priority)
            if r.code_insee is None:
                self.agglomeration.setdefault(r.priority, []).append(r)
                continue
            self.communes.append(r)
            self.communes_by_priority.setdefault(r.priority, []).append(r)
            if r.code_insee:
                self.commune_rows.setdefault(r.indicator_id, []).append(r)
        for group in self.commune_rows.values():
            group.sort(key=lambda r: (r.commune_name.casefold(), r.code_insee))


@dataclass
class ReleaseData:
    release_id: str
    year: int
    rows: list[Row]
    # indicator_id -> [(year, value)] of agglomeration values, oldest first (release year included)
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    reviews_available: bool = False
    source: str = "marts.fct_indicator_values"
    # Built once on first use (``rows`` is not changed after load_release): the exports ask
    # for the rows of each indicator and priority, and a scan per question is
    # O(indicators x rows) at scale (390 k rows at 100 times the agglomeration).
    _index: _RowIndex | None = field(default=None, init=False, repr=False, compare=False)

    def _rows_index(self) -> _RowIndex:
        if self._index is None:
            self._index = _RowIndex(self.rows)
        return self._index

    @property
    def priorities(self) -> list[str]:
        """The six priorities, plus AUTRES when a value's indicator is not in the catalogue."""
        extra = [OTHER] if OTHER in self._rows_index().priorities else []
        return PRIORITIES + extra

    def agglomeration(self, priority: str) -> list[Row]:
        return list(self._rows_index().agglomeration.get(priority, ()))

    def communes(self, priority: str | None = None) -> list[Row]:
        """Commune rows (of one priority), in the report's order."""
        index = self._rows_index()
        if priority is None:
            return list(index.communes)
        return list(index.communes_by_priority.get(priority, ()))

    def has_communes(self) -> bool:
        return bool(self._rows_index().communes)

    def commune_rows(self, indicator_id: str) -> list[Row]:
        """Commune rows of one indicator, by commune name then code."""
        return list(self._rows_index().commune_rows.get(indicator_id, ()))


def catalogue_order() -> dict[str, int]:
    """Position of each indicator in the catalogue (the report's order)."""
    if not CATALOGUE_CSV.exists():
        return {}
    with CATALOGUE_CSV.open(encoding="utf-8", newline="") as handle:
        return {row["indicator_id"]: i for i, row in enumerate(csv.DictReader(handle))}


def _release_rows(con: duckdb.DuckDBPyConnection, release_id: str) -> bool:
    if not table_exists(con, "release.release_values"):
        return False
    row = con.execute(
        "select count(*) from release.release_values where release_id = ?", [release_id]
    ).fetchone()
    return bool(row and row[0])


def _values(con: duckdb.DuckDBPyConnection, release_id: str, year: int):
    """The release year's values: (rows, source, reviews frozen with them or None).

    Rows are (indicator_id, code_insee, value, unit, as_of_date, kind, comment, review_status,
    review_comment, plausibility_note); the review columns are those frozen in
    release.release_values when it has them.
    """
    base = "indicator_id, code_insee, value, unit, as_of_date, kind, comment"
    if _release_rows(con, release_id):
        columns = column_names(con, "release.release_values")
        frozen = {"review_status", "review_comment"} <= columns
        extra = "review_status, review_comment" if frozen else "null, null"
        note = "plausibility_note" if "plausibility_note" in columns else "null"
        rows = con.execute(
            f"select {base}, {extra}, {note} from release.release_values "
            "where release_id = ? and year = ?",
            [release_id, year],
        ).fetchall()
        return rows, "release.release_values", frozen
    rows = con.execute(
        f"select {base}, null, null, null from marts.fct_indicator_values where year = ?", [year]
    ).fetchall()
    return rows, "marts.fct_indicator_values", False


def _current_reviews(con: duckdb.DuckDBPyConnection, year: int) -> dict | None:
    """Latest review decision per value of the year (None when reviews are not set up)."""
    if table_exists(con, "review.current_reviews"):
        table, order = "review.current_reviews", None
    elif table_exists(con, "review.value_reviews"):
        columns = column_names(con, "review.value_reviews")
        table = "review.value_reviews"
        order = next((c for c in ("review_id", "reviewed_at") if c in columns), "status")
    else:
        return None
    sql = f"select indicator_id, code_insee, status, comment from {table} where year = ?"
    if order:  # the latest decision wins: later rows overwrite earlier ones
        sql += f" order by indicator_id, code_insee nulls first, {order} nulls first"
    return {
        (indicator_id, code or ""): (status, comment)
        for indicator_id, code, status, comment in con.execute(sql, [year]).fetchall()
    }


def load_release(con: duckdb.DuckDBPyConnection, release_id: str, year: int) -> ReleaseData:
    """Every value of the release, labelled, in the report's order."""
    values, source, frozen_reviews = _values(con, release_id, year)
    indicators = {
        r[0]: r[1:]
        for r in con.execute(
            "select indicator_id, priority, objective, label_fr, unit, kind "
            "from marts.dim_indicators"
        ).fetchall()
    }
    communes: dict[str, str] = {}
    if table_exists(con, "marts.dim_communes"):
        communes = dict(
            con.execute("select code_insee, commune_name from marts.dim_communes").fetchall()
        )
    marts: dict[tuple[str, str], tuple] = {}
    for table in PRIORITY_MARTS.values():
        if not table_exists(con, table):
            continue
        for indicator_id, code, previous, target, comment in con.execute(
            f"select indicator_id, code_insee, previous_year_value, target_value, comment "
            f"from {table} where year = ?",
            [year],
        ).fetchall():
            marts[(indicator_id, code or "")] = (previous, target, comment)
    reviews = None if frozen_reviews else _current_reviews(con, year)
    reviews_available = frozen_reviews or reviews is not None
    order_of = catalogue_order()
    rows: list[Row] = []
    for (
        indicator_id,
        code,
        value,
        unit,
        as_of,
        kind,
        comment,
        status,
        review_comment,
        note,
    ) in values:
        priority, objective, label, dim_unit, dim_kind = indicators.get(
            indicator_id, (None, None, None, None, None)
        )
        if priority not in PRIORITIES:
            priority = OTHER  # never drop a value whose indicator the catalogue lacks
        previous, target, mart_comment = marts.get((indicator_id, code or ""), (None, None, None))
        change = change_pct = None
        if not is_missing(previous) and not is_missing(value):
            change = round(float(value) - float(previous), 9)
            if previous != 0:
                change_pct = round(100.0 * (float(value) - float(previous)) / abs(previous), 9)
        if reviews is not None:
            status, review_comment = reviews.get((indicator_id, code or ""), (None, None))
        rows.append(
            Row(
                priority=priority,
                objective=objective or "",
                indicator_id=indicator_id,
                label_fr=label or indicator_id,
                code_insee=code,
                commune_name=AGGLOMERATION if code is None else communes.get(code, code),
                value=value,
                unit=unit or dim_unit,
                as_of_date=as_of,
                previous_year_value=None if is_missing(previous) else previous,
                change=change,
                change_pct=change_pct,
                target_value=None if is_missing(target) else target,
                comment=comment or mart_comment,
                review_status=review_status_fr(status) if reviews_available else "",
                review_comment=review_comment,
                kind=kind or dim_kind,
                order=order_of.get(indicator_id, len(order_of)),
                plausibility_note=note,
            )
        )
    priority_rank = {p: i for i, p in enumerate([*PRIORITIES, OTHER])}
    objective_rank: dict[tuple[str, str], int] = {}
    for row in sorted(rows, key=lambda r: (r.order, r.indicator_id)):
        objective_rank.setdefault((row.priority, row.objective), row.order)
    rows.sort(
        key=lambda r: (
            priority_rank.get(r.priority, len(PRIORITIES)),
            objective_rank[(r.priority, r.objective)],
            r.objective,
            r.order,
            r.indicator_id,
            r.code_insee is not None,
            (r.commune_name or "").casefold(),
            r.code_insee or "",
        )
    )
    history: dict[str, list[tuple[int, float]]] = {}
    current = {r.indicator_id: r.value for r in rows if r.code_insee is None}
    for indicator_id, past_year, value in con.execute(
        "select indicator_id, year, value from marts.fct_indicator_values "
        "where code_insee is null and year < ? and value is not null "
        "order by indicator_id, year",
        [year],
    ).fetchall():
        if indicator_id in current:
            history.setdefault(indicator_id, []).append((int(past_year), float(value)))
    for indicator_id, value in current.items():
        if indicator_id in history and not is_missing(value):
            history[indicator_id].append((year, float(value)))
    history = {k: v for k, v in history.items() if len(v) >= 2}
    return ReleaseData(
        release_id=release_id,
        year=year,
        rows=rows,
        history=history,
        reviews_available=reviews_available,
        source=source,
    )


def release_timestamp(con: duckdb.DuckDBPyConnection, year: int) -> dt.datetime:
    """A fixed time for the release's files: the last in-force delivery of the year.

    Never the wall clock: the same warehouse gives the same files. Without deliveries,
    1 January of the following year.
    """
    latest = None
    if table_exists(con, "ingest.deliveries"):
        row = con.execute(
            "select max(received_at) from ingest.deliveries where campaign_year = ? and in_force",
            [year],
        ).fetchone()
        latest = row[0] if row else None
    if latest is None:
        latest = dt.datetime(year + 1, 1, 1)
    if isinstance(latest, dt.date) and not isinstance(latest, dt.datetime):
        latest = dt.datetime(latest.year, latest.month, latest.day)
    return latest.replace(microsecond=0, tzinfo=dt.UTC)
