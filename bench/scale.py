"""Scale generator of the benchmark: campaigns at scale factors SF1, SF10, SF100.

* SF1 is this agglomeration (the 100 real member communes) with realistic volumes:
  the demo campaign of ``dagster_project.demo`` with its registers brought to the sizes of
  a real year (about 40 000 quality analyses instead of 3 766, about 2 450 prevention
  actions instead of 245; 1 106 agents, 2 339 housing files, 6 000 collection rows are
  already realistic).
* SFn (n > 1) is n EPCIs of the same shape. Each EPCI gets 100 synthetic communes with
  their own codes (``9EEII``: EPCI ``EE``, commune ``II``) and names (the real name
  followed by `` E<EE>``), in a generated referential used only for benchmarks; every
  register is repeated per EPCI with its keys (sample ids, file ids, matricules, UDI and
  recycling-centre names) made unique. Agglomeration-wide figures (declared indicators,
  individual orders) are delivered once, as one steering department would.

Output, outside the repository (``/tmp/kpi_bench/sf<n>`` by default)::

    sources/<year>/<department>/<source_id>_<year>.xlsx   the deliveries
    dbt/                      a copy of the dbt project whose seeds/communes.csv is the
                              referential of this scale (run the project with KPI_DBT_DIR)
    manifest.json             scale factor, rows and bytes per file, generation time

Workbooks are written with xlsxwriter in ``constant_memory`` mode (rows streamed, inline
strings). A data sheet longer than Excel's limit (1 048 576 rows: ``eau_qualite`` at
SF100, about 4 million analyses) cannot be an .xlsx sheet: that register is delivered as
a ``;``-separated UTF-8 .csv, which the collection kit accepts.

    python bench/scale.py --sf 10 [--out /tmp/kpi_bench/sf10] [--years 2025] [--jobs 2]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import re
import shutil
import sys
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The real referential and catalogue: the demo builders are written for them, whatever
# KPI_DBT_DIR says in this process.
REAL_DBT_DIR = ROOT / "dbt"
REAL_COMMUNES_CSV = REAL_DBT_DIR / "seeds" / "communes.csv"
REAL_CATALOGUE_CSV = REAL_DBT_DIR / "seeds" / "indicator_catalogue.csv"

DEFAULT_OUT = Path("/tmp/kpi_bench")
EXCEL_MAX_DATA_ROWS = 1_048_576 - 12  # sheet limit, less the header and a few title rows
MAX_EPCIS = 100  # codes 9EEII

# Registers whose demo volume is below a real year: rows repeated within one EPCI
# (new keys), on average this many times.
WITHIN_EPCI_COPIES = {"eau_qualite": 10.6, "dechets_prevention": 10}
# Columns holding identifiers that must stay unique across copies and EPCIs.
ID_COLUMNS = {
    "eau_qualite": "id_prelevement",
    "dechets_prevention": "id_action",
    "logements_sociaux": "id_operation",
    "amelioration_habitat": "id_dossier",
    "rh_effectifs": "matricule",
    "rh_formation": "matricule",
}
# Names of things each EPCI has its own of (EPCI 0 keeps the demo's: UDI-BETHUNOIS...).
NAME_COLUMNS = {"udi": "-E{e:02d}", "nom_udi": " E{e:02d}", "decheterie": " E{e:02d}"}
# Agglomeration-wide registers: delivered once; counts multiplied by the number of EPCIs.
ONCE_SUMMED = {"rh_arretes": ("nombre",)}


# ------------------------------------------------------------------------------ referential


@dataclass(frozen=True)
class Scale:
    sf: int

    @property
    def synthetic(self) -> bool:
        return self.sf > 1

    @property
    def epcis(self) -> range:
        return range(self.sf)


def real_communes() -> list[dict[str, str]]:
    with REAL_COMMUNES_CSV.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return sorted(rows, key=lambda r: r["code_insee"])


def synthetic_code(index: int, epci: int) -> str:
    return f"9{epci:02d}{index:02d}"


def synthetic_name(name: str, epci: int) -> str:
    return f"{name} E{epci:02d}"


def referential(sf: int) -> list[dict[str, str]]:
    """Rows of seeds/communes.csv at this scale (SF1: the real 100 communes)."""
    base = real_communes()
    if sf == 1:
        return base
    if not 1 <= sf <= MAX_EPCIS:
        raise ValueError(f"scale factor between 1 and {MAX_EPCIS}")
    out = []
    for epci in range(sf):
        for index, row in enumerate(base):
            code = synthetic_code(index, epci)
            out.append(
                {
                    **row,
                    "code_insee": code,
                    "nom": synthetic_name(row["nom"], epci),
                    "siren": f"2{code}000",
                }
            )
    return out


def write_referential(rows: list[dict[str, str]], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def copy_dbt_project(sf: int, target: Path) -> list[str]:
    """A copy of dbt/ (without target/ and logs/) whose communes seed is this scale's.

    dbt tests that bound a count of communes by the 100 member communes (``max_value: 100``
    on a column named ``*_communes``) are raised to the referential's size in the copy;
    returns the patched places."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(
        REAL_DBT_DIR,
        target,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", ".user.yml"),
    )
    write_referential(referential(sf), target / "seeds" / "communes.csv")
    patched = []
    if sf > 1:
        for path in sorted((target / "models").rglob("*.yml")):
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
            column, changed = "", False
            for i, line in enumerate(lines):
                if m := re.match(r"\s*- name: (\w+)", line):
                    column = m[1]
                if column.endswith("_communes") and re.match(r"\s*max_value: 100\s*$", line):
                    lines[i] = line.replace("100", str(100 * sf))
                    patched.append(f"{path.relative_to(target)}: {column} <= {100 * sf}")
                    changed = True
            if changed:
                path.write_text("".join(lines), encoding="utf-8")
    return patched


