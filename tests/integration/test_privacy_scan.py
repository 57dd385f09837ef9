"""The kit's privacy rule, checked on everything an analyst can read: « no table open to
analysts holds a row per agent, and no published figure counts fewer than 5 agents ».

Slow: the built demo campaign (conftest ``demo_warehouse``), copied, frozen (`kpi freeze`),
then every table of the published copy, every Parquet export and every file of the release
folder is scanned (``scan``): no restricted relation (by schema, by name, by columns), no
personal column, no pseudonym of the build anywhere, no HR count (an HR indicator counted in
agents or acts) between 1 and 4, no rejected HR value, no example value in the HR validation
results.
"""

from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from dagster_project.settings import CATALOGUE_CSV
from dagster_project.warehouse.published_copy import PERSONAL_COLUMNS, RESTRICTED_SCHEMAS

HR_COUNT_UNITS = ("agents", "count")
# columns that hold an indicator's value in a table that has an indicator_id
VALUE_COLUMNS = ("value", "valeur", "previous_year_value", "target_value", "published_2025")
XLSX_VALUE_HEADERS = ("Valeur", "Année précédente", "Cible")
PSEUDONYM_TOKEN = re.compile(r"(?<![0-9a-f])[0-9a-f]{16}(?![0-9a-f])")


@dataclass
class Scan:
    """What the scan looked at, and what it found (``findings``, empty when private)."""

    tables: int = 0
    files: int = 0
    hr_cells: int = 0  # HR count values checked (table cells, CSV/Excel cells, report figures)
    findings: list[str] = field(default_factory=list)

    def small(self, where: str, value) -> None:
        self.hr_cells += 1
        if value is not None and 0 < float(value) < 5:
            self.findings.append(f"{where} : effectif RH de {value} (moins de 5)")


def hr_count_indicators(catalogue: Path = CATALOGUE_CSV) -> set[str]:
    """HR indicators whose value counts agents or acts about agents."""
    with catalogue.open(encoding="utf-8") as handle:
        return {
            row["indicator_id"]
            for row in csv.DictReader(handle)
            if row["department"] == "hr" and row["unit"] in HR_COUNT_UNITS
        }


@dataclass(frozen=True)
class Restricted:
    """What the build holds that no analyst may read."""

    names: frozenset[str]  # relation names of the restricted schemas
    column_lists: frozenset[tuple[str, ...]]  # their column lists
    pseudonyms: frozenset[str]
    personal_sources: frozenset[str]


def restricted_of(build: Path) -> Restricted:
    con = duckdb.connect(str(build), read_only=True)
    try:
        marks = ", ".join(f"'{s}'" for s in RESTRICTED_SCHEMAS)
        relations = con.execute(
            "select table_schema, table_name from information_schema.tables "
            f"where table_schema in ({marks})"
        ).fetchall()
        columns = {}
        for schema, name, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            f"where table_schema in ({marks}) order by table_schema, table_name, ordinal_position"
        ).fetchall():
            columns.setdefault((schema, name), []).append(column)
        pseudonyms = set()
        for schema, name in relations:
            if "matricule" in columns.get((schema, name), []):
                pseudonyms |= {
                    r[0] for r in con.execute(f"select matricule from {schema}.{name}").fetchall()
                }
    finally:
        con.close()
    from dagster_project.contracts.model import default_contracts

    return Restricted(
        names=frozenset(name for _, name in relations),
        column_lists=frozenset(tuple(c) for c in columns.values() if len(c) > 1),
        pseudonyms=frozenset(pseudonyms),
        personal_sources=frozenset(
            c.source_id for c in default_contracts().values() if c.sensitivity == "personal"
        ),
    )


def _pseudonyms_in_text(text: str, restricted: Restricted) -> set[str]:
    return set(PSEUDONYM_TOKEN.findall(text)) & restricted.pseudonyms


def scan_database(path: Path, restricted: Restricted, hr_ids: set[str], scan: Scan) -> None:
    """Every table of a published copy (or a Parquet file, through ``read_parquet``)."""
    con = duckdb.connect()
    try:
        con.execute(f"attach '{path}' as scanned (read_only)")
        columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for schema, name, column, data_type in con.execute(
            "select schema_name, table_name, column_name, data_type from duckdb_columns() "
            "where database_name = 'scanned' order by schema_name, table_name, column_index"
        ).fetchall():
            columns.setdefault((schema, name), []).append((column, data_type))
        for (schema, name), cols in sorted(columns.items()):
            scan.tables += 1
            scan_relation(
                con,
                f"scanned.{schema}.{name}",
                f"{path.name} — {schema}.{name}",
                cols,
                restricted,
                hr_ids,
                scan,
                schema=schema,
                name=name,
            )
    finally:
        con.close()


