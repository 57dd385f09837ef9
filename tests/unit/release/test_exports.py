"""Report-ready exports of a release: workbook, HTML report, open data, Data Docs.

The release is ``support.exports.write_release``'s: a small warehouse built by hand (no
pipeline), a few real catalogue indicators over 2023-2025, three communes, a frozen release
whose values differ from the marts for one indicator, one review, and HR rows (pseudonyms and
one clear matricule) so that the HR suite fails and its evidence can be searched for personal
values. The exports are written once per module (GX costs a few seconds to import); the
browser test is tests/integration/test_exports.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import openpyxl
import pytest
from support.exports import (
    BREAKDOWN,
    CLEAR_MATRICULE,
    FROZEN,
    NO_HISTORY,
    PSEUDONYMS,
    RELEASE,
    SUITES,
    YEAR,
    write_release,
)

from dagster_project.release.exports import COMMUNE_CSV, VendorMissing, write_release_exports
from dagster_project.release.exports.common import format_number, format_value, unit_fr
from dagster_project.release.exports.data_docs import external_references
from dagster_project.release.exports.html_report import bar_chart
from dagster_project.release.exports.vendor import CDN_FILES
from dagster_project.release.exports.workbook import COMMUNE_HEADERS, HEADERS

CDN_HOSTS = ("cdn.jsdelivr", "unpkg.com", "cdnjs", "bootstrapcdn", "code.jquery", "amazonaws")

# --------------------------------------------------------------------------------------------
# The release
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release(tmp_path_factory, contracts):
    return write_release(tmp_path_factory.mktemp("exports"), contracts)


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# --------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------


def test_french_numbers_and_units():
    assert format_number(1234567.891) == "1\u202f234\u202f567,89"
    assert format_number(-15.0) == "−15"
    assert format_number(0.5) == "0,5"
    assert format_value(12.5, "pct") == "12,5\u202f%"
    assert format_value(1200, "eur") == "1\u202f200\u202f€"
    assert format_value(38, "communes") == "38 communes"
    assert unit_fr("kg_per_inhabitant") == "kg par habitant"
    assert unit_fr("dwellings") == "logements"


def test_bar_chart_handles_negative_values():
    svg = bar_chart("x", "Réduction", "pct", [(2023, -10.0), (2024, 5.0), (2025, -15.0)])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 3 and "http" not in svg
    heights = [float(h) for h in re.findall(r'height="([0-9.]+)" fill', svg)]
    assert all(h > 0 for h in heights)


# --------------------------------------------------------------------------------------------
# Workbook
# --------------------------------------------------------------------------------------------


def test_workbook_has_a_sheet_per_priority_with_french_headers(release):
    path = release["folder"] / f"rapport_{RELEASE}.xlsx"
    assert path in release["files"]
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [
        "Présentation",
        "Priorité 1",
        "Priorité 2",
        "Priorité 3",
        "Priorité 4",
        "Appui stratégique et moyens",
        "Territoire",
        "Détail par commune",
        "Évolutions",
        "Communes en tête",
    ]
    expected = [h for h, _ in HEADERS]
    for header in (
        "Objectif",
        "Indicateur",
        "Valeur",
        "Unité",
        "Au",
        "Année précédente",
        "Évolution",
        "Évolution %",
        "Statut de revue",
        "Commentaire",
    ):
        assert header in expected
    catalogue = release["catalogue"]
    seen = set()
    for title in book.sheetnames[1:7]:
        sheet = book[title]
        assert [c.value for c in sheet[1]] == expected
        assert sheet.freeze_panes == "C2"
        assert sheet.auto_filter.ref.startswith("A1:L")
        assert sheet[1][0].font.b
        for row in sheet.iter_rows(min_row=2, values_only=True):
            seen.add(row[11])
    assert seen == set(release["chosen"])  # every agglomeration value, once
    communes = book["Détail par commune"]
    assert [c.value for c in communes[1]] == [h for h, _ in COMMUNE_HEADERS]
    assert communes.max_row == 1 + len(release["communes"])
    # The breakdown indicator's row: value, unit in French, formats, review, comment.
    order = ["P1", "P2", "P3", "P4", "APPUI", "TERRITOIRE"]
    sheet = book[book.sheetnames[1 + order.index(catalogue[BREAKDOWN]["priority"])]]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[11].value == BREAKDOWN)
    value = release["values"][(BREAKDOWN, YEAR, None)]
    previous = release["values"][(BREAKDOWN, YEAR - 1, None)]
    assert row[2].value == pytest.approx(value) and row[2].number_format.startswith("#,##0")
    assert row[3].value == unit_fr(catalogue[BREAKDOWN]["unit"])
    assert row[4].value == dt.datetime(YEAR, 12, 31) and row[4].number_format == "dd/mm/yyyy"
    assert row[5].value == pytest.approx(previous)
    assert row[6].value == pytest.approx(value - previous)
    assert row[7].value == pytest.approx((value - previous) / previous)
    assert "%" in row[7].number_format
    assert row[9].value == "sans anomalie apparente"  # the latest review wins
    assert row[10].value == "Chiffre provisoire — Revue : Conforme au bilan"
    others = [
        r[9]
        for title in book.sheetnames[1:7]
        for r in book[title].iter_rows(min_row=2, values_only=True)
        if r[11] != BREAKDOWN
    ]
    assert set(others) == {"non revu"}


def test_workbook_uses_the_frozen_release_values(release):
    book = openpyxl.load_workbook(release["folder"] / f"rapport_{RELEASE}.xlsx")
    values = {
        row[11]: row[2]
        for title in book.sheetnames[1:7]
        for row in book[title].iter_rows(min_row=2, values_only=True)
    }
    assert values[FROZEN] == 4242
    assert values[NO_HISTORY] == -7


def test_workbook_properties_are_fixed(release):
    book = openpyxl.load_workbook(release["folder"] / f"rapport_{RELEASE}.xlsx")
    # The time of the year's last delivery, never the wall clock.
    assert book.properties.created == dt.datetime(2026, 1, 15, 9, 30)
    assert RELEASE in book.properties.title


def test_commune_csv_is_wide(release):
    path = release["folder"] / COMMUNE_CSV
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")  # French Excel: BOM, « ; »
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0] == ["code_insee", "commune", BREAKDOWN]
    assert [r[0] for r in rows[1:]] == sorted(c for c, _ in release["communes"])


# --------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------


def test_html_report_is_offline_with_a_chart_per_indicator_with_history(release):
    folder = release["folder"] / "rapport"
    pages = sorted(folder.glob("*.html"))
    names = {p.name for p in pages}
    assert {
        "index.html",
        "priorite-1.html",
        "appui.html",
        "territoire.html",
        "communes.html",
    } <= names
    charted = set()
    for page in [*pages, folder / "style.css"]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"https?:|//[a-z]", text, re.IGNORECASE), page.name
        assert "<script" not in text
        charted |= set(re.findall(r'<svg class="graphique" data-indicateur="([^"]+)"', text))
    with_history = {i for i in release["chosen"] if i != NO_HISTORY}
    assert charted == with_history
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in index and "../data_docs/index.html" in index
    for href in re.findall(r'href="([^"#]+)"', index):
        if not href.startswith("../"):
            assert (folder / href).exists(), href
    page = next(p for p in pages if f'id="{BREAKDOWN}"' in p.read_text(encoding="utf-8"))
    text = page.read_text(encoding="utf-8")
    assert "Détail par commune (3 communes)" in text
    for _, name in release["communes"]:
        assert name in text


# --------------------------------------------------------------------------------------------
# Evidence: validation results and Data Docs
# --------------------------------------------------------------------------------------------


def test_data_docs_load_nothing_from_the_network(release):
    site = release["folder"] / "data_docs"
    assert (site / "index.html").exists()
    assert external_references(site) == []
    pages = sorted(site.rglob("*.html"))
    assert any("validations" in p.parts for p in pages)
    for page in pages:
        html = page.read_text(encoding="utf-8")
        for host in CDN_HOSTS:
            assert host not in html, (page, host)
        assert "integrity=" not in html
        for ref in re.findall(r'(?:src|href)="([^"#?]+)', html):
            if not ref.startswith(("mailto:", "javascript:")):
                assert (page.parent / ref).resolve().is_file(), (page, ref)
    vendor = site / "static" / "vendor"
    for package, path in set(CDN_FILES.values()):
        assert (vendor / package / path).is_file(), (package, path)
    assert (vendor / "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()
    assert (vendor / "bootstrap" / "LICENSE").is_file()
    assert not (vendor / "vega" / "build" / "vega.js").exists()  # only the needed files


def test_validation_results_are_written_with_an_index(release):
    results = release["folder"] / "validation"
    index = json.loads((results / "index.json").read_text(encoding="utf-8"))
    assert [s["suite"] for s in index["suites"]] == SUITES
    by_name = {s["suite"]: s for s in index["suites"]}
    assert by_name["raw_rh_effectifs"]["success"] is False  # the clear matricule
    assert by_name["raw_rh_effectifs"]["personal"] is True
    for name in SUITES:
        assert (results / f"{name}.json").is_file()


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def test_hr_evidence_shows_counts_only(release):
    result = json.loads(
        (release["folder"] / "validation" / "raw_rh_effectifs.json").read_text(encoding="utf-8")
    )
    allowed = {
        "element_count",
        "unexpected_count",
        "unexpected_percent",
        "unexpected_percent_total",
        "unexpected_percent_nonmissing",
        "missing_count",
        "missing_percent",
        "observed_value",
    }
    failed = [r for r in result["results"] if not r["success"]]
    assert failed
    for item in result["results"]:
        assert set(item["result"]) <= allowed
        if "observed_value" in item["result"]:
            assert item["expectation_config"]["type"].startswith(
                ("expect_table_", "expect_column_to_exist")
            )
    for text in _strings(result):
        assert not re.search(r"\b[0-9a-f]{16}\b", text), text
    evidence = [
        *(release["folder"] / "validation").rglob("*"),
        *(release["folder"] / "data_docs").rglob("*.html"),
    ]
    for path in evidence:
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for secret in (CLEAR_MATRICULE, *PSEUDONYMS):
                assert secret not in text, (path, secret)


def test_exports_are_byte_identical_for_the_same_warehouse(release, tmp_path):
    folder = tmp_path / RELEASE
    with duckdb.connect(str(release["warehouse"]), read_only=True) as con:
        write_release_exports(con, RELEASE, YEAR, folder, suites=SUITES)
    assert _tree_digest(folder) == _tree_digest(release["folder"])


def test_exports_without_reviews_nor_release_rows(release, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(release["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("drop schema review cascade")
        con.execute("delete from release.release_values")
        files = write_release_exports(con, RELEASE, YEAR, tmp_path / "out", data_docs=False)
    assert not (tmp_path / "out" / "data_docs").exists()
    book = openpyxl.load_workbook(tmp_path / "out" / f"rapport_{RELEASE}.xlsx")
    rows = [r for t in book.sheetnames[1:7] for r in book[t].iter_rows(min_row=2, values_only=True)]
    assert {r[9] for r in rows} == {None}  # no review table: the column stays empty
    frozen = next(r for r in rows if r[11] == FROZEN)
    assert frozen[2] == pytest.approx(release["values"][(FROZEN, YEAR, None)])  # marts value
    assert all(not p.is_relative_to(tmp_path / "out" / "validation") for p in files)


def test_review_status_frozen_with_the_release_wins(release, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(release["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table release.release_values add column review_status varchar")
        con.execute("alter table release.release_values add column review_comment varchar")
        con.execute(
            "update release.release_values set review_status = 'anomalie', "
            "review_comment = 'Doublon' where indicator_id = ? and code_insee is null",
            [FROZEN],
        )
        write_release_exports(con, RELEASE, YEAR, tmp_path / "out", data_docs=False)
    book = openpyxl.load_workbook(tmp_path / "out" / f"rapport_{RELEASE}.xlsx")
    rows = {
        r[11]: r
        for t in book.sheetnames[1:7]
        for r in book[t].iter_rows(min_row=2, values_only=True)
    }
    assert rows[FROZEN][9] == "anomalie" and rows[FROZEN][10] == "Revue : Doublon"
    assert rows[BREAKDOWN][9] == "non revu"  # review.value_reviews is not read: frozen wins


def _with_recorded_checks(release, tmp_path, drop: str | None = None) -> Path:
    """A copy of the warehouse whose checks ran and were recorded, as in `kpi run`."""
    from dagster_project.quality import record_outcomes, run_suite

    warehouse = tmp_path / "checked.duckdb"
    shutil.copyfile(release["warehouse"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        if drop:
            con.execute(f"drop table {drop}")
        record_outcomes(con, "run-1", [run_suite(con, name) for name in SUITES])
    return warehouse


def test_evidence_comes_from_the_recorded_checks_with_the_same_files(
    release, tmp_path, monkeypatch
):
    """The freeze renders the checks' recorded results (audit.check_evidence) without
    building a dataset nor validating again: same validation/*.json and Data Docs, byte for
    byte, as validating at the freeze."""
    from great_expectations.core.batch_definition import BatchDefinition

    warehouse = _with_recorded_checks(release, tmp_path)
    folder = tmp_path / RELEASE

    def forbidden(*args, **kwargs):
        raise AssertionError("jeu de données reconstruit au gel")

    monkeypatch.setattr(BatchDefinition, "get_batch", forbidden)
    monkeypatch.setattr("dagster_project.quality.runner.build_dataset", forbidden)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        write_release_exports(con, RELEASE, YEAR, folder, suites=SUITES)
    index = "validation/index.json"
    recorded, validated = _tree_digest(folder), _tree_digest(release["folder"])
    assert recorded.pop(index) != validated.pop(index)
    assert recorded == validated
    now = json.loads((folder / index).read_text(encoding="utf-8"))["suites"]
    before = json.loads((release["folder"] / index).read_text(encoding="utf-8"))["suites"]
    assert {s["validated_in"] for s in now} == {"run"}
    assert [s["passed_in_run"] for s in now] == [s["success"] for s in now]
    keep = ("suite", "success", "rows", "statistics", "personal", "blocking")
    assert [{k: s.get(k) for k in keep} for s in now] == [
        {k: s.get(k) for k in keep} for s in before
    ]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        stored = con.execute(
            "select check_name, result_json from audit.check_evidence order by 1"
        ).fetchall()
    assert [name for name, _ in stored] == sorted(SUITES)
    hr = dict(stored)["raw_rh_effectifs"]
    for secret in (CLEAR_MATRICULE, *PSEUDONYMS):
        assert secret not in hr  # counts only, already in the warehouse


def test_a_suite_without_usable_recorded_result_is_validated_at_the_freeze(release, tmp_path):
    """A suite changed since its check, or whose data could not be prepared then."""
    warehouse = _with_recorded_checks(release, tmp_path, drop="raw.eau_volumes")
    with duckdb.connect(str(warehouse)) as con:
        con.execute(
            "update audit.check_evidence set suite_sha256 = 'ancienne' "
            "where check_name = 'marts_fct_yoy_jumps'"
        )
        write_release_exports(con, RELEASE, YEAR, tmp_path / "out", suites=SUITES)
    index = json.loads((tmp_path / "out" / "validation" / "index.json").read_text("utf-8"))
    by_name = {s["suite"]: s for s in index["suites"]}
    assert by_name["raw_rh_effectifs"]["validated_in"] == "run"
    assert by_name["marts_fct_yoy_jumps"]["validated_in"] == "freeze"
    assert by_name["marts_fct_yoy_jumps"]["success"] is not None
    volumes = by_name["raw_eau_volumes"]
    assert volumes["validated_in"] == "freeze" and volumes["success"] is None
    assert "raw.eau_volumes" in volumes["skipped"]


def test_missing_npm_packages_are_reported_in_french(release, tmp_path, monkeypatch):
    monkeypatch.setenv("KPI_NODE_MODULES", str(tmp_path / "node_modules"))
    with (
        duckdb.connect(str(release["warehouse"]), read_only=True) as con,
        pytest.raises(VendorMissing, match="make setup"),
    ):
        write_release_exports(con, RELEASE, YEAR, tmp_path / "out", suites=SUITES)


def test_data_docs_written_by_the_child_process_are_those_written_in_process(release, tmp_path):
    """write_release_exports renders the Data Docs in a child process (DataDocsProcess) while
    it writes the workbook: same files as rendering them in this process."""
    from dagster_project.release.exports.common import release_timestamp
    from dagster_project.release.exports.data_docs import write_data_docs

    inline = tmp_path / "inline"
    with duckdb.connect(str(release["warehouse"]), read_only=True) as con:
        write_data_docs(con, RELEASE, inline, release_timestamp(con, YEAR), SUITES)
    child = {
        k: v
        for k, v in _tree_digest(release["folder"]).items()
        if k.startswith(("data_docs/", "validation/"))
    }
    assert child and child == _tree_digest(inline)


def test_a_failed_data_docs_process_fails_the_export_with_its_output(tmp_path):
    import datetime as dt

    from dagster_project.release.exports.data_docs import DataDocsProcess

    folder = tmp_path / "release"
    folder.write_text("un fichier, pas un dossier")
    process = DataDocsProcess([], RELEASE, folder, dt.datetime(2026, 1, 1), None)
    with pytest.raises(RuntimeError, match="Data Docs n'ont pas pu être écrites"):
        process.wait()