# ------------------------------------------------------------------------------ demo books


@cache
def _demo_books(year: int, root: str) -> dict[str, Any]:
    """The demo workbooks of one year, in memory: source file stem -> Book."""
    from dagster_project.demo import generator
    from dagster_project.demo._common import load_catalogue, load_communes
    from dagster_project.demo.context import Ctx

    ctx = Ctx(
        root=Path(root),
        year=year,
        communes=load_communes(REAL_COMMUNES_CSV),
        catalogue=load_catalogue(REAL_CATALOGUE_CSV),
    )
    books = {}
    for build in generator._BUILDERS:
        for book in build(ctx):
            books[str(book.path.relative_to(root))] = book
    return books


def source_id_of(file_name: str) -> str:
    return file_name.rsplit("_", 1)[0]


def _copies(source_id: str, key: str) -> int:
    """How many times a row (or a sample: all rows of one key) is repeated in one EPCI."""
    mean = WITHIN_EPCI_COPIES.get(source_id)
    if mean is None:
        return 1
    low = int(mean)
    frac = mean - low
    # deterministic: the same key always gets the same number of copies
    return low + (1 if (zlib.crc32(key.encode()) % 1000) < frac * 1000 else 0)


def scaled_rows(source_id: str, sheet, scale: Scale) -> Iterator[list[Any]]:
    """Rows of one data sheet at this scale (without its total row)."""
    columns = sheet.columns
    code_map = {r["code_insee"]: i for i, r in enumerate(real_communes())}
    idx = {c: i for i, c in enumerate(columns)}
    id_col = idx.get(ID_COLUMNS.get(source_id, ""))
    commune_code = idx.get("code_insee")
    commune_name = idx.get("commune")
    names = {idx[c]: fmt for c, fmt in NAME_COLUMNS.items() if c in idx}

    if source_id in ONCE_SUMMED:
        summed = [idx[c] for c in ONCE_SUMMED[source_id]]
        for row in sheet.rows:
            row = list(row)
            for i in summed:
                row[i] = row[i] * scale.sf
            yield row
        return

    for epci in scale.epcis:
        for row in sheet.rows:
            synthetic_commune = scale.synthetic and (
                (commune_code is not None and row[commune_code] not in (None, ""))
                or (commune_name is not None and row[commune_name] not in (None, ""))
            )
            has_commune_column = commune_code is not None or commune_name is not None
            if epci > 0 and has_commune_column and not synthetic_commune and id_col is None:
                # agglomeration-wide row without its own key (declared figure): once
                continue
            out = list(row)
            if scale.synthetic:
                if commune_code is not None and out[commune_code] not in (None, ""):
                    out[commune_code] = synthetic_code(code_map[str(out[commune_code])], epci)
                if commune_name is not None and out[commune_name] not in (None, ""):
                    out[commune_name] = f"{out[commune_name]} E{epci:02d}"
                if epci > 0:
                    for i, fmt in names.items():
                        if out[i] not in (None, ""):
                            out[i] = f"{out[i]}{fmt.format(e=epci)}"
            if id_col is None:
                yield out
                continue
            key = str(out[id_col])
            copies = _copies(source_id, key)
            for copy in range(copies):
                new = list(out) if copy else out
                suffix = f"-E{epci:02d}" if scale.synthetic else ""
                if copies > 1:
                    suffix += f"-{copy:02d}"
                new[id_col] = key + suffix
                yield new


