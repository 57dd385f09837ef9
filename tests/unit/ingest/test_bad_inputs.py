"""The bad-input corpus (tests/bad_inputs/generate.py, manifest tests/bad_inputs/cases.yml).

Every malformed delivery goes through the real pipeline (discover + Ingestor) into a warehouse
that already holds an accepted delivery of the same source for 2025. Each must be rejected
with the expected French reasons, located at the expected sheet, row and column (no more, no
fewer problems); its rejection report must sit next to it; and the delivery accepted before
must stay in force with the same rows. That huge sheets and zip bombs are rejected in bounded
time and memory is checked in tests/integration/test_bad_inputs.py.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import duckdb
import pytest
from support.bad_inputs import BAD_INPUTS, CASES, HEAVY, corpus_def

from dagster_project.ingest.discovery import REPORT_SUFFIX, discover
from dagster_project.ingest.pipeline import Ingestor
from dagster_project.ingest.report import REPORT_HEADER, group_problems
from dagster_project.lib.csv_safety import neutralise_row

TODAY = dt.date(2026, 1, 15)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bad_inputs")
    corpus_def.generate(out)
    return out


def _in_force(con, contract, department: str):
    row = con.execute(
        "select delivery_id, row_count from ingest.deliveries "
        "where source_id = ? and campaign_year = ? and department = ? and in_force",
        [contract.source_id, corpus_def.YEAR, department],
    ).fetchone()
    assert row is not None, f"no delivery in force for {contract.source_id}"
    rows = con.execute(
        f"select * from {contract.raw_table} where _delivery_id = ? order by _row_number",
        [row[0]],
    ).fetchall()
    return row[0], row[1], rows


@pytest.fixture(scope="module")
def warehouse(corpus, contracts):
    """A warehouse holding the accepted baseline of every source; yields its ingestor and
    what was in force before any bad delivery."""
    con = duckdb.connect(str(corpus / "warehouse.duckdb"))
    ingestor = Ingestor(con, contracts, today=TODAY)
    baseline = discover(corpus / "_baseline" / "sources", contracts)
    baseline.sort(key=lambda d: corpus_def.BASELINE_ORDER.index(d.source_id))
    assert [d.source_id for d in baseline] == corpus_def.BASELINE_ORDER
    for delivery in baseline:
        outcome, delivery_id = ingestor.ingest_file(delivery)
        problems = con.execute(
            "select row_number, column_name, reason from ingest.delivery_problems "
            "where delivery_id = ? and severity = 'error'",
            [delivery_id],
        ).fetchall()
        assert outcome == "accepted", (delivery.source_id, problems)
    before = {
        (d.source_id, d.department): _in_force(con, contracts[d.source_id], d.department)
        for d in baseline
    }
    yield ingestor, before
    con.close()


def _matches(expected, sheet, row, column, value, reason) -> bool:
    return (
        all(part in reason for part in expected.reason)
        and (sheet or None) == expected.sheet
        and (row or None) == expected.row
        and (column or None) == expected.column
        and (expected.value is None or value == expected.value)
    )


def _assert_same_problems(expected: list, found: list[tuple]) -> None:
    """Each expected problem matches one problem found, and nothing else was found."""
    left = list(found)
    for item in expected:
        hit = next((p for p in left if _matches(item, *p)), None)
        assert hit is not None, f"expected {item}\nfound {found}"
        left.remove(hit)
    assert not left, f"unexpected problems: {left}"


def _report_rows(text: str) -> set[int]:
    """The rows of a report's « Lignes » cell (« 3, 7, 12 à 15 »)."""
    rows: set[int] = set()
    for piece in text.replace("\u00a0", "").split(", "):
        first, _, last = piece.partition(" à ")
        rows.update(range(int(first), int(last or first) + 1))
    return rows


