"""Where a published value comes from (``kpi trace``).

For one value (indicator, year, commune or agglomeration) of a release — the latest version
of the year unless one is named — or of the warehouse when the year has no release yet:

* the release (id, version, when it was frozen) and the value with its review status;
* the dbt model that computed it: the ``int_<department>__indicator_values`` model found in
  dbt's manifest (``dbt/target/manifest.json``), with the wide model holding the
  indicator's column, or, without a manifest, the name the catalogue implies
  (``computation`` = declared → ``int_declared__indicator_values``, else the department);
* the deliveries it was computed from (file, SHA-256, reception time, department):
  ``DELIVERIES_SQL``, the query documented in docs/audit.md;
* the source rows: for a declared figure the exact declared row of
  ``raw.indicateurs_declares``; for a derived figure the rows of the contributing deliveries
  in the raw tables of its sources that its computation reads — the indicator's row filter
  of ``dbt/indicator_source_rows.yml`` (e.g. ``reseau = eau_potable``), restricted to the
  commune for a commune value — as sheet + row-number ranges with a count, and per source
  how many rows feed the value and by which filter (French). Only lineage columns are
  printed, so nothing personal (pseudonyms, ages of ``raw_restricted``) ever is.

The row filters are declarative (one entry per derived indicator, in terms of the delivered
files' columns); the dbt models stay the computation's only source of truth:
``recompute_value`` re-derives a value from the filtered rows, and the test suite checks that
it equals dbt's for every derived value of the demo campaign, so a filter cannot drift from
the SQL unnoticed.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import yaml

from dagster_project.release.freeze import format_number, release_for, release_info
from dagster_project.settings import CATALOGUE_CSV, DBT_PROJECT_DIR
from dagster_project.warehouse.relations import table_exists

DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# Which rows of which raw tables feed each derived indicator (format in the file's header).
ROW_FILTERS_YML = DBT_PROJECT_DIR / "indicator_source_rows.yml"

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
# All the rows of the same deliveries (and commune): what the filter chose from.
DELIVERED_ROWS_SQL = """\
select count(*)
from {table} as r
where list_contains(string_split($delivery_ids, ','), r._delivery_id){commune_filter}"""


class TraceError(LookupError):
    """The value cannot be traced; the message (French) says why."""


# --------------------------------------------------------------------------- row filters

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
            self._tables[source_id] = _raw_table(self.con, source_id)
        return self._tables[source_id]

    def has_column(self, table: str, column: str) -> bool:
        if table not in self._columns:
            schema, name = table.split(".")
            self._columns[table] = {
                row[0]
                for row in self.con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ?",
                    [schema, name],
                ).fetchall()
            }
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


def _catalogue_entry(con: duckdb.DuckDBPyConnection, indicator_id: str) -> dict:
    if table_exists(con, "marts.dim_indicators"):
        row = con.execute(
            "select label_fr, department, computation from marts.dim_indicators "
            "where indicator_id = ? limit 1",
            [indicator_id],
        ).fetchone()
        if row:
            return {"label": row[0], "department": row[1], "computation": row[2]}
    if CATALOGUE_CSV.exists():
        with CATALOGUE_CSV.open(encoding="utf-8") as handle:
            for entry in csv.DictReader(handle):
                if entry["indicator_id"] == indicator_id:
                    return {
                        "label": entry.get("label_fr"),
                        "department": entry.get("department"),
                        "computation": entry.get("computation"),
                    }
    return {"label": None, "department": None, "computation": None}


def computing_model(
    indicator_id: str,
    computation: str | None,
    department: str | None,
    manifest_path: Path | None = None,
) -> dict:
    """The dbt model that computes the indicator's values, from dbt's manifest if present."""
    if computation == "declared" or not department:
        expected = "int_declared__indicator_values"
    else:
        expected = f"int_{department}__indicator_values"
    model = {
        "name": expected,
        "unique_id": None,
        "path": None,
        "wide_model": None,
        "upstream": [],
        "origin": "catalogue (direction et mode de calcul de l'indicateur)",
    }
    manifest_path = manifest_path if manifest_path is not None else DBT_MANIFEST
    if not manifest_path.is_file():
        return model
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return model
    nodes = {
        n["name"]: n
        for n in manifest.get("nodes", {}).values()
        if n.get("resource_type") == "model"
    }
    macros = manifest.get("macros", {})
    quoted = f"'{indicator_id}'"
    found = None
    for name, node in sorted(nodes.items()):
        if not (name.startswith("int_") and name.endswith("__indicator_values")):
            continue
        texts = [node.get("raw_code") or ""]
        for macro_id in node.get("depends_on", {}).get("macros", []):
            if macro_id.startswith(f"macro.{node.get('package_name')}."):
                texts.append(macros.get(macro_id, {}).get("macro_sql") or "")
        if any(quoted in text for text in texts):
            found = name
            break
    name = found or (expected if expected in nodes else None)
    if name is None:
        return model
    node = nodes[name]
    upstream = node.get("depends_on", {}).get("nodes", [])
    all_nodes = manifest.get("nodes", {})
    wide = next(
        (uid for uid in upstream if indicator_id in (all_nodes.get(uid, {}).get("columns") or {})),
        None,
    )
    model.update(
        {
            "name": name,
            "unique_id": node.get("unique_id"),
            "path": node.get("original_file_path"),
            "wide_model": wide,
            "upstream": upstream,
            "origin": "manifeste dbt (" + str(manifest_path) + ")",
        }
    )
    return model


def _raw_table(con: duckdb.DuckDBPyConnection, source_id: str) -> tuple[str, bool] | None:
    for schema in ("raw", "raw_restricted"):
        if table_exists(con, f"{schema}.{source_id}"):
            return f"{schema}.{source_id}", schema == "raw_restricted"
    return None


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    schema, name = table.split(".")
    return bool(
        con.execute(
            "select count(*) from information_schema.columns where table_schema = ? "
            "and table_name = ? and column_name = ?",
            [schema, name, column],
        ).fetchone()[0]
    )


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
        found = _raw_table(con, source_id)
        if found is None:
            notes.append(f"table brute de la source {source_id} absente de l'entrepôt")
            continue
        table, restricted = found
        filtered = code_insee is not None and _has_column(con, table, "code_insee")
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
            missing = [c for c in source_filter.columns if not _has_column(con, table, c)]
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
            if _has_column(con, "release.release_values", "review_status")
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
    entry = _catalogue_entry(con, indicator_id)
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


def _when(value) -> str:
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y %H:%M:%S") if hasattr(value, "strftime") else str(value)


def _lines(n: int) -> str:
    return f"{n} ligne" if n <= 1 else f"{n} lignes"


def describe_selection(selection: RowSelection, code_insee: str | None = None) -> str:
    """« 100 lignes de eau_reseau (reseau = eau_potable) entrent dans le calcul, sur 200
    lignes livrées »: how many rows feed the value, and by which filter."""
    s = selection
    verb = "entre" if s.row_count <= 1 else "entrent"
    if not s.filter_declared:
        return (
            f"{_lines(s.row_count)} de {s.source_id} listée(s) : toutes les lignes livrées"
            + (f" pour la commune {code_insee}" if code_insee and s.row_filter else "")
            + ", les lignes du calcul ne sont pas connues (voir les remarques)"
        )
    text = (
        f"{_lines(s.row_count)} de {s.source_id} ({s.row_filter or 'toutes les lignes livrées'}) "
    )
    text += f"{verb} dans le calcul"
    if s.delivered_row_count != s.row_count:
        text += f", sur {_lines(s.delivered_row_count)} livrée"
        text += "s" if s.delivered_row_count > 1 else ""
        text += " pour cette commune" if code_insee and s.row_filter.startswith("commune ") else ""
    return text


def format_trace(t: Trace, max_ranges: int = 30) -> str:
    where = f"{t.commune} ({t.code_insee})" if t.commune else (t.code_insee or "agglomération")
    lines = [f"{t.indicator_id} — {t.label or 'libellé inconnu'}", f"  {t.year}, {where}"]
    if t.release:
        r = t.release
        lines.append(
            f"Publication : {r['release_id']} (version {r['version']}, figée le "
            f"{_when(r['created_at'])})" + (f", motif : {r['reason']}" if r.get("reason") else "")
        )
    else:
        lines.append("Publication : aucune (valeur actuelle de l'entrepôt)")
    v = t.value
    lines.append(
        f"Valeur : {format_number(v['value'])} {v['unit'] or ''}".rstrip()
        + f" (type {v['kind']}, calcul {v['computation']}, au {v['as_of_date']})"
    )
    if v.get("comment"):
        lines.append(f"  commentaire : {v['comment']}")
    if t.release:
        status = v.get("review_status") or "non revu"
        review = f"Statut de revue au gel : {status}"
        if v.get("review_comment"):
            review += f" — {v['review_comment']}"
        lines.append(review)
    m = t.model
    lines.append(
        f"Modèle dbt : {m['unique_id'] or m['name']}" + (f" ({m['path']})" if m["path"] else "")
    )
    if m.get("wide_model"):
        lines.append(f"  colonne {t.indicator_id} du modèle {m['wide_model']}")
    lines.append(f"  d'après : {m['origin']}")
    lines.append(f"Livraisons ({len(t.deliveries)}) :")
    for d in t.deliveries:
        status = "en vigueur" if d["in_force"] else "remplacée depuis"
        lines.append(
            f"  - {d['file_name']} ({d['source_id']}, campagne {d['campaign_year']}, direction "
            f"{d['department']}, reçue le {_when(d['received_at'])}, {status})"
        )
        lines.append(f"    SHA-256 {d['file_sha256']} — livraison {d['delivery_id']}")
    total = sum(s.row_count for s in t.source_rows)
    lines.append(f"Lignes sources ({total}) :")
    for selection in t.row_selection:
        lines.append("  " + describe_selection(selection, t.code_insee))
    for s in t.source_rows:
        shown = ", ".join(s.ranges[:max_ranges])
        if len(s.ranges) > max_ranges:
            shown += f", … ({len(s.ranges) - max_ranges} plage(s) de plus)"
        scope = f", commune {t.code_insee}" if s.commune_filtered else ""
        lines.append(
            f"  - {s.table}, feuille « {s.sheet} »{scope} : {s.row_count} ligne(s) — "
            f"ligne(s) {shown} (livraison {s.delivery_id})"
        )
        if s.declared is not None:
            d = s.declared
            lines.append(
                f"    valeur déclarée {format_number(d['valeur'])}, date {d['date_valeur']}"
                + (f", commentaire : {d['commentaire']}" if d["commentaire"] else "")
            )
        if s.restricted:
            lines.append(
                "    données personnelles : seuls la feuille et les numéros de ligne sont montrés"
            )
    for note in t.notes:
        lines.append(f"Remarque : {note}")
    return "\n".join(lines)


def trace_json(t: Trace) -> str:
    return json.dumps(asdict(t), ensure_ascii=False, indent=2, default=str)