def estimated_rows(source_id: str, sheet, scale: Scale) -> int:
    """Rows of the data sheet at this scale, without generating them (for the format)."""
    epcis = 1 if source_id in ONCE_SUMMED or not scale.synthetic else scale.sf
    return round(len(sheet.rows) * epcis * WITHIN_EPCI_COPIES.get(source_id, 1))


def _scaled_totals(sheet, scale: Scale) -> dict[str, float]:
    factor = scale.sf if scale.synthetic else 1
    return {k: round(v * factor, 2) for k, v in sheet.total_values.items()}


# ------------------------------------------------------------------------------ writers


def _write_xlsx(book, source_id: str, scale: Scale, path: Path) -> int:
    import xlsxwriter

    from dagster_project.demo._xlsx import FIXED_CREATED, _write_cell

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    wb.set_properties({"created": FIXED_CREATED, "title": book.title, "company": "CABBALR"})
    bold = wb.add_format({"bold": True})
    head_fmt = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1})
    if book.notice:
        ws = wb.add_worksheet("Notice")
        for i, line in enumerate(book.notice):
            ws.write_string(i, 0, line)
    rows_written = 0
    for sheet in book.sheets:
        ws = wb.add_worksheet(sheet.name)
        date_fmt = wb.add_format({"num_format": sheet.date_format})
        month_fmt = wb.add_format({"num_format": sheet.month_format})
        r = 0
        for title in sheet.titles:
            if title:
                ws.write_string(r, 0, title, bold)
            r += 1
        for c, col in enumerate(sheet.columns):
            ws.write_string(r, c, sheet.headers.get(col, col), head_fmt)
        r += 1
        for row in scaled_rows(source_id, sheet, scale):
            for c, value in enumerate(row):
                _write_cell(ws, r, c, value, date_fmt, month_fmt)
            r += 1
            rows_written += 1
        if sheet.total_label:
            ws.write_string(r, 0, sheet.total_label, bold)
            totals = _scaled_totals(sheet, scale)
            for col in sheet.total_columns:
                ws.write_number(r, sheet.columns.index(col), totals[col], bold)
    wb.close()
    return rows_written


def _csv_cell(value: Any) -> str:
    from dagster_project.demo._xlsx import Month

    if value is None:
        return ""
    if isinstance(value, Month):
        return f"{value.date.month:02d}/{value.date.year}"
    if isinstance(value, dt.date):
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    if isinstance(value, bool):
        return "oui" if value else "non"
    return str(value)


