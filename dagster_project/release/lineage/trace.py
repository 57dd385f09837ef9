"""Where a published value comes from (``trace``, for ``kpi trace``).

For one value (indicator, year, commune or agglomeration) of a release — the latest version
of the year unless one is named — or of the warehouse when the year has no release yet: the
release and the value with its review status; the dbt model that computed it (``model``);
the deliveries it was computed from (``DELIVERIES_SQL``, the query documented in
docs/audit.md); the source rows: for a declared figure the exact declared row of
``raw.indicateurs_declares``, for a derived figure the rows of the contributing deliveries
in the raw tables of its sources that its computation reads (the indicator's row filter,
``filters``, restricted to the commune for a commune value) as sheet + row-number ranges
with a count, and per source how many rows feed the value and by which filter (French).
Only lineage columns are printed, so nothing personal (pseudonyms, ages of
``raw_restricted``) ever is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import yaml

from dagster_project.release.lineage.filters import (
    COMMUNE_FILTER,
    ROW_FILTERS_YML,
    IndicatorRows,
    RowFilterError,
    find_raw_table,
    row_filters,
    source_rows_query,
)
from dagster_project.release.lineage.model import catalogue_entry, computing_model
from dagster_project.release.records import release_for, release_info
from dagster_project.warehouse.relations import column_exists, table_exists

# The deliveries behind one released value. Documented verbatim in docs/audit.md; parameters
# $release_id, $indicator_id, $code_insee (NULL for the agglomeration value).
DELIVERIES_SQL = """\
select d.delivery_id, d.source_id, d.department, d.campaign_year, d.file_name,
       d.file_sha256, d.received_at, d.in_force
from release.release_values as v
join ingest.deliveries as d
  on list_contains(string_split(v.delivery_ids, ','), d.delivery_id)
where v.release_id = $release_id
  and v.indicator_id = $indicator_id
  and v.code_insee is not distinct from $code_insee
order by d.source_id, d.campaign_year, d.delivery_id"""


# The same for a value not released yet (the warehouse's current values of $year).
CURRENT_DELIVERIES_SQL = DELIVERIES_SQL.replace(
    "release.release_values as v", "marts.fct_indicator_values as v"
).replace("v.release_id = $release_id", "v.year = $year")


# The declared row behind a declared figure ($delivery_ids: the value's comma-separated list).
DECLARED_ROW_SQL = """\
select r._delivery_id, r._sheet, r._row_number, r.valeur, r.date_valeur, r.commentaire
from raw.indicateurs_declares as r
where list_contains(string_split($delivery_ids, ','), r._delivery_id)
  and r.indicator_id = $indicator_id
  and r.code_insee is not distinct from $code_insee
