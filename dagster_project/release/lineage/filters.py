"""Which rows of which raw tables feed each derived indicator: ``dbt/indicator_source_rows.yml``
(format in the file's header), parsed (``parse_row_filters``, ``row_filters``), and the query
listing the rows a filter selects (``source_rows_query``, documented in docs/audit.md).

The row filters are declarative (one entry per derived indicator, in terms of the delivered
files' columns); the dbt models stay the computation's only source of truth:
``recompute.recompute_value`` re-derives a value from the filtered rows, and the test suite
checks that it equals dbt's for every derived value of the demo campaign, so a filter cannot
drift from the SQL unnoticed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import yaml

from dagster_project.settings import DBT_PROJECT_DIR
from dagster_project.warehouse.relations import table_exists

# Which rows of which raw tables feed each derived indicator (format in the file's header).
ROW_FILTERS_YML = DBT_PROJECT_DIR / "indicator_source_rows.yml"


# The rows of a source table behind a derived figure: lineage columns only (HR-safe).
# {row_filter}: the indicator's conditions (``SourceFilter.sql``), one ``and`` line each.
SOURCE_ROWS_SQL = """\
select r._delivery_id, r._sheet, count(*) as row_count,
       list(r._row_number order by r._row_number) as row_numbers
from {table} as r
where list_contains(string_split($delivery_ids, ','), r._delivery_id){commune_filter}{row_filter}
group by r._delivery_id, r._sheet
order by r._delivery_id, r._sheet"""
COMMUNE_FILTER = "\n  and r.code_insee = $code_insee"


IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
CAMPAIGN = "campaign"  # in a year condition: the row's campaign year (_campaign_year)


class RowFilterError(ValueError):
    """indicator_source_rows.yml does not follow its documented format."""


def _campaign_or_year(value: Any, where: str) -> int | None:
    if value == CAMPAIGN:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise RowFilterError(f"{where} : année attendue (nombre ou « {CAMPAIGN} »), pas {value!r}")


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, (str, int, float, bool)):
        return value
    raise RowFilterError(f"{where} : valeur simple attendue, pas {value!r}")


def _or(values: tuple) -> str:
    texts = [str(v) for v in values]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " ou " + texts[-1]


@dataclass(frozen=True)
class Condition:
    """One condition on a source row: ``column`` (as in the delivered file) and its kind:
    equals, one_of, not_one_of, equals_ignoring_case, year (None = the campaign year),
    years (first, last; None = the campaign year), present."""

    column: str
    kind: str
    values: tuple = ()

    @classmethod
    def parse(cls, column: str, spec: Any, where: str) -> Condition:
        where = f"{where}, colonne {column}"
        if not IDENTIFIER.match(str(column)):
            raise RowFilterError(f"{where} : nom de colonne invalide")
        if isinstance(spec, list):
            if not spec:
                raise RowFilterError(f"{where} : liste de valeurs vide")
            return cls(column, "one_of", tuple(_scalar(v, where) for v in spec))
        if not isinstance(spec, dict):
            return cls(column, "equals", (_scalar(spec, where),))
        if len(spec) != 1:
            raise RowFilterError(f"{where} : une seule forme de condition par colonne")
        [(form, argument)] = spec.items()
        if form == "not":
            values = argument if isinstance(argument, list) else [argument]
            return cls(column, "not_one_of", tuple(_scalar(v, where) for v in values))
        if form == "ignore_case":
            return cls(column, "equals_ignoring_case", (str(_scalar(argument, where)),))
        if form == "year":
            return cls(column, "year", (_campaign_or_year(argument, where),))
        if form == "years":
            if not (isinstance(argument, list) and len(argument) == 2):
                raise RowFilterError(f"{where} : years attend [première, dernière]")
            return cls(column, "years", tuple(_campaign_or_year(v, where) for v in argument))
        if form == "present" and argument is True:
            return cls(column, "present")
        raise RowFilterError(f"{where} : condition inconnue {spec!r}")

    def sql(self, prefix: str) -> tuple[str, dict]:
        """The condition on alias ``r``, its values as named parameters ``$<prefix><n>``."""
        column = f'r."{self.column}"'
        names = [f"{prefix}{n}" for n in range(len(self.values))]
        params = {
            name: value for name, value in zip(names, self.values, strict=True) if value is not None
        }

        def year(n: int) -> str:
            return "r._campaign_year" if self.values[n] is None else f"${names[n]}"

        if self.kind == "equals":
            return f"{column} = ${names[0]}", params
        if self.kind == "one_of":
            return f"{column} in ({', '.join('$' + n for n in names)})", params
        if self.kind == "not_one_of":
            return f"{column} not in ({', '.join('$' + n for n in names)})", params
        if self.kind == "equals_ignoring_case":
            return f"upper({column}) = upper(${names[0]})", params
        if self.kind == "year":
            return f"extract(year from {column}) = {year(0)}", params
        if self.kind == "years":
            return f"extract(year from {column}) between {year(0)} and {year(1)}", params
        return f"{column} is not null", params  # present

    def describe(self, year: int | None = None) -> str:
        """In French, for an auditor; ``year``: the campaign year of the traced value."""
        campaign = str(year) if year is not None else "l'année de campagne"

        def year_text(n: int) -> str:
            return campaign if self.values[n] is None else str(self.values[n])

        if self.kind == "equals":
            return f"{self.column} = {self.values[0]}"
        if self.kind == "one_of":
            return f"{self.column} = {_or(self.values)}"
        if self.kind == "not_one_of":
            return f"{self.column} autre que {_or(self.values)}"
        if self.kind == "equals_ignoring_case":
            return f"{self.column} = {self.values[0]} sans distinguer majuscules et minuscules"
        if self.kind == "year":
            return f"{self.column} en {year_text(0)}"
        if self.kind == "years":
            return f"{self.column} de {year_text(0)} à {year_text(1)}"
        return f"{self.column} renseigné"


@dataclass(frozen=True)
class SourceFilter:
    """The rows of one source that feed an indicator, and the aggregate they give."""

    source_id: str
    conditions: tuple[Condition, ...] = ()
    measure: str = ""

    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.conditions]

    def sql(self, prefix: str = "rf") -> tuple[str, dict]:
        """``\\n  and <condition>`` lines (alias ``r``) and their parameters."""
        text, params = "", {}
        for n, condition in enumerate(self.conditions):
            clause, values = condition.sql(f"{prefix}{n}_")
            text += f"\n  and {clause}"
            params.update(values)
        return text, params

    def describe(self, year: int | None = None) -> str:
        return " et ".join(c.describe(year) for c in self.conditions)


@dataclass(frozen=True)
class IndicatorRows:
    """Per source, the rows feeding one indicator; ``value``: SQL over the sources' measures
    (each named by its source id)."""

    indicator_id: str
    sources: dict[str, SourceFilter]
    value: str


def parse_row_filters(data: Any, where: str = "indicator_source_rows.yml") -> dict:
    """{indicator_id: IndicatorRows} from the file's YAML; RowFilterError when malformed."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise RowFilterError(f"{where} : « version: 1 » attendu")
    indicators = data.get("indicators")
    if not isinstance(indicators, dict):
        raise RowFilterError(f"{where} : « indicators » attendu")
    parsed: dict[str, IndicatorRows] = {}
    for indicator_id, entry in indicators.items():
        at = f"{where}, {indicator_id}"
        if not isinstance(entry, dict) or set(entry) - {"rows", "value"}:
            raise RowFilterError(f"{at} : clés attendues rows (et value)")
        rows = entry.get("rows")
        if not isinstance(rows, dict) or not rows:
            raise RowFilterError(f"{at} : rows doit donner au moins une source")
        sources = {}
        for source_id, spec in rows.items():
            at_source = f"{at}, {source_id}"
            if not IDENTIFIER.match(str(source_id)):
                raise RowFilterError(f"{at_source} : identifiant de source invalide")
            if not isinstance(spec, dict) or set(spec) - {"where", "measure"}:
                raise RowFilterError(f"{at_source} : clés attendues where et measure")
            measure = spec.get("measure")
            if not isinstance(measure, str) or not measure.strip():
                raise RowFilterError(f"{at_source} : measure (agrégat SQL) attendu")
            where_spec = spec.get("where") or {}
            if not isinstance(where_spec, dict):
                raise RowFilterError(f"{at_source} : where doit être un dictionnaire")
            conditions = tuple(
                Condition.parse(column, condition, at_source)
                for column, condition in where_spec.items()
            )
            sources[source_id] = SourceFilter(source_id, conditions, " ".join(measure.split()))
        value = entry.get("value")
        if value is None:
            if len(sources) > 1:
                raise RowFilterError(f"{at} : plusieurs sources, value attendu")
            value = next(iter(sources))
        if not isinstance(value, str) or not value.strip():
            raise RowFilterError(f"{at} : value doit être une expression")
        parsed[indicator_id] = IndicatorRows(indicator_id, sources, " ".join(value.split()))
    return parsed