@pytest.mark.parametrize("name", list(CASES))
def test_bad_delivery_is_rejected_with_a_located_french_reason(name, corpus, warehouse, contracts):
    case = CASES[name]
    ingestor, before = warehouse
    con = ingestor.con
    path = corpus / case.relative_path
    [delivery] = discover(corpus / name / "sources", contracts)
    assert (delivery.path, delivery.source_id, delivery.department) == (
        path,
        case.source,
        case.department,
    )

    outcome, delivery_id = ingestor.ingest_file(delivery)

    assert outcome == "rejected"
    logged = con.execute(
        "select outcome, row_count, in_force, report_path from ingest.deliveries "
        "where delivery_id = ?",
        [delivery_id],
    ).fetchone()
    assert logged[:3] == ("rejected", 0, False)
    found = con.execute(
        "select sheet, row_number, column_name, value, reason from ingest.delivery_problems "
        "where delivery_id = ? and severity = 'error'",
        [delivery_id],
    ).fetchall()
    _assert_same_problems(case.expect, found)

    # the rejection report, next to the file, says the same (file, sheet, row, column, reason)
    report = path.with_name(path.name + REPORT_SUFFIX)
    assert logged[3] == str(report) and report.is_file()
    # (one line per kind of problem: the same reason on several rows is one line)
    with report.open(encoding="utf-8-sig", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=";"))
    assert lines[0] == REPORT_HEADER
    relative = f"{corpus_def.YEAR}/{case.department}/{path.name}"
    assert {line[0] for line in lines[1:]} == {relative}
    keys = ("sheet", "row", "column", "value", "reason")
    stored = [dict(zip(keys, p, strict=True)) for p in found]
    # (a text that Excel would take for a formula is written with a « ' » before it)
    expected = [neutralise_row(group.report_row(relative)) for group in group_problems(stored)]
    assert lines[1:] == expected
    for item in case.expect:
        assert any(
            all(part in reason for part in item.reason)
            and (sheet or None, column or None) == (item.sheet, item.column)
            and (item.row in _report_rows(rows) if item.row else not rows)
            for _, sheet, rows, column, _, reason, _ in lines[1:]
        ), f"expected {item}\nin the report {lines[1:]}"

    # nothing of the bad file entered: the accepted delivery is still in force, same rows
    contract = contracts[case.source]
    assert _in_force(con, contract, case.department) == before[(case.source, case.department)]
    assert (
        con.execute(
            f"select count(*) from {contract.raw_table} where _delivery_id = ?", [delivery_id]
        ).fetchone()[0]
        == 0
    )


def test_corpus_covers_every_rule_and_trap():
    assert len(CASES) >= 40
    assert {c.source for c in CASES.values()} == set(corpus_def.VALID)
    # (.xlsm, .xls, .ods: refused with a report, never skipped)
    assert {c.extension for c in CASES.values()} == {"xlsx", "csv", "xlsm", "xls", "ods"}
    assert len(HEAVY) == 4


def test_committed_manifest_is_the_generated_one():
    committed = (BAD_INPUTS / "cases.yml").read_text(encoding="utf-8")
    assert committed == corpus_def.manifest_text(), (
        "tests/bad_inputs/cases.yml is stale: run "
        "python tests/bad_inputs/generate.py --manifest tests/bad_inputs/cases.yml"
    )


def _digests(out: Path, names: list[str]) -> dict[str, str]:
    paths = [out / "cases.yml"]
    paths += [out / CASES[name].relative_path for name in names]
    paths += sorted((out / "_baseline").rglob("*.xlsx"))
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def test_generation_is_deterministic_and_small(corpus, tmp_path):
    light = [name for name in CASES if name not in HEAVY]
    corpus_def.generate(tmp_path, heavy=False)
    again = _digests(tmp_path, light)
    assert again == _digests(corpus, light)  # same bytes as the corpus generated for the tests
    assert len(again) == len(light) + len(corpus_def.VALID) + 1
    assert sum((tmp_path / name).stat().st_size for name in again) < 2 * 2**20
