"""No file can stop a run; nothing leaves sources/ or comes in from outside it (issue 15).

- An unexpected exception while reading or judging one delivery makes it a rejected
  delivery, recorded, with a French report saying it could not be read to the end; the
  other deliveries of the batch and the other sources go on (``Ingestor.evaluate``); through
  Dagster too (tests/integration/test_ingest_safety.py). The crashes that were found (an
  integer column holding 1e300 or the text 99999999999999999999, a file name that is not
  UTF-8) are judged instead: rejected with their row, column and a French reason.
- Links (symbolic, hard), files of a linked folder and names that are not valid text are
  refused with a report (``discovery.refusal_of``) and never read; the report is written in a
  temporary file then renamed (a link planted at its name is replaced, never followed), and
  never outside sources/; the build folder is the pipeline account's only.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import stat
from pathlib import Path

import duckdb
import pytest
from support.deliveries import (
    ACTIVITY,
    ACTIVITY_HEADER,
    GOOD,
    MIDDLE,
    UNREADABLE_START,
    crash_on,
    deliver,
    logged,
)

from dagster_project.ingest import pipeline, rejection
from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import UNREADABLE, Ingestor
from dagster_project.ingest.validation import driver

BAD_ROW = [["62119", "2025-01", -4, 0, 1]]  # a negative count: rejected
COLLECTE_HEADER = ["code_insee", "mois", "flux", "tonnage_t"]
COLLECTE = [["62119", "2025-01", "OMR", 812.4], ["62178", "2025-01", "OMR", 640]]
TODAY = dt.date(2026, 1, 15)
UNREADABLE_END = " ; transmettez-le à la Direction du Pilotage Stratégique"
CAMPAIGN = """\
campaign_year: 2025
opening_date: 2025-11-17
default_due_date: 2026-01-31
steering:
  direction_fr: Direction du Pilotage Stratégique
  email: pilotage@bethunebruay.fr
departments:
  water:
    direction_fr: Direction du Petit Cycle de l'Eau
    contact: Sophie Delattre
    email: sophie.delattre@bethunebruay.fr
    sources:
      assainissement_activite:
