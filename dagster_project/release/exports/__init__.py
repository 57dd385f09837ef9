"""Report-ready exports and audit evidence written into a release folder.

``write_release_exports(con, release_id, year, folder)`` is called by the freeze on the
release's staging folder and writes, deterministically (same warehouse, same bytes):

- ``rapport_<release_id>.xlsx``: the workbook for people (``workbook.py``);
- ``valeurs_par_commune.csv``: one row per commune, one column per indicator broken down by
  commune, for people: it opens with a double-click in French Excel (UTF-8 with BOM, « ; »,
  decimal comma: ``lib.csv_safety.write_excel_csv``); the open data are the freeze's
  ``values.csv`` and ``values.parquet``, in the international CSV dialect;
- ``rapport/``: the static French web report with its SVG charts (``html_report.py``);
- ``validation/`` and ``data_docs/``: the expectation suites' results and the Great
  Expectations Data Docs, readable offline (``data_docs.py``, ``vendor.py``);
- ``controles.html``: the same results in French for auditors, each failed expectation with
  the indicator, commune and value of its rows (``checks/``).

See docs/exports.md.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from dagster_project.lib.csv_safety import write_excel_csv
from dagster_project.lib.progress import progress
from dagster_project.release.exports.common import (
    ReleaseData,
    load_release,
    release_timestamp,
    table_exists,
)
from dagster_project.release.exports.vendor import VendorMissing

__all__ = [
    "CHECKS_PAGE",
    "COMMUNE_CSV",
    "VendorMissing",
    "load_release",
    "workbook_name",
    "write_release_exports",
]

COMMUNE_CSV = "valeurs_par_commune.csv"
CHECKS_PAGE = "controles.html"  # checks.page.PAGE (not imported here: it loads pandas)


def workbook_name(release_id: str) -> str:
    return f"rapport_{release_id}.xlsx"


def write_commune_csv(con: duckdb.DuckDBPyConnection, data: ReleaseData, path: Path) -> Path | None:
    """Wide table: code_insee, commune, then one column per indicator (catalogue order), in
    French Excel's dialect (text neutralised, numbers with a decimal comma: csv_safety)."""
    rows = data.communes()
    if not rows:
        return None
    indicators: list[str] = []
    values: dict[tuple[str, str], float] = {}
    names: dict[str, str] = {}
    for r in rows:
        if r.indicator_id not in indicators:
            indicators.append(r.indicator_id)
        values[(r.code_insee, r.indicator_id)] = r.value
        names[r.code_insee] = r.commune_name
    if table_exists(con, "marts.dim_communes"):
        for code, name in con.execute(
            "select code_insee, commune_name from marts.dim_communes"
        ).fetchall():
            names.setdefault(code, name)
    return write_excel_csv(
        path,
        ["code_insee", "commune", *indicators],
        (
            [code, names[code], *(values.get((code, i)) for i in indicators)]
            for code in sorted(names)
        ),
    )


def write_release_exports(
    con: duckdb.DuckDBPyConnection,
    release_id: str,
    year: int,
    folder: Path,
    *,
    data_docs: bool = True,
    suites: list[str] | None = None,
) -> list[Path]:
    """Write every export of the release into ``folder``; returns the files written.

    ``data_docs=False`` skips the Great Expectations part (``validation/``, ``data_docs/``);
    ``suites`` restricts it to some suites (default: all of them). Raises ``VendorMissing``
    when the npm packages of the Data Docs are not installed (``make setup``).
    """
    from dagster_project.release.exports.html_report import write_html_report
    from dagster_project.release.exports.workbook import write_workbook

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fixed_time = release_timestamp(con, year)
    docs = None
    checks = None  # the suites' results, for the Data Docs and the French checks page
    if data_docs:
        # The Data Docs (GX's import and the site's rendering) are written by a child process
        # while this one writes the workbook and the report: two cores, about half the time.
        from dagster_project.release.exports.data_docs import (
            DataDocsProcess,
            check_installed,
            gather_data_docs,
        )

        modules = check_installed()  # before anything: say early what is missing
        progress(f"{release_id} : Data Docs (Great Expectations) lancées à part")
        checks = gather_data_docs(con, suites)
        docs = DataDocsProcess(checks, release_id, folder, fixed_time, modules)
    try:
        data = load_release(con, release_id, year)
        progress(f"{release_id} : classeur Excel {workbook_name(release_id)}")
        written: list[Path] = [write_workbook(data, folder / workbook_name(release_id), fixed_time)]
        commune_csv = write_commune_csv(con, data, folder / COMMUNE_CSV)
        if commune_csv:
            written.append(commune_csv)
        links = [
            (workbook_name(release_id), "Classeur du rapport (Excel)"),
            ("values.csv", "Toutes les valeurs (CSV, données ouvertes)"),
            ("values.parquet", "Toutes les valeurs (Parquet, données ouvertes)"),
        ]
        if commune_csv:
            links.append(
                (COMMUNE_CSV, "Valeurs par commune (CSV pour Excel, une colonne par indicateur)")
            )
        if data_docs:
            links.append((CHECKS_PAGE, "Contrôles de la qualité, en français (pour les auditeurs)"))
            links.append(("data_docs/index.html", "Preuves de contrôle de la qualité (Data Docs)"))
            links.append(("validation/index.json", "Résultats des contrôles (JSON)"))
        links.append(("manifest.json", "Manifeste de la publication (empreintes SHA-256)"))
        progress(f"{release_id} : rapport HTML (rapport/)")
        written += write_html_report(data, folder, links)
        if checks is not None:
            from dagster_project.release.exports.checks.page import write_checks_page

            progress(f"{release_id} : page des contrôles en français ({CHECKS_PAGE})")
            written.append(write_checks_page(con, checks, release_id, year, folder, fixed_time))
    except BaseException:
        if docs is not None:
            docs.kill()
        raise
    if docs is not None:
        progress(f"{release_id} : attente des Data Docs (validation/, data_docs/)")
        written += docs.wait()
    return sorted(set(written))