@cache
def _row_filters_of(path: Path, mtime: float) -> dict:
    with path.open(encoding="utf-8") as handle:
        return parse_row_filters(yaml.safe_load(handle), path.name)


def row_filters(path: Path | None = None) -> dict:
    """The declared row filters ({} when the file is absent)."""
    path = path if path is not None else ROW_FILTERS_YML
    if not path.is_file():
        return {}
    return _row_filters_of(path, path.stat().st_mtime)


def source_rows_query(
    table: str, source_filter: SourceFilter | None, code_insee: str | None
) -> tuple[str, dict]:
    """SOURCE_ROWS_SQL for one table and its parameters but $delivery_ids."""
    row_filter, params = source_filter.sql() if source_filter else ("", {})
    if code_insee is not None:
        params["code_insee"] = code_insee
    query = SOURCE_ROWS_SQL.format(
        table=table,
        commune_filter=COMMUNE_FILTER if code_insee is not None else "",
        row_filter=row_filter,
    )
    return query, params


def find_raw_table(con: duckdb.DuckDBPyConnection, source_id: str) -> tuple[str, bool] | None:
    for schema in ("raw", "raw_restricted"):
        if table_exists(con, f"{schema}.{source_id}"):
            return f"{schema}.{source_id}", schema == "raw_restricted"
    return None