"""


@pytest.fixture
def sources(tmp_path):
    (tmp_path / "sources" / "2025" / "water").mkdir(parents=True)
    return tmp_path / "sources"


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield connection
    connection.close()


def ingest_all(con, contracts, sources, source_ids=(ACTIVITY, "dechets_collecte")):
    """What the ingestion job does: each source of ``source_ids``, in turn, on the files found."""
    ingestor = Ingestor(con, contracts, today=TODAY)
    files = discover(sources, contracts)
    return {s: ingestor.ingest_source(s, files) for s in source_ids}


def report_lines(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def batch(workbook, sources, middle_rows=MIDDLE):
    """Three deliveries of one source (the middle one to break) and one of another source."""
    water = sources / "2025" / "water"
    first = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    middle = deliver(workbook, water, f"{ACTIVITY}_2025_b.xlsx", middle_rows, 1_700_001_000)
    last_rows = [[*GOOD[0][:2], 7, 0, 1], GOOD[1]]
    last = deliver(workbook, water, f"{ACTIVITY}_2025_c.xlsx", last_rows, 1_700_002_000)
    other = deliver(
        workbook,
        sources / "2025" / "waste",
        "dechets_collecte_2025.xlsx",
        COLLECTE,
        1_700_000_500,
        sheet="Collecte",
        header=COLLECTE_HEADER,
    )
    return first, middle, last, other


# --- 1. no file can stop a run ---------------------------------------------------------------


PLANTED = {
    # while reading: what the engine's Arrow paths raised on 1e300
    "lecture": ("read", OverflowError("Python int too large to convert to C long")),
    "lecture, mémoire": ("read", MemoryError()),
    # while judging
    "jugement": ("validate", ZeroDivisionError("float division by zero")),
    # while writing the report (what a name that is not UTF-8 raised)
    "rapport": (
        "report",
        UnicodeEncodeError("utf-8", "x\udcff", 1, 2, "surrogates not allowed"),
    ),
}


@pytest.mark.parametrize("where", list(PLANTED))
def test_an_unexpected_exception_rejects_its_delivery_and_the_batch_goes_on(
    where, sources, con, contracts, workbook, monkeypatch
):
    kind, exc = PLANTED[where]
    first, middle, last, other = batch(
        workbook, sources, middle_rows=BAD_ROW if kind == "report" else MIDDLE
    )
    if kind == "read":
        monkeypatch.setattr(driver, "read_file", crash_on(middle.name, exc, driver.read_file))
    elif kind == "validate":
        planted = crash_on(middle.name, exc, pipeline.validate_delivery)
        monkeypatch.setattr(pipeline, "validate_delivery", planted)
    else:
        calls = []
        original = rejection.group_problems

        def group_problems(problems):
            calls.append(1)
            if len(calls) == 1:  # the first report written: the middle file's
                raise exc
            return original(problems)

        monkeypatch.setattr(rejection, "group_problems", group_problems)

    summaries = ingest_all(con, contracts, sources)

    assert len(summaries[ACTIVITY].accepted) == 2 and len(summaries[ACTIVITY].rejected) == 1
    assert logged(con, first.name)["outcome"] == "accepted"
    assert logged(con, last.name)["outcome"] == "accepted"
    assert logged(con, last.name)["in_force"]  # the newest accepted file
    assert logged(con, other.name)["outcome"] == "accepted"  # the other source went on
    failed = logged(con, middle.name)
    assert failed["outcome"] == "rejected" and not failed["in_force"]
    assert failed["depends_on"] == UNREADABLE
    [reason] = failed["reasons"]
    name = type(exc).__name__
    assert reason.startswith(UNREADABLE_START + name) and reason.endswith(UNREADABLE_END)
    # the French report says so, without a traceback nor a server path
    report = Path(failed["report"])
    assert report == middle.with_name(middle.name + ".rejet.csv")
    text = report.read_text(encoding="utf-8-sig")
    assert reason in text and "Traceback" not in text and str(sources) not in text
    assert not [p for p in report.parent.iterdir() if p.name.endswith(".tmp")]

    # judged again at the next run (the failure was not the file's): once the cause is gone,
    # it gets its true verdict
    monkeypatch.undo()
    again = ingest_all(con, contracts, sources)
    judged = logged(con, middle.name)
    assert judged["id"] == failed["id"] and judged["depends_on"] != UNREADABLE
    if kind == "report":
        assert judged["outcome"] == "rejected" and "valeur négative" in judged["reasons"][0]
        assert "valeur négative" in report.read_text(encoding="utf-8-sig")
    else:
        assert judged["outcome"] == "accepted" and not report.exists()
    assert again[ACTIVITY].unchanged == 2  # the others were not judged again
    # and then it is known: not judged a third time
    assert ingest_all(con, contracts, sources)[ACTIVITY].unchanged == 3


def test_the_pseudonymisation_key_still_stops_the_step(sources, con, contracts, monkeypatch):
    """Not the file's fault: a key problem is not turned into a rejection of the file."""
    from dagster_project.ingest import privacy

    def no_key():
        raise privacy.PseudonymKeyError("aucune clé de pseudonymisation")

    monkeypatch.setattr(pipeline, "load_key", no_key)
    folder = sources / "2025" / "hr"
    folder.mkdir(parents=True)
    (folder / "rh_effectifs_2025.csv").write_text("matricule;sexe\nM0001;F\n", encoding="utf-8")
    ingestor = Ingestor(con, contracts, today=TODAY)
    with pytest.raises(privacy.PseudonymKeyError):
        ingestor.ingest_source("rh_effectifs", discover(sources, contracts))
    assert not con.execute("select count(*) from ingest.deliveries").fetchone()[0]


def _big_actions(n: int, bad_row: int) -> list[list[object]]:
    rows = []
    for k in range(n):
        quantity = 1e300 if k + 2 == bad_row else 10 + k % 7
        rows.append([f"A-{k:05d}", "14/02/2025", "Béthune", "ATELIER", quantity, 0])
    return rows


