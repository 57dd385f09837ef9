"""``controles.html``: the release's checks in French for auditors (release/exports/checks/).

The warehouse is ``support.exports``' small one, with a failing mart suite: the unemployment
rate (unit pct) of 2025 set to 163.157894736842…, above 100, and one commune's water network
length set negative; its HR rows (pseudonyms and one clear matricule, aged 40 months) make
the HR suite fail. The checks run and are recorded as in `kpi run` (GX imported once per
module), then the page is rendered from what the freeze gathers.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from support.exports import CLEAR_MATRICULE, PSEUDONYMS, RELEASE, YEAR, build_warehouse

from dagster_project.release.exports.checks.page import (
    PAGE,
    render_checks_page,
    write_checks_page,
)
from dagster_project.release.exports.checks.rows import matching_rows
from dagster_project.release.exports.checks.values import amount_text, cell_text
from dagster_project.release.exports.common import release_timestamp

SUITES = ["marts_fct_indicator_values", "raw_rh_effectifs"]
PCT_VALUE = 163.15789473684211
PCT_TEXT = "163,157894737 %"  # lib.french.format_number: decimal comma, 12 significant digits
NEGATIVE = "water_network_length"  # one commune value set negative
VOID = {"br", "meta", "link", "img", "hr", "input", "wbr", "col", "area", "base", "source"}


@pytest.fixture(scope="module")
def checked(tmp_path_factory, contracts):
    """The small warehouse with a failing mart suite, its checks recorded as in `kpi run`."""
    from dagster_project.quality import record_outcomes, run_suite

    root = tmp_path_factory.mktemp("checks_page")
    path = root / "warehouse.duckdb"
    facts = build_warehouse(path, contracts)
    with duckdb.connect(str(path)) as con:
        # the marts carry the unit's French label (dbt/seeds/units.csv)
        con.execute("alter table marts.fct_indicator_values add column unit_label varchar")
        con.execute(
            "update marts.fct_indicator_values set unit_label = case unit when 'pct' then '%' "
            "when 'km' then 'km' else unit end"
        )
        con.execute(
            "update marts.fct_indicator_values set value = ? "
            "where indicator_id = 'unemployment_rate' and year = ? and code_insee is null",
            [PCT_VALUE, YEAR],
        )
        code = facts["communes"][0][0]
        con.execute(
            "update marts.fct_indicator_values set value = -3.5 "
            "where indicator_id = ? and year = ? and code_insee = ?",
            [NEGATIVE, YEAR, code],
        )
        record_outcomes(con, "run-1", [run_suite(con, name) for name in SUITES])
    return {"warehouse": path, "root": root, **facts}


def _render(path: Path, suites=SUITES) -> str:
    from dagster_project.release.exports.data_docs import gather_data_docs

    with duckdb.connect(str(path), read_only=True) as con:
        items = gather_data_docs(con, suites)
        return render_checks_page(con, items, RELEASE, YEAR, release_timestamp(con, YEAR))


@pytest.fixture(scope="module")
def page(checked) -> str:
    return _render(checked["warehouse"])


class _Page(HTMLParser):
    """Tables (rows of cell texts, header cells with their scope), sections, balance."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.tables: list[dict] = []
        self.sections: dict[str, list[str]] = {}
        self.section: str | None = None
        self.cell: list[str] | None = None
        self.row: list[str] | None = None
        self.title = ""
        self.lang = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "html":
            self.lang = attrs.get("lang")
        if tag == "br" and self.cell is not None:
            self.cell.append(" ")
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "section":
            self.section = attrs.get("id")
            self.sections[self.section] = []
        if tag == "table":
            self.tables.append({"rows": [], "th": [], "section": self.section})
        if tag == "tr":
            self.row = []
        if tag in ("td", "th"):
            self.cell = []
            if tag == "th":
                self.tables[-1]["th"].append(attrs.get("scope"))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> inattendu (ouverts : {self.stack[-3:]})")
            return
        self.stack.pop()
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        if tag == "tr" and self.row is not None:
            self.tables[-1]["rows"].append(self.row)
            self.row = None
        if tag == "section":
            self.section = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        if self.section is not None:
            self.sections[self.section].append(data)
        if self.stack and self.stack[-1] == "title":
            self.title += data