order by r._delivery_id, r._sheet, r._row_number"""


# All the rows of the same deliveries (and commune): what the filter chose from.
DELIVERED_ROWS_SQL = """\
select count(*)
from {table} as r
where list_contains(string_split($delivery_ids, ','), r._delivery_id){commune_filter}"""


class TraceError(LookupError):
    """The value cannot be traced; the message (French) says why."""


@dataclass
class SourceRows:
    table: str
    delivery_id: str
    sheet: str | None
    row_count: int
    ranges: list[str]
    restricted: bool = False
    commune_filtered: bool = False
    declared: dict | None = None  # the declared row's value, date and comment


@dataclass
class RowSelection:
    """For one source of a derived value: how many rows feed it, and by which filter."""

    source_id: str
    table: str
    row_filter: str  # in French: the commune and the indicator's conditions ("" : none)
    row_count: int  # rows feeding the value
    delivered_row_count: int  # rows of the value's deliveries (and commune) before the filter
    filter_declared: bool  # False: no usable filter, every delivered row is listed


@dataclass
class Trace:
    indicator_id: str
    year: int
    code_insee: str | None
    commune: str | None
    label: str | None
    release: dict | None
    value: dict
    model: dict
    deliveries: list[dict] = field(default_factory=list)
    source_rows: list[SourceRows] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    row_selection: list[RowSelection] = field(default_factory=list)


def row_ranges(numbers: list[int]) -> list[str]:
    """[2, 3, 4, 7, 9, 10] → ['2–4', '7', '9–10']."""
    ranges: list[str] = []
    start = previous = None
    for n in sorted(set(numbers)):
        if start is None:
            start = previous = n
        elif n == previous + 1:
            previous = n
        else:
            ranges.append(f"{start}–{previous}" if previous != start else str(start))
            start = previous = n
    if start is not None:
        ranges.append(f"{start}–{previous}" if previous != start else str(start))
    return ranges


def _indicator_filters(indicator_id: str, notes: list[str]) -> IndicatorRows | None:
    try:
        filters = row_filters()
    except (OSError, yaml.YAMLError, RowFilterError) as exc:
        notes.append(f"filtres de lignes illisibles ({ROW_FILTERS_YML.name}) : {exc}")
        return None
    return filters.get(indicator_id)


def _derived_source_rows(
    con: duckdb.DuckDBPyConnection,
    indicator_id: str,
    year: int,
    code_insee: str | None,
    source_ids: str | None,
    delivery_ids: str,
    notes: list[str],
) -> tuple[list[SourceRows], list[RowSelection]]:
    """The rows of each source that the indicator's computation reads (its declared filter,
    the value's deliveries, the commune), with a French account of the selection."""
    entry = _indicator_filters(indicator_id, notes)
    if entry is None:
        notes.append(
            f"aucun filtre de lignes déclaré pour {indicator_id} ({ROW_FILTERS_YML.name}) : "
            "toutes les lignes des livraisons sont listées, pas seulement celles du calcul"
        )
    source_rows: list[SourceRows] = []
    selection: list[RowSelection] = []
    for source_id in [s.strip() for s in (source_ids or "").split(",") if s.strip()]:
        found = find_raw_table(con, source_id)
        if found is None:
            notes.append(f"table brute de la source {source_id} absente de l'entrepôt")
            continue
        table, restricted = found
        filtered = code_insee is not None and column_exists(con, table, "code_insee")
        if code_insee is not None and not filtered:
            notes.append(
                f"{table} n'a pas de colonne commune : toutes les lignes des livraisons sont "
                "listées"
            )
        source_filter = entry.sources.get(source_id) if entry else None
        if entry is not None and source_filter is None:
            notes.append(
                f"{ROW_FILTERS_YML.name} ne dit pas quelles lignes de {source_id} entrent dans "
                f"le calcul de {indicator_id} : toutes les lignes des livraisons sont listées"
            )
        if source_filter is not None:
            missing = [c for c in source_filter.columns if not column_exists(con, table, c)]
            if missing:
                notes.append(
                    f"colonne(s) {', '.join(missing)} absente(s) de {table} : le filtre du "
                    f"calcul ({source_filter.describe(year)}) n'est pas appliqué, toutes les "
                    "lignes des livraisons sont listées"
                )
                source_filter = None
        commune = code_insee if filtered else None
        query, params = source_rows_query(table, source_filter, commune)
        params["delivery_ids"] = delivery_ids
        count = 0
        for did, sheet, row_count, numbers in con.execute(query, params).fetchall():
            count += row_count
            source_rows.append(
                SourceRows(
                    table=table,
                    delivery_id=did,
                    sheet=sheet,
                    row_count=row_count,
                    ranges=row_ranges(numbers),
                    restricted=restricted,
                    commune_filtered=filtered,
                )
            )
        delivered_params = {"delivery_ids": delivery_ids}
        if commune is not None:
            delivered_params["code_insee"] = commune
        delivered = con.execute(
            DELIVERED_ROWS_SQL.format(
                table=table, commune_filter=COMMUNE_FILTER if commune is not None else ""
            ),
            delivered_params,
        ).fetchone()[0]
        described = [f"commune {code_insee}"] if filtered else []
        if source_filter is not None and source_filter.conditions:
            described.append(source_filter.describe(year))
        selection.append(
            RowSelection(
                source_id=source_id,
                table=table,
                row_filter=", ".join(described),
                row_count=count,
                delivered_row_count=delivered,
                filter_declared=source_filter is not None,
            )
        )
    return source_rows, selection