@pytest.mark.parametrize(
    "kind", ["xlsx 1e300", "xlsx texte 99999999999999999999", "csv 99999999999999999999"]
)
def test_a_huge_integer_is_judged_not_a_crash(kind, sources, con, contracts, workbook):
    water = sources / "2025" / "water"
    good = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    if kind.startswith("csv"):
        bad = water / f"{ACTIVITY}_2025_b.csv"
        lines = [";".join(ACTIVITY_HEADER), "62119;2025-01;99999999999999999999;0;1"]
        bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
        os.utime(bad, (1_700_001_000, 1_700_001_000))
        value = "99999999999999999999"
    else:
        value = 1e300 if "1e300" in kind else "99999999999999999999"
        rows = [[*GOOD[0][:2], value, 0, 1], GOOD[1]]
        bad = deliver(workbook, water, f"{ACTIVITY}_2025_b.xlsx", rows, 1_700_001_000)
        value = "1e+300" if value == 1e300 else value

    ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))

    assert logged(con, good.name)["in_force"]
    rejected = logged(con, bad.name)
    assert rejected["outcome"] == "rejected" and rejected["depends_on"] != UNREADABLE
    problem = con.execute(
        "select row_number, column_name, value, reason from ingest.delivery_problems "
        "where delivery_id = ?",
        [rejected["id"]],
    ).fetchall()
    assert problem == [
        (
            2,
            "controles_spanc_vente",
            value,
            "nombre trop grand : 9\u202f007\u202f199\u202f254\u202f740\u202f991 au plus "
            "(nombre entier)",
        )
    ]


def test_a_huge_integer_in_a_long_worksheet_read_by_arrow(sources, con, contracts, workbook):
    """The worksheet Arrow path (fastexcel, 10 000 rows and more) falls back to the cell
    rules, which locate it."""
    from dagster_project.ingest.readers import xlsx_file

    read = []
    original = xlsx_file._fastexcel_sheet

    def spy(*args, **kwargs):
        sheet = original(*args, **kwargs)
        read.append(sheet is not None)
        return sheet

    header = ["id_action", "date", "commune", "type_action", "quantite", "foyers_sensibilises"]
    path = deliver(
        workbook,
        sources / "2025" / "waste",
        "dechets_prevention_2025.xlsx",
        _big_actions(xlsx_file.ARROW_MIN_ROWS, bad_row=9_000),
        1_700_000_000,
        sheet="Actions",
        header=header,
    )
    ingestor = Ingestor(con, contracts, today=TODAY)
    try:
        xlsx_file._fastexcel_sheet = spy
        ingestor.ingest_source("dechets_prevention", discover(sources, contracts))
    finally:
        xlsx_file._fastexcel_sheet = original
    assert read == [True]  # it was read by Arrow first
    rejected = logged(con, path.name)
    assert rejected["outcome"] == "rejected"
    assert con.execute(
        "select row_number, column_name, value from ingest.delivery_problems where delivery_id = ?",
        [rejected["id"]],
    ).fetchall() == [(9_000, "quantite", "1e+300")]