def _parse(html: str) -> _Page:
    parser = _Page()
    parser.feed(html)
    parser.close()
    return parser


def _rows(parsed: _Page, suite: str) -> list[list[str]]:
    return [r for t in parsed.tables if t["section"] == f"suite-{suite}" for r in t["rows"]]


# --------------------------------------------------------------------------------------------


def test_failed_mart_rows_name_indicator_commune_year_and_value(checked, page):
    parsed = _parse(page)
    label = checked["catalogue"]["unemployment_rate"]["label_fr"]
    rows = _rows(parsed, "marts_fct_indicator_values")
    # « Taux de chômage (…) unemployment_rate | Agglomération | 2025 | 163,157894737 % »
    assert [label + " unemployment_rate", "Agglomération", "2025", PCT_TEXT] in rows
    code, name = checked["communes"][0]
    network = checked["catalogue"][NEGATIVE]["label_fr"]
    assert [f"{network} {NEGATIVE}", f"{name} ({code})", "2025", "-3,5 km"] in rows
    text = "".join(parsed.sections["suite-marts_fct_indicator_values"])
    assert "Un pourcentage (unité pct) est compris entre 0 et 100" in text  # French rule
    assert "en échec" in text and "bloquant" in text
    assert "Lignes contrôlées" in text
    assert "163.15" not in page  # never GX's bare value


def test_hr_suite_shows_counts_only(checked, page, monkeypatch):
    parsed = _parse(page)
    section = "".join(parsed.sections["suite-raw_rh_effectifs"])
    assert "1 ligne(s) en écart sur 3" in section and "Données personnelles" in section
    assert "Lignes en écart" not in section  # no rows, no values
    hr_rows = _rows(parsed, "raw_rh_effectifs")
    assert all(len(r) == 4 for r in hr_rows)  # the expectations table only
    assert not any("40" in cell for r in hr_rows for cell in r[3:])  # the failing age
    for secret in (CLEAR_MATRICULE, *PSEUDONYMS):
        assert secret not in page
    assert not re.search(r"\b[0-9a-f]{16}\b", page)
    # the HR table is never read for the page
    import dagster_project.quality.datasets as datasets

    read: list[str] = []
    original = datasets.build_dataset

    def spy(con, spec):
        read.append(spec["table"])
        return original(con, spec)

    monkeypatch.setattr(datasets, "build_dataset", spy)
    _render(checked["warehouse"])
    assert read == ["marts.fct_indicator_values"]