def _write_csv(book, source_id: str, scale: Scale, path: Path) -> int:
    (sheet,) = book.sheets
    rows_written = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerow([sheet.headers.get(c, c) for c in sheet.columns])
        for row in scaled_rows(source_id, sheet, scale):
            writer.writerow([_csv_cell(v) for v in row])
            rows_written += 1
        if sheet.total_label:
            totals = _scaled_totals(sheet, scale)
            writer.writerow(
                [
                    sheet.total_label if i == 0 else _csv_cell(totals.get(c))
                    for i, c in enumerate(sheet.columns)
                ]
            )
    return rows_written


def _write_one(job: tuple[int, str, str, int]) -> dict[str, Any]:
    year, relative, root, sf = job
    scale = Scale(sf)
    book = _demo_books(year, root)[relative]
    source_id = source_id_of(book.path.stem)
    data_sheet = book.sheets[0]
    too_long = estimated_rows(source_id, data_sheet, scale) > EXCEL_MAX_DATA_ROWS
    path = book.path.with_suffix(".csv") if too_long else book.path
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if too_long:
        rows = _write_csv(book, source_id, scale, path)
    else:
        rows = _write_xlsx(book, source_id, scale, path)
    return {
        "path": str(path.relative_to(root)),
        "source_id": source_id,
        "year": year,
        "rows": rows,
        "bytes": path.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
    }


# ------------------------------------------------------------------------------ entry point


def generate(
    sf: int,
    out: Path | None = None,
    years: tuple[int, ...] = (2025,),
    jobs: int = 2,
    only: set[str] | None = None,
) -> dict[str, Any]:
    """Write the campaign of scale factor ``sf`` under ``out``; returns the manifest.
    ``only`` restricts the sources written (tests)."""
    if sf > MAX_EPCIS or sf < 1:
        raise ValueError(f"scale factor between 1 and {MAX_EPCIS}")
    out = Path(out or DEFAULT_OUT / f"sf{sf}")
    started = time.perf_counter()
    sources = out / "sources"
    if sources.exists():
        shutil.rmtree(sources)
    sources.mkdir(parents=True)
    patched = copy_dbt_project(sf, out / "dbt")
    job_list = []
    for year in years:
        for relative in _demo_books(year, str(sources)):
            if only is None or source_id_of(Path(relative).stem) in only:
                job_list.append((year, relative, str(sources), sf))
    # biggest first, so the two workers finish together
    weight = {"eau_qualite": 0, "dechets_collecte": 1, "amelioration_habitat": 2}
    job_list.sort(key=lambda j: weight.get(source_id_of(Path(j[1]).stem), 9))
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            files = list(pool.map(_write_one, job_list))
    else:
        files = [_write_one(j) for j in job_list]
    files.sort(key=lambda f: f["path"])
    # stable reception order: the reference source (eau_udi) first, like a real campaign
    base = dt.datetime(2025, 11, 1).timestamp()
    for i, f in enumerate(sorted(files, key=lambda f: (f["source_id"] != "eau_udi", f["path"]))):
        os.utime(sources / f["path"], (base + i, base + i))
    manifest = {
        "sf": sf,
        "years": list(years),
        "communes": len(referential(sf)),
        "epcis": sf,
        "files": files,
        "rows": sum(f["rows"] for f in files),
        "bytes": sum(f["bytes"] for f in files),
        "generation_seconds": round(time.perf_counter() - started, 1),
        "dbt_tests_patched": patched,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Génère une campagne de benchmark à l'échelle SF.")
    parser.add_argument("--sf", type=int, required=True, help="facteur d'échelle (1 à 100)")
    parser.add_argument("--out", type=Path, help="dossier de sortie (défaut /tmp/kpi_bench/sf<n>)")
    parser.add_argument("--years", type=int, nargs="+", default=[2025])
    parser.add_argument("--jobs", type=int, default=2, help="processus d'écriture")
    args = parser.parse_args(argv)
    manifest = generate(args.sf, args.out, tuple(args.years), args.jobs)
    print(
        f"SF{args.sf} : {len(manifest['files'])} fichiers, {manifest['rows']} lignes, "
        f"{manifest['bytes'] / 2**20:.1f} Mio, {manifest['communes']} communes, "
        f"{manifest['generation_seconds']} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
