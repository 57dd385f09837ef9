"""HR personal data: keyed pseudonyms at ingestion, no birth date in the warehouse,
a clear error without a key."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from dagster_project.ingest import privacy
from dagster_project.ingest.discovery import discover
from dagster_project.ingest.pipeline import Ingestor

HEADER = [
    "matricule",
    "date_observation",
    "date_naissance",
    "sexe",
    "statut",
    "categorie",
    "direction",
    "quotite",
    "date_entree",
]
ROWS = [
    [
        "M000123",
        "01/10/2025",
        "15/04/1980",
        "F",
        "TITULAIRE",
        "B",
        "Direction de l'Eau",
        1,
        "01/09/2010",
    ],
    [
        "M000124",
        "01/10/2025",
        "02/10/1990",
        "M",
        "APPRENTI",
        None,
        "Direction des Déchets",
        1,
        "01/09/2025",
    ],
]


@pytest.fixture
def hr_delivery(tmp_path, workbook):
    folder = tmp_path / "sources" / "2025" / "hr"
    folder.mkdir(parents=True)
    path = workbook({"Effectifs": [HEADER, *ROWS]}, name="rh_effectifs_2025.xlsx")
    path.replace(folder / path.name)
    return tmp_path / "sources"


def _ingest(tmp_path, sources, contracts):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    summary = Ingestor(con, contracts, today=dt.date(2026, 1, 15)).ingest_source(
        "rh_effectifs", discover(sources, contracts)
    )
    return con, summary


def _all_text(con) -> str:
    """Every value of every table of the warehouse, as one string."""
    chunks = []
    for schema, table in con.execute(
        "select table_schema, table_name from information_schema.tables"
    ).fetchall():
        for row in con.execute(f'select * from "{schema}"."{table}"').fetchall():
            chunks.append(" ".join(str(v) for v in row))
    return "\n".join(chunks)


def test_matricule_is_replaced_by_a_keyed_pseudonym(tmp_path, hr_delivery, contracts):
    con, summary = _ingest(tmp_path, hr_delivery, contracts)
    assert summary.accepted
    stored = [
        r[0] for r in con.execute("select matricule from raw_restricted.rh_effectifs").fetchall()
    ]
    expected = privacy.pseudonymiser(privacy.load_key())
    assert sorted(stored) == sorted([expected("M000123"), expected("M000124")])
    assert all(len(s) == privacy.PSEUDONYM_LENGTH for s in stored)
    everything = _all_text(con)
    assert "M000123" not in everything and "M000124" not in everything


def test_pseudonym_depends_on_the_key():
    assert privacy.pseudonymiser(b"k" * 40)("M1") != privacy.pseudonymiser(b"j" * 40)("M1")
    assert privacy.pseudonymiser(b"k" * 40)("M1") == privacy.pseudonymiser(b"k" * 40)(" m1 ")


def test_birth_dates_never_reach_the_warehouse(tmp_path, hr_delivery, contracts):
    con, _ = _ingest(tmp_path, hr_delivery, contracts)
    columns = {
        r[0] for r in con.execute("select column_name from information_schema.columns").fetchall()
    }
    assert "date_naissance" not in columns
    ages = dict(
        con.execute("select statut, age_months from raw_restricted.rh_effectifs").fetchall()
    )
    # 15/04/1980 -> 01/10/2025: 45 years 5 months; 02/10/1990 -> 34 years 11 months (not yet 35)
    assert ages == {"TITULAIRE": 45 * 12 + 5, "APPRENTI": 34 * 12 + 11}
    everything = _all_text(con)
    assert "1980-04-15" not in everything and "15/04/1980" not in everything


def test_problem_messages_never_show_personal_values(tmp_path, workbook, contracts):
    folder = tmp_path / "sources" / "2025" / "hr"
    folder.mkdir(parents=True)
    rows = [ROWS[0], ["M000123", *ROWS[1][1:]]]  # duplicate matricule
    rows[1][2] = "15/04/2015"  # an agent aged 10: out of bounds
    path = workbook({"Effectifs": [HEADER, *rows]}, name="rh_effectifs_2025.xlsx")
    path.replace(folder / path.name)
    con, summary = _ingest(tmp_path, tmp_path / "sources", contracts)
    assert summary.rejected
    problems = con.execute(
        "select column_name, value, reason from ingest.delivery_problems"
    ).fetchall()
    assert {p[0] for p in problems} >= {"matricule", "date_naissance"}
    text = " ".join(" ".join(str(v) for v in p) for p in problems)
    report = (folder / "rh_effectifs_2025.xlsx.rejet.csv").read_text(encoding="utf-8-sig")
    for secret in ("M000123", "2015", "1980"):
        assert secret not in text and secret not in report


def test_missing_key_is_a_clear_error(tmp_path, hr_delivery, contracts, monkeypatch):
    monkeypatch.delenv("KPI_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("KPI_PSEUDONYM_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(privacy.PseudonymKeyError, match="clé de pseudonymisation"):
        _ingest(tmp_path, hr_delivery, contracts)


def test_key_file_is_created_once_and_never_overwritten(tmp_path):
    path = tmp_path / "secrets" / "pseudonym.key"
    privacy.create_key_file(path)
    first = path.read_text()
    privacy.create_key_file(path)
    assert path.read_text() == first and len(first.strip()) == 64
    assert oct(path.stat().st_mode & 0o777) == "0o600"


# --- the key: its length, its file, the warehouse's fingerprint ---------------------------------

OTHER_KEY = "another-key-" + "1" * 40


def test_a_short_key_is_refused_from_the_environment_as_from_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", "x")
    with pytest.raises(privacy.PseudonymKeyError, match="trop courte dans KPI_PSEUDONYM_KEY"):
        privacy.load_key()
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", "k" * (privacy.MIN_KEY_LENGTH - 1) + "  ")
    with pytest.raises(privacy.PseudonymKeyError, match="32 caractères minimum"):
        privacy.load_key()
    monkeypatch.delenv("KPI_PSEUDONYM_KEY")
    short = tmp_path / "short.key"
    short.write_text("k" * 31 + "\n", encoding="utf-8")
    monkeypatch.setenv("KPI_PSEUDONYM_KEY_FILE", str(short))
    with pytest.raises(privacy.PseudonymKeyError, match="trop courte"):
        privacy.load_key()
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", "k" * privacy.MIN_KEY_LENGTH)
    assert privacy.load_key() == b"k" * privacy.MIN_KEY_LENGTH


def test_key_file_is_created_with_its_final_permissions(tmp_path, monkeypatch):
    """Created 0600 by os.open, never chmod-ed afterwards: not readable by others for an
    instant, even with a permissive umask."""
    import os
    from pathlib import Path

    def no_chmod(*args, **kwargs):
        raise AssertionError("chmod after creation")

    monkeypatch.setattr(os, "chmod", no_chmod)
    monkeypatch.setattr(Path, "chmod", no_chmod)
    previous = os.umask(0)
    try:
        path = privacy.create_key_file(tmp_path / "secrets" / "pseudonym.key")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(path.read_text(encoding="utf-8").strip()) == 64


def test_another_key_is_refused_before_any_hr_file_is_ingested(
    tmp_path, hr_delivery, contracts, monkeypatch, workbook
):
    con, summary = _ingest(tmp_path, hr_delivery, contracts)
    assert summary.accepted
    key = privacy.load_key()
    # the fingerprint identifies the key without holding it
    rows = con.execute(f"select * from {privacy.FINGERPRINT_TABLE}").fetchall()
    assert len(rows) == 1 and rows[0][0] == privacy.key_fingerprint(key)
    assert key.decode() not in _all_text(con)
    before = con.execute("select count(*) from raw_restricted.rh_effectifs").fetchone()
    con.close()
    # a corrected delivery, ingested with another key: refused, nothing written
    corrected = workbook({"Effectifs": [HEADER, ROWS[0]]}, name="rh_effectifs_2025_v2.xlsx")
    corrected.replace(hr_delivery / "2025" / "hr" / corrected.name)
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", OTHER_KEY)
    with pytest.raises(
        privacy.PseudonymKeyError,
        match="n'est pas celle avec laquelle l'entrepôt a été construit",
    ):
        _ingest(tmp_path, hr_delivery, contracts)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert con.execute("select count(*) from raw_restricted.rh_effectifs").fetchone() == before
    assert con.execute(f"select count(*) from {privacy.FINGERPRINT_TABLE}").fetchone() == (1,)
    con.close()


def test_kpi_run_refuses_another_key_with_a_french_message(tmp_path, monkeypatch, capsys):
    from support.settings import SETTINGS_VARS

    from dagster_project.cli import main

    for name in SETTINGS_VARS:  # the command exports its settings: restored after the test
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    build = tmp_path / ".build" / "warehouse.duckdb"
    build.parent.mkdir()
    con = duckdb.connect(str(build))
    privacy.check_key(con, privacy.load_key())  # the warehouse was built with the tests' key
    con.close()
    args = ["run", "--sources", str(tmp_path / "sources"), "--warehouse"]
    args += [str(tmp_path / "warehouse.duckdb")]
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", OTHER_KEY)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert (
        "la clé de pseudonymisation n'est pas celle avec laquelle l'entrepôt a été construit" in err
    )
    assert OTHER_KEY not in err
    monkeypatch.setenv("KPI_PSEUDONYM_KEY", "x")
    assert main(args) == 1
    assert "trop courte" in capsys.readouterr().err


def test_rh_arretes_rows_move_to_the_restricted_schema(tmp_path, contracts):
    """rh_arretes became personal (counts of fewer than 5 agents): a warehouse built before
    keeps its history, moved from raw to raw_restricted, which is never published."""
    from dagster_project.ingest.store import LINEAGE_COLUMNS, ensure_tables

    con = duckdb.connect(str(tmp_path / "old.duckdb"))
    columns = ", ".join(
        f'"{n}" {t}'
        for n, t in [("mois", "DATE"), ("type_arrete", "VARCHAR"), ("nombre", "BIGINT")]
        + LINEAGE_COLUMNS
    )
    con.execute(f"create schema raw; create table raw.rh_arretes ({columns})")
    con.execute(
        "insert into raw.rh_arretes values "
        "('2025-01-01', 'conge_parental', 1, 'd1', 's', 'Arrêtés', 2, 2025, 'hr')"
    )
    assert contracts["rh_arretes"].raw_table == "raw_restricted.rh_arretes"
    ensure_tables(con, contracts.values())
    tables = {
        f"{s}.{t}"
        for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    assert "raw.rh_arretes" not in tables and "raw_restricted.rh_arretes" in tables
    assert con.execute("select type_arrete, nombre from raw_restricted.rh_arretes").fetchall() == [
        ("conge_parental", 1)
    ]
    ensure_tables(con, contracts.values())  # idempotent
    assert con.execute("select count(*) from raw_restricted.rh_arretes").fetchone() == (1,)