def test_a_name_that_is_not_utf8_is_refused_with_a_report_named_in_text(
    sources, con, contracts, workbook
):
    from dagster_project.campaign.status import campaign_status
    from dagster_project.campaign.status_report import format_status
    from dagster_project.defs import sensors
    from dagster_project.ingest.discovery import unrecognised_files

    water = sources / "2025" / "water"
    good = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    raw_name = f"{ACTIVITY}_2025_".encode() + b"\xe9t\xe9.xlsx"  # Latin-1 « été »
    bad = Path(os.fsdecode(os.path.join(os.fsencode(water), raw_name)))
    deliver(workbook, water, "tmp.xlsx", [[*GOOD[0][:2], 9, 0, 1]], 1_700_001_000).rename(bad)
    unmatched = Path(os.fsdecode(os.fsencode(water) + b"/\xff_inconnu.xlsx"))
    unmatched.write_bytes(b"")

    summary = ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))[ACTIVITY]

    assert len(summary.accepted) == 1 and len(summary.rejected) == 1
    assert logged(con, good.name)["in_force"]
    printable = f"{ACTIVITY}_2025_\ufffdt\ufffd.xlsx"
    refused = logged(con, printable)
    assert refused["outcome"] == "rejected"
    assert refused["reasons"][0].startswith("nom de fichier illisible")
    report = water / (printable + ".rejet.csv")
    assert refused["report"] == str(report) and report.is_file()
    lines = report_lines(report)
    assert lines[1][0] == f"2025/water/{printable}" and "nom de fichier illisible" in lines[1][5]
    # kpi status and the sensor see it, without failing on the name
    (sources / "2025" / "campagne.yml").write_text(CAMPAIGN, encoding="utf-8")
    rows = campaign_status(con, sources, 2025, TODAY, contracts=contracts)
    [row] = [r for r in rows if r.source_id == ACTIVITY]
    assert row.latest_file == printable and row.rejected and row.pending_file is None
    text = format_status(rows, unrecognised_files(sources, contracts))
    text.encode("utf-8")
    assert "\ufffd_inconnu.xlsx" in text
    assert str(bad) in sensors.snapshot(sources)
    # known: not judged again
    assert ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))[ACTIVITY].unchanged == 2


def test_a_department_folder_whose_name_is_not_utf8(sources, con, contracts, workbook):
    folder = Path(os.fsdecode(os.fsencode(sources / "2025") + b"/eau\xe9"))
    path = deliver(workbook, folder, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    summary = ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))[ACTIVITY]
    assert len(summary.rejected) == 1
    refused = logged(con, path.name)
    assert refused["reasons"][0].startswith("nom de dossier illisible")
    department = con.execute(
        "select department from ingest.deliveries where delivery_id = ?", [refused["id"]]
    ).fetchone()[0]
    assert department == "eau\ufffd"


# --- 2. nothing leaves sources/ nor comes in from outside -------------------------------------


def _spy_reads(monkeypatch) -> list[Path]:
    from dagster_project.ingest.readers import readahead

    seen: list[Path] = []
    original = driver.read_file

    def read_file(path, *args, **kwargs):
        seen.append(Path(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(driver, "read_file", read_file)
    schedule = readahead.READ_AHEAD.schedule
    monkeypatch.setattr(
        readahead.READ_AHEAD, "schedule", lambda paths: (seen.extend(paths), schedule(paths))
    )
    return seen


def test_a_link_to_a_workbook_outside_sources_is_refused_and_never_read(
    tmp_path, sources, con, contracts, workbook, monkeypatch
):
    water = sources / "2025" / "water"
    good = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
    outside = deliver(workbook, tmp_path / "ailleurs", "classeur.xlsx", GOOD[:1], 1_700_000_000)
    before = outside.read_bytes()
    link = water / f"{ACTIVITY}_2025_v2.xlsx"
    link.symlink_to(outside)
    dangling = water / f"{ACTIVITY}_2025_v3.csv"
    dangling.symlink_to(tmp_path / "absent.csv")
    seen = _spy_reads(monkeypatch)

    summary = ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))[ACTIVITY]

    assert len(summary.accepted) == 1 and len(summary.rejected) == 2
    assert all(p.resolve() != outside.resolve() for p in seen)  # never read, not even ahead
    assert logged(con, good.name)["in_force"]  # the figures in force stay the delivered ones
    for refused_link in (link, dangling):
        refused = logged(con, refused_link.name)
        assert refused["outcome"] == "rejected" and not refused["in_force"]
        assert refused["reasons"][0].startswith("ce fichier est un lien (raccourci)")
        report = Path(refused["report"])
        assert report.parent == water and report.is_file() and not report.is_symlink()
    assert outside.read_bytes() == before
    assert sorted(p.name for p in outside.parent.iterdir()) == ["classeur.xlsx"]
    # the sensor lists them (a removed link is a change too) without following them
    from dagster_project.defs import sensors

    assert {str(link), str(dangling)} <= set(sensors.snapshot(sources))