def scan_relation(
    con,
    source: str,
    where: str,
    cols: list[tuple[str, str]],
    restricted: Restricted,
    hr_ids: set[str],
    scan: Scan,
    *,
    schema: str = "",
    name: str = "",
) -> None:
    names = [c for c, _ in cols]
    if schema in RESTRICTED_SCHEMAS:
        scan.findings.append(f"{where} : schéma restreint")
    if name in restricted.names or name in restricted.personal_sources:
        counts = [c for c, t in cols if not c.startswith("_") and t in ("BIGINT", "INTEGER")]
        small = [
            con.execute(
                f'select count(*) filter (where "{c}" between 1 and 4), count("{c}") from {source}'
            ).fetchone()
            for c in counts
        ]
        scan.findings.append(
            f"{where} : relation d'une source RH restreinte"
            + "".join(f", {n} cellule(s) entre 1 et 4 sur {m}" for n, m in small)
        )
    if tuple(names) in restricted.column_lists:
        scan.findings.append(f"{where} : mêmes colonnes qu'une relation restreinte")
    personal = sorted(set(n.lower() for n in names) & set(PERSONAL_COLUMNS))
    if personal:
        scan.findings.append(f"{where} : colonne(s) personnelle(s) {personal}")
    if "indicator_id" in names:
        ids = ", ".join(f"'{i}'" for i in sorted(hr_ids))
        for column in (c for c in VALUE_COLUMNS if c in names):
            for indicator_id, value in con.execute(
                f'select indicator_id, "{column}" from {source} '
                f'where indicator_id in ({ids}) and "{column}" is not null'
            ).fetchall():
                scan.small(f"{where} — {indicator_id}.{column}", value)
    if (schema, name) == ("ingest", "deliveries"):
        sources = ", ".join(f"'{s}'" for s in sorted(restricted.personal_sources))
        for source_id, rows in con.execute(
            f"select source_id, row_count from {source} where source_id in ({sources})"
        ).fetchall():
            scan.small(f"{where} — lignes d'une livraison {source_id}", rows)
    if (schema, name) == ("ingest", "delivery_problems"):
        sources = ", ".join(f"'{s}'" for s in sorted(restricted.personal_sources))
        shown = con.execute(
            f"select count(*) from {source} where value is not null and delivery_id in "
            f"(select delivery_id from scanned.ingest.deliveries where source_id in ({sources}))"
        ).fetchone()[0]
        if shown:
            scan.findings.append(f"{where} : {shown} valeur(s) rejetée(s) d'une source RH")
    for column, data_type in cols:  # no pseudonym of the build in any text
        if data_type != "VARCHAR":
            continue
        for (token,) in con.execute(
            f"select distinct unnest(regexp_extract_all(\"{column}\", '[0-9a-f]{{16}}')) "
            f"from {source}"
        ).fetchall():
            if token in restricted.pseudonyms:
                scan.findings.append(f"{where}.{column} : pseudonyme d'agent {token}")
                break


def _number(text: str) -> float:
    cleaned = re.sub(r"[\s\u00a0\u202f]", "", text).replace(",", ".").replace("−", "-")
    return float(cleaned)