def test_page_is_deterministic_whether_recorded_or_validated_at_the_freeze(checked, page, tmp_path):
    from dagster_project.release.exports.data_docs import gather_data_docs

    with duckdb.connect(str(checked["warehouse"]), read_only=True) as con:
        items = gather_data_docs(con, SUITES)
        fixed = release_timestamp(con, YEAR)
        first = write_checks_page(con, items, RELEASE, YEAR, tmp_path / "a", fixed)
        second = write_checks_page(con, items, RELEASE, YEAR, tmp_path / "b", fixed)
    assert first.name == PAGE and first.read_bytes() == second.read_bytes()
    assert first.read_text(encoding="utf-8") == page
    # Without recorded results the suites are validated at the freeze: same page.
    copy = tmp_path / "revalidated.duckdb"
    shutil.copyfile(checked["warehouse"], copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("delete from audit.check_evidence")
    assert _render(copy) == page
    assert "15/01/2026" in page  # the release's fixed date (last delivery), never the clock


def test_page_is_valid_accessible_html(page):
    parsed = _parse(page)
    assert not parsed.errors and not parsed.stack
    assert parsed.lang == "fr"
    assert RELEASE in parsed.title and "Contrôles" in parsed.title
    assert "<h1>" in page and "<h2" in page and "<h3" in page
    assert parsed.tables
    for table in parsed.tables:
        assert table["th"], table["rows"][:1]
        assert all(scope in ("col", "row") for scope in table["th"])
    assert "<caption>" in page
    for forbidden in ("<script", "http:", "https:", "//cdn", "<link"):
        assert forbidden not in page
    assert "<style>" in page


def test_unescaped_text_never_reaches_the_page(checked, tmp_path):
    """Text from the warehouse is escaped (a label with markup shows as text)."""
    copy = tmp_path / "markup.duckdb"
    shutil.copyfile(checked["warehouse"], copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(
            "update marts.dim_indicators set label_fr = '<b>Chômage</b> & co' "
            "where indicator_id = 'unemployment_rate'"
        )
    html = _render(copy)
    assert "<b>Chômage</b>" not in html and "&lt;b&gt;Chômage&lt;/b&gt; &amp; co" in html


def test_exports_write_the_page_and_the_report_links_to_it(checked, tmp_path):
    from dagster_project.release.exports import write_release_exports

    folder = tmp_path / RELEASE
    with duckdb.connect(str(checked["warehouse"]), read_only=True) as con:
        files = write_release_exports(con, RELEASE, YEAR, folder, suites=SUITES)
    page = folder / PAGE
    assert page in files
    assert page.read_text(encoding="utf-8") == _render(checked["warehouse"])
    index = (folder / "rapport" / "index.html").read_text(encoding="utf-8")
    assert f'href="../{PAGE}"' in index
    html = page.read_text(encoding="utf-8")
    anchors = set(re.findall(r'id="([^"]+)"', html))
    for href in re.findall(r'href="([^"]+)"', html):
        if href.startswith("#"):
            assert href[1:] in anchors, href
        else:
            assert (folder / href).is_file(), href


# --------------------------------------------------------------------------------------------
# Finding the rows, French formats
# --------------------------------------------------------------------------------------------


def _config(kind: str, **kwargs) -> dict:
    return {"type": kind, "kwargs": kwargs}


def test_matching_rows_by_recorded_values():
    df = pd.DataFrame(
        {
            "indicator_id": ["a", "a", "b", "c", "d"],
            "year": [2024, 2025, 2025, 2025, 2025],
            "code_insee": [None, None, "62119", None, None],
            "value": [150.0, 10.0, 150.0, -1.0, None],
            "unit": ["pct", "pct", "km", "pct", "pct"],
        }
    )
    between = _config(
        "expect_column_values_to_be_between",
        column="value",
        min_value=0,
        max_value=100,
        row_condition={"type": "pass_through", "pass_through_filter": 'unit == "pct"'},
        condition_parser="pandas",
    )
    found = matching_rows(
        df, between, {"unexpected_count": 2, "partial_unexpected_list": [150.0, -1.0]}
    )
    # 150 km of « b » is not a percentage: the condition keeps it out
    assert found.complete and sorted(found.rows["indicator_id"]) == ["a", "c"]
    truncated = matching_rows(df, between, {"unexpected_count": 2, "partial_unexpected_list": [-1]})
    assert not truncated.complete and list(truncated.rows["indicator_id"]) == ["c"]
    unique = _config("expect_compound_columns_to_be_unique", column_list=["indicator_id", "year"])
    found = matching_rows(
        df,
        unique,
        {"unexpected_count": 1, "partial_unexpected_list": [{"indicator_id": "b", "year": 2025}]},
    )
    assert list(found.rows["code_insee"]) == ["62119"]
    pair = _config("expect_column_pair_values_to_be_equal", column_A="year", column_B="value")
    found = matching_rows(
        df, pair, {"unexpected_count": 1, "partial_unexpected_list": [[2025, 10]]}
    )
    assert list(found.rows["indicator_id"]) == ["a"]
    null = _config("expect_column_values_to_not_be_null", column="value")
    found = matching_rows(df, null, {"unexpected_count": 1, "partial_unexpected_list": [None]})
    assert list(found.rows["indicator_id"]) == ["d"]
    unknown = _config(
        "expect_column_values_to_be_between", column="value", row_condition={"type": "and"}
    )
    assert matching_rows(df, unknown, {"unexpected_count": 1}).rows is None


def test_french_cells():
    assert cell_text(1234567.5) == "1\u202f234\u202f567,5"
    assert cell_text(2025, identifier=True) == "2025"
    assert cell_text(dt.date(2025, 12, 31)) == "31/12/2025"
    assert cell_text("2025-12-31T00:00:00") == "31/12/2025"
    assert cell_text(None) == "vide" and cell_text(True) == "oui"
    assert amount_text(12.5, "kg_per_inhabitant") == "12,5 kg par habitant"
    assert amount_text(15, "count") == "15"
    assert amount_text(8.6, "pct", "%") == "8,6 %"
