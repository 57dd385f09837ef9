"""A derived value re-derived from the rows its filter selects (``recompute_values``).

What the test suite compares with dbt's values for every derived value of the demo
campaign: a row filter of ``dbt/indicator_source_rows.yml`` cannot drift from the SQL of the
dbt models, the computation's only source of truth, unnoticed.
"""

from __future__ import annotations

import re

import duckdb

from dagster_project.release.lineage.filters import (
    COMMUNE_FILTER,
    RowFilterError,
    find_raw_table,
    row_filters,
)
from dagster_project.warehouse.relations import column_names


class _Warehouse:
    """Memoised look-ups of one connection's raw tables, columns and populations (the
    information schema costs milliseconds a question; a check asks thousands)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._tables: dict[str, tuple[str, bool] | None] = {}
        self._columns: dict[str, set[str]] = {}
        self._populations: dict[str | None, float | None] = {}

    def raw_table(self, source_id: str) -> tuple[str, bool] | None:
        if source_id not in self._tables:
            self._tables[source_id] = find_raw_table(self.con, source_id)
        return self._tables[source_id]

    def has_column(self, table: str, column: str) -> bool:
        if table not in self._columns:
            self._columns[table] = column_names(self.con, table)
        return column in self._columns[table]

    def population(self, code_insee: str | None) -> float | None:
        if code_insee not in self._populations:
            row = self.con.execute(
                "select sum(municipal_population) from marts.dim_communes "
                "where code_insee = ? or ? is null",
                [code_insee, code_insee],
            ).fetchone()
            self._populations[code_insee] = None if row[0] is None else float(row[0])
        return self._populations[code_insee]


def recompute_values(
    con: duckdb.DuckDBPyConnection,
    values: list[tuple[str, int, str | None, str]],
    filters: dict | None = None,
) -> list[float | None]:
    """Each value (indicator_id, year, code_insee, delivery_ids) re-derived from the rows its
    filter selects — in the deliveries ``delivery_ids``, of the commune if one is given: the
    measure of each source, combined by ``value`` (``$population``: municipal population of
    the commune, or of all of them, from marts.dim_communes). What the test suite compares
    with dbt's values; raises RowFilterError for an indicator without a filter."""
    filters = filters if filters is not None else row_filters()
    warehouse = _Warehouse(con)
    results: list[float | None] = []
    for indicator_id, year, code_insee, delivery_ids in values:
        if indicator_id not in filters:
            raise RowFilterError(f"aucun filtre de lignes déclaré pour {indicator_id}")
        entry = filters[indicator_id]
        parts, params = [], {"delivery_ids": delivery_ids}
        for n, (source_id, source_filter) in enumerate(entry.sources.items()):
            found = warehouse.raw_table(source_id)
            if found is None:
                raise RowFilterError(f"table brute de la source {source_id} absente")
            table = found[0]
            row_filter, condition_values = source_filter.sql(f"p{n}_")
            params.update(condition_values)
            commune = ""
            if code_insee is not None and warehouse.has_column(table, "code_insee"):
                commune = COMMUNE_FILTER
                params["code_insee"] = code_insee
            parts.append(
                f"(select {source_filter.measure} as {source_id}\nfrom {table} as r\n"
                "where list_contains(string_split($delivery_ids, ','), r._delivery_id)"
                f"{commune}{row_filter}) as part_{n}"
            )
        query = f"select {entry.value}\nfrom " + "\ncross join ".join(parts)
        if re.search(r"\$year\b", query):
            params["year"] = year
        if re.search(r"\$population\b", query):
            params["population"] = warehouse.population(code_insee)
        result = con.execute(query, params).fetchone()[0]
        results.append(None if result is None else float(result))
    return results


def recompute_value(
    con: duckdb.DuckDBPyConnection,
    indicator_id: str,
    year: int,
    code_insee: str | None,
    delivery_ids: str,
    filters: dict | None = None,
) -> float | None:
    """One value re-derived from its filtered rows (``recompute_values``)."""
    [result] = recompute_values(con, [(indicator_id, year, code_insee, delivery_ids)], filters)
    return result
