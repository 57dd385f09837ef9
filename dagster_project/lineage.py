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
  in the raw tables of its sources (restricted to the commune when the table has one), as
  sheet + row-number ranges with a count. Only lineage columns are read, so nothing
  personal (pseudonyms, ages of ``raw_restricted``) is ever printed.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb

from dagster_project.relations import table_exists
from dagster_project.release import format_number, release_for, release_info
from dagster_project.settings import CATALOGUE_CSV, DBT_PROJECT_DIR

DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"

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
SOURCE_ROWS_SQL = """\
select r._delivery_id, r._sheet, count(*) as row_count,
       list(r._row_number order by r._row_number) as row_numbers
from {table} as r
where list_contains(string_split($delivery_ids, ','), r._delivery_id){commune_filter}
group by r._delivery_id, r._sheet
order by r._delivery_id, r._sheet"""
COMMUNE_FILTER = "\n  and r.code_insee = $code_insee"


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
        for source_id in [s.strip() for s in (value["source_ids"] or "").split(",") if s.strip()]:
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
            query = SOURCE_ROWS_SQL.format(
                table=table, commune_filter=COMMUNE_FILTER if filtered else ""
            )
            params = {"delivery_ids": delivery_ids}
            if filtered:
                params["code_insee"] = code_insee
            for did, sheet, count, numbers in con.execute(query, params).fetchall():
                source_rows.append(
                    SourceRows(
                        table=table,
                        delivery_id=did,
                        sheet=sheet,
                        row_count=count,
                        ranges=row_ranges(numbers),
                        restricted=restricted,
                        commune_filtered=filtered,
                    )
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
    )


def _when(value) -> str:
    if value is None:
        return "—"
    return value.strftime("%d/%m/%Y %H:%M:%S") if hasattr(value, "strftime") else str(value)


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