def trace(
    con: duckdb.DuckDBPyConnection,
    indicator_id: str,
    year: int,
    code_insee: str | None = None,
    release_id: str | None = None,
    manifest_path: Path | None = None,
) -> Trace:
    """Everything that leads to one value; raises TraceError (French) when there is none."""
    notes: list[str] = []
    chosen = release_for(con, year, release_id)
    if release_id and chosen is None:
        raise TraceError(f"publication inconnue : {release_id}")
    release = release_info(con, chosen) if chosen else None
    if release and release["year"] != year:
        raise TraceError(f"{chosen} est une publication de {release['year']}, pas de {year}")
    columns = "value, unit, as_of_date, kind, computation, comment, source_ids, delivery_ids"
    if release:
        review = (
            "review_status, review_comment"
            if column_exists(con, "release.release_values", "review_status")
            else "null, null"
        )
        row = con.execute(
            f"select {columns}, {review} from release.release_values where release_id = ? "
            "and indicator_id = ? and code_insee is not distinct from ?",
            [chosen, indicator_id, code_insee],
        ).fetchone()
        where = f"dans {chosen}"
    else:
        if not table_exists(con, "marts.fct_indicator_values"):
            raise TraceError("aucune valeur d'indicateur dans l'entrepôt : lancez `kpi run`")
        notes.append(f"aucune publication de {year} : valeur actuelle de l'entrepôt, non figée")
        row = con.execute(
            f"select {columns}, null, null from marts.fct_indicator_values where year = ? "
            "and indicator_id = ? and code_insee is not distinct from ?",
            [year, indicator_id, code_insee],
        ).fetchone()
        where = f"dans l'entrepôt pour {year}"
    if row is None:
        scope = f"la commune {code_insee}" if code_insee else "l'agglomération"
        raise TraceError(f"aucune valeur de « {indicator_id} » pour {scope} {where}")
    keys = [
        "value",
        "unit",
        "as_of_date",
        "kind",
        "computation",
        "comment",
        "source_ids",
        "delivery_ids",
        "review_status",
        "review_comment",
    ]
    value = dict(zip(keys, row, strict=True))
    entry = catalogue_entry(con, indicator_id)
    computation = value["computation"] or entry["computation"]
    model = computing_model(indicator_id, computation, entry["department"], manifest_path)

    if release:
        params = {"release_id": chosen, "indicator_id": indicator_id, "code_insee": code_insee}
        sql = DELIVERIES_SQL
    else:
        params = {"year": year, "indicator_id": indicator_id, "code_insee": code_insee}
        sql = CURRENT_DELIVERIES_SQL
    delivery_keys = [
        "delivery_id",
        "source_id",
        "department",
        "campaign_year",
        "file_name",
        "file_sha256",
        "received_at",
        "in_force",
    ]
    deliveries = []
    if table_exists(con, "ingest.deliveries"):
        deliveries = [
            dict(zip(delivery_keys, r, strict=True)) for r in con.execute(sql, params).fetchall()
        ]
    listed = [d.strip() for d in (value["delivery_ids"] or "").split(",") if d.strip()]
    unknown = sorted(set(listed) - {d["delivery_id"] for d in deliveries})
    if unknown:
        notes.append("livraison(s) absente(s) du journal ingest.deliveries : " + ", ".join(unknown))

    source_rows: list[SourceRows] = []
    selection: list[RowSelection] = []
    delivery_ids = ",".join(listed)
    if computation == "declared":
        if table_exists(con, "raw.indicateurs_declares"):
            for did, sheet, number, declared, date, comment in con.execute(
                DECLARED_ROW_SQL,
                {
                    "delivery_ids": delivery_ids,
                    "indicator_id": indicator_id,
                    "code_insee": code_insee,
                },
            ).fetchall():
                source_rows.append(
                    SourceRows(
                        table="raw.indicateurs_declares",
                        delivery_id=did,
                        sheet=sheet,
                        row_count=1,
                        ranges=[str(number)],
                        declared={"valeur": declared, "date_valeur": date, "commentaire": comment},
                    )
                )
        if not source_rows:
            notes.append("ligne déclarée introuvable dans raw.indicateurs_declares")
    else:
        source_rows, selection = _derived_source_rows(
            con, indicator_id, year, code_insee, value["source_ids"], delivery_ids, notes
        )
    commune = None
    if code_insee and table_exists(con, "marts.dim_communes"):
        found_name = con.execute(
            "select commune_name from marts.dim_communes where code_insee = ? limit 1", [code_insee]
        ).fetchone()
        commune = found_name[0] if found_name else None
    return Trace(
        indicator_id=indicator_id,
        year=year,
        code_insee=code_insee,
        commune=commune,
        label=entry["label"],
        release=release,
        value=value,
        model=model,
        deliveries=deliveries,
        source_rows=source_rows,
        notes=notes,
        row_selection=selection,
    )