@pytest.mark.parametrize("level", ["department", "year"])
def test_a_linked_folder_is_refused_and_nothing_is_written_there(
    level, tmp_path, sources, con, contracts, workbook, monkeypatch
):
    outside = tmp_path / "ailleurs"
    if level == "department":
        deliver(workbook, outside, f"{ACTIVITY}_2025.xlsx", GOOD, 1_700_000_000)
        (sources / "2025" / "water").rmdir()
        (sources / "2025" / "water").symlink_to(outside)
    else:
        deliver(workbook, outside / "water", f"{ACTIVITY}_2024.xlsx", GOOD, 1_700_000_000)
        (sources / "2024").symlink_to(outside)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    seen = _spy_reads(monkeypatch)

    summary = ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))[ACTIVITY]

    assert len(summary.rejected) == 1 and not summary.accepted and not seen
    [(reason, report)] = con.execute(
        "select p.reason, d.report_path from ingest.delivery_problems p "
        "join ingest.deliveries d using (delivery_id)"
    ).fetchall()
    assert reason.startswith("le dossier « ") and "est un lien vers un autre dossier" in reason
    assert report is None  # its folder is outside sources/: no report written there
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before


def test_a_link_planted_at_the_report_name_is_replaced_never_followed(
    tmp_path, sources, con, contracts, workbook
):
    water = sources / "2025" / "water"
    victim = tmp_path / "victime.txt"
    victim.write_text("ne pas écraser\n", encoding="utf-8")
    bad = deliver(workbook, water, f"{ACTIVITY}_2025.xlsx", BAD_ROW, 1_700_000_000)
    planted = bad.with_name(bad.name + ".rejet.csv")
    planted.symlink_to(victim)
    good = deliver(workbook, water, f"{ACTIVITY}_2025_b.xlsx", GOOD, 1_700_001_000)
    stale = good.with_name(good.name + ".rejet.csv")  # an accepted file's stale report
    stale.symlink_to(victim)

    ingest_all(con, contracts, sources, source_ids=(ACTIVITY,))

    assert victim.read_text(encoding="utf-8") == "ne pas écraser\n"
    assert planted.is_file() and not planted.is_symlink()
    assert report_lines(planted)[1][5].startswith("valeur négative non autorisée")
    assert not os.path.lexists(stale) and victim.exists()  # the link removed, not its target


def test_write_report_creates_its_file_in_the_folder_of_the_delivery(tmp_path):
    from dagster_project.ingest.validation.results import Problem, ValidationResult

    folder = tmp_path / "sources" / "2025" / "water"
    folder.mkdir(parents=True)
    path = folder / "eau_volumes_2025.xlsx"
    path.write_bytes(b"")
    result = ValidationResult(
        sheet="=Feuil1",
        problems=[
            Problem("n'est pas un nombre", "=Feuil1", 3, "volume_produit_m3", "@SOMME(A1)"),
            Problem("valeur négative non autorisée", "=Feuil1", 4, "volume_produit_m3", "-3.5"),
        ],
        warnings=[],
    )
    report = rejection.write_report(path, None, result)
    assert sorted(p.name for p in folder.iterdir()) == [path.name, report.name]
    lines = report_lines(report)
    assert lines[1][1] == "'=Feuil1" and lines[1][4] == "'@SOMME(A1)"
    assert lines[2][4] == "-3.5"  # a number stays a number


# --- the build folder: the pipeline account's only ---------------------------------------------


def test_the_build_folder_and_database_are_the_pipeline_accounts_only(tmp_path):
    from dagster_project.settings import Settings
    from dagster_project.warehouse.build import ensure_build

    settings = Settings(
        sources_dir=tmp_path / "sources",
        warehouse=tmp_path / "warehouse.duckdb",
        releases_dir=tmp_path / "releases",
    )
    build = ensure_build(settings)
    assert stat.S_IMODE(build.parent.stat().st_mode) == 0o700
    duckdb.connect(str(build)).close()  # created by a run, with the umask's mode
    build.parent.chmod(0o755)  # a folder of an earlier version
    ensure_build(settings)
    assert stat.S_IMODE(build.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(build.stat().st_mode) == 0o600