def scan_file(path: Path, root: Path, restricted: Restricted, hr_ids: set[str], scan: Scan):
    where = str(path.relative_to(root))
    scan.files += 1
    data = path.read_bytes()
    if path.suffix in (".html", ".json", ".csv", ".css", ".js", ".txt", ""):
        found = _pseudonyms_in_text(data.decode("utf-8", "replace"), restricted)
        if found:
            scan.findings.append(f"{where} : {len(found)} pseudonyme(s) d'agent")
    if path.suffix == ".parquet":
        con = duckdb.connect()
        try:
            source = f"read_parquet('{path}')"
            cols = [
                (d[0], d[1]) for d in con.execute(f"describe select * from {source}").fetchall()
            ]
            scan_relation(con, source, where, cols, restricted, hr_ids, scan)
        finally:
            con.close()
    elif path.suffix == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            first_line = handle.readline()
            handle.seek(0)
            # files for people are French Excel CSVs (« ; »), open data keeps « , »
            delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
            rows = list(csv.DictReader(handle, delimiter=delimiter))
        header = [h for h in (list(rows[0]) if rows else []) if h is not None]
        if set(h.lower() for h in header) & set(PERSONAL_COLUMNS):
            scan.findings.append(f"{where} : colonne personnelle")
        for row in rows:
            if row.get("indicator_id") in hr_ids and row.get("value"):
                scan.small(f"{where} — {row['indicator_id']}", _number(row["value"]))
            for column in set(header) & hr_ids:
                if row[column]:
                    scan.small(f"{where} — {column}", _number(row[column]))
    elif path.suffix == ".xlsx":
        import openpyxl

        book = openpyxl.load_workbook(path, read_only=True)
        for sheet in book.worksheets:
            header = None
            for row in sheet.iter_rows(values_only=True):
                if header is None and "Identifiant" in row:
                    header = list(row)
                    if set(str(h).lower() for h in header) & set(PERSONAL_COLUMNS):
                        scan.findings.append(f"{where} [{sheet.title}] : colonne personnelle")
                    continue
                if header is None or row[header.index("Identifiant")] not in hr_ids:
                    continue
                for column in XLSX_VALUE_HEADERS:
                    if column in header and isinstance(row[header.index(column)], int | float):
                        scan.small(
                            f"{where} [{sheet.title}] — {row[header.index('Identifiant')]}",
                            row[header.index(column)],
                        )
        book.close()
    elif path.suffix == ".html":
        text = data.decode("utf-8")
        for indicator_id, section in re.findall(
            r'<section class="indicateur" id="([a-z0-9_]+)">(.*?)</section>', text, re.S
        ):
            if indicator_id not in hr_ids:
                continue
            figures = re.findall(r'class="chiffre"><strong>([0-9][0-9\s\u202f\u00a0,]*)', section)
            figures += re.findall(
                r"\b20\d\d : ([0-9][0-9\s\u202f\u00a0,]*)", html.unescape(section)
            )
            for figure in figures:
                scan.small(f"{where} — {indicator_id}", _number(figure.strip()))
    elif path.suffix == ".json" and path.parent.name == "validation":
        result = json.loads(data)
        if path.stem.startswith("raw_rh_"):  # personal suites: counts only, no example value
            for item in result.get("results", []):
                examples = (item.get("result") or {}).get("partial_unexpected_list")
                if examples:
                    scan.findings.append(f"{where} : valeurs d'exemple d'une source RH")


def scan_everything(root: Path, build: Path, release: Path | None) -> Scan:
    """The published copy ``root/warehouse.duckdb``, ``root/exports/marts`` and a release
    folder, against what the build ``build`` restricts."""
    restricted = restricted_of(build)
    hr_ids = hr_count_indicators()
    scan = Scan()
    scan_database(root / "warehouse.duckdb", restricted, hr_ids, scan)
    folders = [root / "exports" / "marts"] + ([release] if release else [])
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            scan_file(path, root, restricted, hr_ids, scan)
    return scan


def test_nothing_an_analyst_can_read_holds_an_hr_cell_under_5(demo_warehouse, tmp_path):
    """« No HR cell under 5 anywhere an analyst can read »: the published copy (every
    table), its Parquet exports and a release folder of the demo campaign."""
    assert demo_warehouse.returncode == 0, demo_warehouse.stdout + demo_warehouse.stderr
    demo = demo_warehouse.copy(tmp_path / "campaign")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPI_") or "PSEUDONYM" in k}
    env["DAGSTER_HOME"] = str(demo.dagster_home)
    frozen = subprocess.run(
        [str(Path(sys.executable).parent / "kpi"), "freeze", "--year", "2025"]
        + ["--warehouse", str(demo.warehouse), "--releases", str(demo.releases)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    build = demo.root / ".build" / "warehouse.duckdb"
    restricted = restricted_of(build)
    # the build does hold what must not be read: per-agent rows, small HR counts
    assert len(restricted.pseudonyms) > 1000 and "rh_arretes" in restricted.names
    con = duckdb.connect(str(build), read_only=True)
    small = con.execute(
        "select count(*) from raw_restricted.rh_arretes where nombre between 1 and 4"
    ).fetchone()[0]
    con.close()
    assert small > 0
    scan = scan_everything(demo.root, build, demo.releases / "RA-2025-v1")
    print(
        f"scan : {scan.tables} tables, {scan.files} fichiers, {scan.hr_cells} cellules RH, "
        f"{len(scan.findings)} écart(s)"
    )
    assert scan.findings == []
    assert scan.tables > 50 and scan.files > 50 and scan.hr_cells > 50
