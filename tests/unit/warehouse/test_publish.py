"""The published copy analysts read: atomic swap, no restricted data, Parquet exports,
`kpi publish`, `kpi verify` of the copy, the publication sensor.

A small build database written by hand. The published copy of a real campaign, and `kpi docs`,
are tested in tests/integration/test_publish.py (``support.publishing.published_campaign``:
built once per test session, copied by test_crash_safety.py, test_concurrency.py and
test_postgres.py too).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from support import TESTS_DIR
from support.publishing import fetch_rows, settings_for

from dagster_project.cli import main
from dagster_project.ingest.store import ensure_ingest_tables
from dagster_project.lib.crash import POINTS as CRASH_POINTS
from dagster_project.settings import Settings
from dagster_project.warehouse.build import PublishError, ensure_build, is_published_copy
from dagster_project.warehouse.publication import publication_info, publish
from dagster_project.warehouse.publication_check import verify_publication
from dagster_project.warehouse.published_copy import TARGET_ALIAS
from dagster_project.warehouse.schema import PUBLICATION_SCHEMA

PSEUDONYM = "c0ffee00deadbeef"
SECRET_VALUE = "VALEUR-PERSONNELLE-7f3a9c"  # only ever in restricted data


def in_build(settings: Settings, *statements: str) -> None:
    """Run statements on the build database, as a run or a person with a SQL client would."""
    con = duckdb.connect(str(settings.build_warehouse))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()


def write_build(path: Path, values: int = 3) -> None:
    """A small build database: public, restricted and ingest schemas, a dbt-like view."""
    path.parent.mkdir(parents=True, exist_ok=True)
    catalog = path.stem
    con = duckdb.connect(str(path))
    ensure_ingest_tables(con)
    con.execute(
        f"""
        create schema if not exists raw;
        create schema if not exists raw_restricted;
        create schema if not exists restricted;
        create schema if not exists staging;
        create schema if not exists marts;
        create or replace table raw.eau_reseau (code_insee varchar, lineaire_km double,
            _delivery_id varchar);
        insert into raw.eau_reseau values ('62119', 12.5, 'eau_reseau-2025-water-a');
        create or replace table raw_restricted.rh_effectifs (matricule varchar,
            age_months bigint, statut varchar, _delivery_id varchar);
        insert into raw_restricted.rh_effectifs values
            ('{PSEUDONYM}', 480, '{SECRET_VALUE}', 'rh_effectifs-2025-hr-b');
        create or replace view restricted.stg_rh_effectifs as
            select * from {catalog}.raw_restricted.rh_effectifs;
        create or replace view staging.stg_eau_reseau as
            select code_insee, lineaire_km as network_length_km
            from {catalog}.raw.eau_reseau;
        comment on view staging.stg_eau_reseau is 'Réseau d''eau, livraisons en vigueur.';
        create or replace table marts.fct_indicator_values (indicator_id varchar not null,
            year integer not null, code_insee varchar, value double not null);
        comment on table marts.fct_indicator_values is 'Interface publique.';
        comment on column marts.fct_indicator_values.value is 'Valeur de l''indicateur.';
        """
    )
    con.executemany(
        "insert into marts.fct_indicator_values values (?, 2025, null, ?)",
        [[f"indicator_{i}", float(i)] for i in range(values)],
    )
    con.execute(
        "create or replace table marts.p2_indicators as select * from marts.fct_indicator_values"
    )
    con.execute("delete from ingest.deliveries")
    con.execute("delete from ingest.delivery_problems")
    con.execute(
        "insert into ingest.deliveries (delivery_id, campaign_year, department, source_id, "
        "file_path, file_name, file_sha256, received_at, processed_at, outcome, row_count, "
        "problem_count, warning_count, in_force) values "
        "('rh_effectifs-2025-hr-b', 2025, 'hr', 'rh_effectifs', 'x', 'rh.xlsx', 'b', "
        "now(), now(), 'rejected', 1, 1, 0, false), "
        "('eau_reseau-2025-water-a', 2025, 'water', 'eau_reseau', 'y', 'eau.xlsx', 'a', "
        "now(), now(), 'rejected', 1, 1, 0, false)"
    )
    con.execute(
        "insert into ingest.delivery_problems (delivery_id, severity, sheet, row_number, "
        "column_name, value, reason) values "
        f"('rh_effectifs-2025-hr-b', 'error', 'Effectifs', 5, 'statut', '{SECRET_VALUE}', "
        "'valeur inconnue'), "
        "('eau_reseau-2025-water-a', 'error', 'Réseau', 7, 'lineaire_km', '-3', 'négatif')"
    )
    con.close()


@pytest.fixture
def built(tmp_path):
    settings = settings_for(tmp_path / "warehouse.duckdb")
    write_build(settings.build_warehouse)
    return settings


def test_publication_is_complete_read_only_and_without_restricted_data(built):
    publication = publish(built, run_id="run-1")
    path = built.warehouse
    assert path.exists() and (path.stat().st_mode & 0o777) == 0o444
    assert is_published_copy(path) and not is_published_copy(built.build_warehouse)
    schemas = {
        r[0] for r in fetch_rows(path, "select schema_name from information_schema.schemata")
    }
    assert {"raw", "staging", "marts", "ingest", PUBLICATION_SCHEMA} <= schemas
    assert not schemas & {"raw_restricted", "restricted"}
    personal = fetch_rows(
        path,
        "select table_schema, table_name from information_schema.columns "
        "where column_name in ('matricule', 'age_months', 'date_naissance')",
    )
    assert personal == []
    # problems of a personal source keep their place, not their value
    problems = dict(
        fetch_rows(path, "select column_name, value from ingest.delivery_problems order by 1")
    )
    assert problems == {"lineaire_km": "-3", "statut": None}
    # a view of the build is a table of the copy, same rows; comments travel with it
    assert fetch_rows(path, "select * from staging.stg_eau_reseau") == [("62119", 12.5)]
    assert fetch_rows(
        path,
        "select comment from duckdb_columns() where schema_name = 'marts' "
        "and table_name = 'fct_indicator_values' and column_name = 'value'",
    ) == [("Valeur de l'indicateur.",)]
    info = publication_info(path)
    assert info["publication_id"] == publication.publication_id and info["run_id"] == "run-1"
    assert publication.tables["marts.fct_indicator_values"] == 3
    assert "raw_restricted.rh_effectifs" in publication.skipped
    # not a byte of restricted data in the file (the copy is logical, not a file copy)
    content = path.read_bytes()
    assert PSEUDONYM.encode() not in content and SECRET_VALUE.encode() not in content
    assert PSEUDONYM.encode() in built.build_warehouse.read_bytes()  # the check can see it


def test_parquet_exports_are_published_with_the_copy(built):
    publication = publish(built)
    marts = built.exports_dir / "marts"
    assert marts.is_symlink()
    listing = json.loads((marts / "_publication.json").read_text(encoding="utf-8"))
    assert listing == {
        "publication_id": publication.publication_id,
        "tables": {"fct_indicator_values": 3, "p2_indicators": 3},
    }
    rows = duckdb.sql(f"select count(*) from '{marts / 'fct_indicator_values.parquet'}'")
    assert rows.fetchone()[0] == 3
    # the copy and its exports are in one folder; both analysts' paths go through `current`
    publications = built.warehouse.parent / ".publications"
    assert os.readlink(marts) == "../.publications/current/marts"
    assert os.readlink(built.warehouse) == ".publications/current/warehouse.duckdb"
    assert os.readlink(publications / "current") == publication.publication_id
    first_target = Path(os.path.realpath(marts))
    assert first_target == publications / publication.publication_id / "marts"
    assert Path(os.path.realpath(built.warehouse)).parent == first_target.parent
    # a second publication switches `current` (one rename for both) and keeps the previous
    # version for its readers
    write_build(built.build_warehouse, values=5)
    second = publish(built)
    assert Path(os.path.realpath(marts)) != first_target and first_target.exists()
    third = publish(built)
    versions = sorted(p.name for p in publications.iterdir() if p.name != "current")
    assert versions == sorted([second.publication_id, third.publication_id])


def _content(path: Path) -> dict:
    """Every published relation with its rows, its comment and its columns' comments."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        relations = con.execute(
            "select schema_name, table_name, comment from duckdb_tables() "
            "where schema_name <> ? order by 1, 2",
            [PUBLICATION_SCHEMA],
        ).fetchall()
        content = {}
        for schema, name, comment in relations:
            columns = con.execute(
                "select column_name, data_type, comment from duckdb_columns() "
                "where schema_name = ? and table_name = ? order by column_index",
                [schema, name],
            ).fetchall()
            rows = sorted(con.execute(f'select * from "{schema}"."{name}"').fetchall(), key=repr)
            content[f"{schema}.{name}"] = (comment, columns, rows)
        return content
    finally:
        con.close()


def test_a_publication_rewrites_only_what_changed_and_equals_a_full_copy(built, tmp_path):
    publish(built)
    # the run re-processed one delivery: the marts changed, the raw water table did not,
    # a relation disappeared from the build and a comment changed
    write_build(built.build_warehouse, values=6)
    in_build(
        built,
        "drop table marts.p2_indicators",
        "comment on column raw.eau_reseau.lineaire_km is 'Linéaire en km.'",
    )
    second = publish(built)
    assert "staging.stg_eau_reseau" in second.reused
    assert "marts.fct_indicator_values" not in second.reused
    assert "raw.eau_reseau" not in second.reused  # its column comment changed
    assert "marts.p2_indicators" not in second.tables
    # the same relations, rows and comments as a publication written from scratch
    scratch = settings_for(tmp_path / "scratch" / "warehouse.duckdb")
    shutil.copytree(built.build_warehouse.parent, scratch.build_warehouse.parent)
    fresh = publish(scratch)
    assert fresh.reused == []
    assert _content(built.warehouse) == _content(scratch.warehouse)
    assert second.tables == fresh.tables
    # and still not a byte of restricted data
    content = built.warehouse.read_bytes()
    assert PSEUDONYM.encode() not in content and SECRET_VALUE.encode() not in content
    # nothing changed: everything is kept
    third = publish(built)
    assert sorted(third.reused) == sorted(third.tables)
    assert _content(built.warehouse) == _content(scratch.warehouse)


def test_a_view_the_build_cannot_evaluate_any_more_is_left_out_and_the_rest_kept(
    built, monkeypatch
):
    """The relations that may be kept are hashed in one statement; when one of them fails (a
    view over a table gone from the build), they are hashed one by one: the view is left out,
    the others are still kept."""
    in_build(
        built,
        "create table main.helper as select 1 as n",
        "create view staging.v_helper as select n from main.helper",
    )
    first = publish(built)
    assert "staging.v_helper" in first.tables
    in_build(built, "drop table main.helper")
    from dagster_project.warehouse import published_copy

    batched = []
    real = published_copy.hash_many
    monkeypatch.setattr(
        published_copy, "hash_many", lambda *a: batched.append(real(*a)) or batched[-1]
    )
    second = publish(built)
    assert batched == [None]  # the statement of all of them failed
    assert "staging.v_helper" in second.skipped and "staging.v_helper" not in second.tables
    assert "staging.stg_eau_reseau" in second.reused
    assert "main.helper" not in second.tables
    assert sorted(second.reused) == sorted(second.tables)


def test_a_table_that_became_restricted_leaves_no_byte_in_the_next_publication(built):
    """raw.rh_arretes was published, then its source became personal (moved to
    raw_restricted): the next publication is written whole, not from a byte copy of the
    previous one, whose freed blocks would still hold its rows."""
    small_cell = "CONGE-PARENTAL-JANVIER-1"
    con = duckdb.connect(str(built.build_warehouse))
    con.execute(
        "create table raw.rh_arretes as select '2025-01-01'::date as mois, "
        f"'{small_cell}' as type_arrete, 1 as nombre"
    )
    con.close()
    publish(built)
    assert small_cell.encode() in built.warehouse.read_bytes()
    con = duckdb.connect(str(built.build_warehouse))
    con.execute("create table raw_restricted.rh_arretes as select * from raw.rh_arretes")
    con.execute("drop table raw.rh_arretes")
    con.close()
    second = publish(built)
    assert second.reused == [] and "raw.rh_arretes" not in second.tables
    assert small_cell.encode() not in built.warehouse.read_bytes()
    # nothing else changed: the next one is incremental again
    assert sorted(publish(built).reused) == sorted(second.tables)


def test_a_publication_of_another_duckdb_version_is_rewritten_whole(built, monkeypatch):
    publish(built)
    path = built.warehouse
    path.chmod(0o644)
    con = duckdb.connect(str(path))
    con.execute(f"update {PUBLICATION_SCHEMA}.info set duckdb_version = '0.0.1'")
    con.close()
    assert publish(built).reused == []
    # a file with too many free blocks is rewritten whole as well (which compacts it)
    monkeypatch.setattr("dagster_project.warehouse.published_copy.MAX_FREE_FRACTION", -1.0)
    assert publish(built).reused == []


def test_open_connection_keeps_its_state_new_connection_sees_the_new_one(built):
    publish(built)
    reader = duckdb.connect(str(built.warehouse), read_only=True)
    try:
        write_build(built.build_warehouse, values=7)
        publish(built)
        # the open connection still reads the previous file, complete
        assert reader.execute("select count(*) from marts.fct_indicator_values").fetchone()[0] == 3
        assert reader.execute("select count(*) from marts.p2_indicators").fetchone()[0] == 3
        # a new connection (another process: DuckDB shares one instance per file within a
        # process) reads the new file
        code = (
            "import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.execute('select count(*) from marts.fct_indicator_values').fetchone()[0])"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(built.warehouse)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == "7"
    finally:
        reader.close()


def test_failed_publication_leaves_the_previous_one(built, monkeypatch):
    first = publish(built)
    before = built.warehouse.read_bytes()
    link = os.readlink(built.exports_dir / "marts")

    def broken(*args, **kwargs):
        raise OSError("disque plein")

    monkeypatch.setattr("dagster_project.warehouse.publication._write_exports", broken)
    write_build(built.build_warehouse, values=9)
    with pytest.raises(OSError):
        publish(built)
    assert built.warehouse.read_bytes() == before
    assert os.readlink(built.exports_dir / "marts") == link
    assert publication_info(built.warehouse)["publication_id"] == first.publication_id
    assert not list(built.warehouse.parent.glob(".warehouse.duckdb.publish-*"))


def test_leftovers_of_an_interrupted_publication_are_removed(built):
    publish(built)
    folder = built.warehouse.parent
    (folder / ".warehouse.duckdb.publish-20200101T000000-dead00.tmp").write_bytes(b"partiel")
    (folder / ".warehouse.duckdb.publish-20200101T000000-dead00.tmp.wal").write_bytes(b"x")
    partial = built.exports_dir / ".versions" / "20200101T000000-dead00" / "marts"
    partial.mkdir(parents=True)
    publish(built)
    assert not list(folder.glob(".warehouse.duckdb.publish-*"))
    assert not partial.parent.exists()


# --- kills: the copy and its exports switch together -------------------------------------------

KILLED_PUBLISH = """
import sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from support.publishing import settings_for
from dagster_project.warehouse.publication import publish
publish(settings_for(Path(sys.argv[1])))
"""


def published_ids(settings: Settings) -> tuple[str, str]:
    """The publication the copy names, and the one its exports name (as analysts read them)."""
    listing = settings.exports_dir / "marts" / "_publication.json"
    return (
        publication_info(settings.warehouse)["publication_id"],
        json.loads(listing.read_text(encoding="utf-8"))["publication_id"],
    )


@pytest.mark.parametrize("point", [p for p in CRASH_POINTS if p.startswith("publish:")])
def test_a_publication_killed_at_any_point_switches_the_copy_and_its_exports_together(built, point):
    first = publish(built)
    write_build(built.build_warehouse, values=5)
    done = subprocess.run(
        [sys.executable, "-c", KILLED_PUBLISH, str(built.warehouse), str(TESTS_DIR)],
        env={**os.environ, "KPI_CRASH_AT": point},
        capture_output=True,
        text=True,
    )
    assert done.returncode == -9, done.stderr  # killed there (SIGKILL), not failed elsewhere
    in_place, exported = published_ids(built)
    assert in_place == exported  # never two publications at once
    switched = point == "publish:switched"
    assert (in_place == first.publication_id) != switched
    rows = fetch_rows(built.warehouse, "select count(*) from marts.fct_indicator_values")
    assert rows == [(5 if switched else 3,)]
    assert verify_publication(built).intact
    # the next publication removes what the killed one left
    third = publish(built)
    assert published_ids(built) == (third.publication_id, third.publication_id)
    publications = built.warehouse.parent / ".publications"
    assert {p.name for p in publications.iterdir()} == {"current", third.publication_id, in_place}
    # the previous publication stays whole until the next one: a reader that resolved the
    # link just before the switch opens its file after it
    assert (publications / in_place / "warehouse.duckdb").exists()
    assert (publications / in_place / "marts" / "_publication.json").exists()
    assert verify_publication(built).intact


def test_the_first_publication_after_the_earlier_layout_links_both_paths_through_current(built):
    """Before: ``warehouse.duckdb`` a file replaced by rename, ``exports/marts`` a link
    replaced afterwards (a kill in between left two publications). The next publication makes
    both paths links through ``.publications/current``, then removes the earlier versions."""
    first = publish(built)
    publications = built.warehouse.parent / ".publications"
    marts = built.exports_dir / "marts"
    legacy = built.exports_dir / ".versions" / first.publication_id
    shutil.copytree(publications / first.publication_id / "marts", legacy / "marts")
    marts.unlink()
    marts.symlink_to(f".versions/{first.publication_id}/marts")
    copy = Path(os.path.realpath(built.warehouse))
    built.warehouse.unlink()
    shutil.copy2(copy, built.warehouse)
    shutil.rmtree(publications)
    assert not built.warehouse.is_symlink() and verify_publication(built).intact
    second = publish(built)
    assert os.readlink(built.warehouse) == ".publications/current/warehouse.duckdb"
    assert os.readlink(marts) == "../.publications/current/marts"
    assert published_ids(built) == (second.publication_id, second.publication_id)
    assert legacy.exists()  # kept one more publication, for readers still in it
    assert verify_publication(built).intact
    publish(built)
    assert not (built.exports_dir / ".versions").exists()
    assert verify_publication(built).intact


def test_a_warehouse_from_before_the_split_becomes_the_build(tmp_path):
    settings = settings_for(tmp_path / "warehouse.duckdb")
    write_build(settings.warehouse)  # the old layout: the pipeline wrote warehouse.duckdb
    assert ensure_build(settings) == settings.build_warehouse
    assert settings.build_warehouse.exists() and not settings.warehouse.exists()
    publish(settings)
    assert is_published_copy(settings.warehouse)
    assert ensure_build(settings) == settings.build_warehouse  # a publication is never moved


def test_nothing_to_publish_is_an_error(tmp_path):
    with pytest.raises(PublishError):
        publish(settings_for(tmp_path / "warehouse.duckdb"))


def test_kpi_publish_refuses_after_blocking_failures_unless_forced(built, capsys):
    con = duckdb.connect(str(built.build_warehouse))
    con.execute(
        "create schema audit; create table audit.check_results (run_id varchar, "
        "check_name varchar, asset varchar, passed boolean, blocking boolean, "
        "severity varchar, description_fr varchar, checked_at timestamp); "
        "insert into audit.check_results values ('r1', 'marts_fct', 'marts/fct', false, true, "
        "'ERROR', 'valeur hors bornes', now())"
    )
    con.close()
    args = ["publish", "--warehouse", str(built.warehouse)]
    assert main(args) == 3
    assert not built.warehouse.exists()
    assert main([*args, "--force"]) == 0
    assert "forcée" in publication_info(built.warehouse)["note"]


def test_kpi_publish_says_what_it_does_unless_quiet(built, capsys, monkeypatch):
    monkeypatch.delenv("KPI_PROGRESS", raising=False)
    assert main(["publish", "--warehouse", str(built.warehouse)]) == 0
    err = capsys.readouterr().err
    assert "publication de la copie des analystes" in err and " en place" in err
    assert main(["--quiet", "publish", "--warehouse", str(built.warehouse)]) == 0
    assert "publication de la copie" not in capsys.readouterr().err


# --- the published copy changed by hand: kpi verify reports it, kpi publish repairs it ---------


def _as_root(path: Path, *statements: str) -> None:
    """What root can do to the read-only published copy: make it writable, change it, put
    the read-only mode back."""
    path.chmod(0o644)
    con = duckdb.connect(str(path))
    try:
        for statement in statements:
            con.execute(statement)
    finally:
        con.close()
    path.chmod(0o444)


def _verify(settings: Settings, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(
        ["verify", "--warehouse", str(settings.warehouse), "--releases", str(settings.releases_dir)]
    )
    return code, capsys.readouterr().out


TAMPERED = "update marts.fct_indicator_values set value = 99 where indicator_id = 'indicator_1'"


def test_kpi_verify_reports_a_published_table_changed_by_hand(built, capsys):
    publish(built)
    _as_root(
        built.warehouse,
        TAMPERED,
        "delete from staging.stg_eau_reseau",
        "create view marts.extra as select 1 as x",
    )
    check = verify_publication(built)
    assert not check.intact
    assert check.problems == [
        "copie publiée — table marts.fct_indicator_values : contenu différent de celui publié "
        "(empreinte : valeurs, colonnes ou commentaires modifiés)",
        "copie publiée — table staging.stg_eau_reseau : 0 ligne(s) au lieu de 1 publiée(s)",
        "copie publiée — vue marts.extra : absente de la liste des tables publiées "
        "(publication.tables), ajoutée depuis",
    ]  # the Parquet export still holds the published rows: not reported
    code, out = _verify(built, capsys)
    assert code == 3
    assert "ÉCART : copie publiée — table marts.fct_indicator_values : contenu différent" in out
    assert "3 écart(s) dans la copie publiée" in out
    assert str(built.warehouse.parent) not in out  # file names only, no internal path


def test_a_publication_rewrites_a_published_table_changed_by_hand(built, capsys):
    publish(built)
    _as_root(built.warehouse, TAMPERED, "create view marts.extra as select 1 as x")
    second = publish(built)  # the build did not change: everything else is kept
    assert second.repaired == ["marts.fct_indicator_values"]
    assert "marts.fct_indicator_values" not in second.reused
    assert sorted(second.reused) == sorted(set(second.tables) - {"marts.fct_indicator_values"})
    value = "select value from marts.fct_indicator_values where indicator_id = 'indicator_1'"
    assert (
        fetch_rows(built.warehouse, value) == fetch_rows(built.build_warehouse, value) == [(1.0,)]
    )
    assert "marts.extra" not in {
        f"{s}.{t}"
        for s, t in fetch_rows(built.warehouse, "select schema_name, view_name from duckdb_views()")
    }
    assert verify_publication(built).intact
    code, out = _verify(built, capsys)
    assert code == 0 and "intègres" in out and "ÉCART" not in out


def test_a_log_left_by_a_writer_killed_on_the_published_copy_is_reported_then_removed(
    built, capsys
):
    """DuckDB replays a ``.wal`` beside a file onto whatever file has that name: a log left
    on the published copy is reported, and the next publication, in a folder of its own, is
    never replayed from it."""
    publish(built)
    built.warehouse.chmod(0o644)
    killed = (
        "import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
        f"con.execute({TAMPERED!r}); os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", killed, str(built.warehouse)], check=False)
    built.warehouse.chmod(0o444)
    # DuckDB writes the log beside the file the link designates: the publication's folder
    wal = Path(os.path.realpath(built.warehouse) + ".wal")
    assert wal.exists()
    problems = verify_publication(built).problems
    assert any("journal d'écriture warehouse.duckdb.wal présent" in p for p in problems)
    assert any("table marts.fct_indicator_values : contenu différent" in p for p in problems)
    publish(built)  # a new folder: the log stays with the previous file, which it concerns
    assert not Path(os.path.realpath(built.warehouse) + ".wal").exists()
    assert not built.warehouse.with_name("warehouse.duckdb.wal").exists()
    value = "select value from marts.fct_indicator_values where indicator_id = 'indicator_1'"
    assert fetch_rows(built.warehouse, value) == [(1.0,)]
    assert _verify(built, capsys)[0] == 0


def test_kpi_verify_reports_a_changed_parquet_export(built, capsys):
    publish(built)
    marts = built.exports_dir / "marts"
    changed = marts / "fct_indicator_values.parquet"
    tmp = changed.with_name("changed.tmp")
    duckdb.sql(
        f"copy (select * replace (value + 1 as value) from '{changed}') to '{tmp}' (format parquet)"
    )
    os.replace(tmp, changed)
    (marts / "p2_indicators.parquet").unlink()
    (marts / "autre.parquet").write_bytes((marts / "_publication.json").read_bytes())
    problems = verify_publication(built).problems
    assert problems == [
        "exports Parquet — exports/marts/fct_indicator_values.parquet : contenu différent de "
        "celui de la table publiée marts.fct_indicator_values",
        "exports Parquet — exports/marts/p2_indicators.parquet : absent (table publiée "
        "marts.p2_indicators)",
        "exports Parquet — exports/marts/autre.parquet : aucune table publiée de ce nom, "
        "fichier ajouté depuis",
    ]
    code, out = _verify(built, capsys)
    assert code == 3 and "ÉCART : exports Parquet — exports/marts/fct_indicator_values" in out
    # the next publication writes the exports again
    publish(built)
    assert _verify(built, capsys)[0] == 0


def test_an_untouched_publication_verifies_clean(built, capsys):
    code, out = _verify(built, capsys)  # nothing published yet: information, not an error
    assert code == 0 and "Copie publiée : aucune pour l'instant" in out
    first = publish(built)
    check = verify_publication(built)
    assert check.intact and check.warnings == []
    assert check.publication_id == first.publication_id
    assert (check.tables, check.exports) == (len(first.tables), 2)
    write_build(built.build_warehouse, values=5)  # an incremental publication verifies too
    second = publish(built)
    assert second.reused and second.repaired == []
    code, out = _verify(built, capsys)
    assert code == 0
    assert f"Copie publiée {second.publication_id} (warehouse.duckdb" in out and "intègres" in out
    # the read-only mode is part of what was published
    built.warehouse.chmod(0o644)
    assert verify_publication(built).problems == [
        "copie publiée — warehouse.duckdb : droits 0644 au lieu de 0444 (lecture seule) : "
        "le fichier a pu être modifié depuis sa publication"
    ]
    # the link must designate the publication in place
    first_version = built.warehouse.parent / ".publications" / first.publication_id / "marts"
    built.warehouse.chmod(0o444)
    (built.exports_dir / "marts").unlink()
    (built.exports_dir / "marts").symlink_to(os.path.relpath(first_version, built.exports_dir))
    assert verify_publication(built).problems == [
        f"exports Parquet — exports/marts : désigne la publication {first.publication_id} au "
        f"lieu de celle en place ({second.publication_id})"
    ]


def test_a_view_whose_rows_vary_between_reads_is_recorded_as_written(built, capsys):
    """A float sum in a view can differ in its last bits from one read to the next (the demo's
    intermediate.int_housing__indicator_values does): the fingerprint recorded is that of the
    rows written, so an untouched publication never reports it."""
    con = duckdb.connect(str(built.build_warehouse))
    con.execute("create view staging.v_varies as select random() as r from range(100)")
    con.close()
    for _ in range(2):
        publication = publish(built)
        assert "staging.v_varies" not in publication.reused + publication.repaired
        assert verify_publication(built).intact


def _successful_run(tags=None):
    from dagster import DagsterInstance, job, op

    @op
    def nothing():
        return None

    @job
    def kpi_run():
        nothing()

    instance = DagsterInstance.ephemeral()
    result = kpi_run.execute_in_process(instance=instance, tags=tags)
    return kpi_run, instance, result


def test_sensor_publishes_after_a_dagster_run_without_blocking_failure(built):
    from dagster import build_run_status_sensor_context

    from dagster_project.defs.sensors import build_publication_sensor

    job, instance, result = _successful_run()
    sensor = build_publication_sensor(settings=built)
    context = build_run_status_sensor_context(
        sensor_name="publish_after_run",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    sensor(context)
    assert publication_info(built.warehouse)["run_id"] == result.run_id


def test_sensor_leaves_the_runs_of_kpi_run_alone(built):
    """`kpi run` publishes by itself: the sensor does not publish its runs a second time."""
    from dagster import build_run_status_sensor_context

    from dagster_project.defs.instance import CLI_TRIGGER
    from dagster_project.defs.sensors import build_publication_sensor

    _job, instance, result = _successful_run(tags={"kpi/trigger": CLI_TRIGGER})
    context = build_run_status_sensor_context(
        sensor_name="publish_after_run",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    outcome = build_publication_sensor(settings=built)(context)
    assert "kpi run" in str(outcome)
    assert not built.warehouse.exists()


def test_sensor_does_not_publish_a_run_with_a_blocking_failure(built):
    from dagster import build_run_status_sensor_context

    from dagster_project.defs.sensors import build_publication_sensor

    job, instance, result = _successful_run()
    con = duckdb.connect(str(built.build_warehouse))
    con.execute(
        "create schema audit; create table audit.dbt_results (run_id varchar, unique_id varchar, "
        "status varchar, failures integer, message varchar, execution_time double, "
        "recorded_at timestamp default current_timestamp)"
    )
    con.execute(
        "insert into audit.dbt_results (run_id, unique_id, status, failures, message) "
        "values (?, 'test.kpi.unique_x', 'fail', 2, 'doublons')",
        [result.run_id],
    )
    con.close()
    sensor = build_publication_sensor(settings=built)
    context = build_run_status_sensor_context(
        sensor_name="publish_after_run",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_success_event(),
    )
    outcome = sensor(context)
    assert "bloquant" in str(outcome)
    assert not built.warehouse.exists()


def test_a_build_left_unreadable_by_a_killed_freeze_is_recovered(tmp_path):
    """DuckDB 1.5.5 cannot replay a logged `alter table ... add column` on a table with a
    `default current_timestamp` column; ensure_build replays it another way."""
    settings = settings_for(tmp_path / "warehouse.duckdb")
    build = settings.build_warehouse
    build.parent.mkdir(parents=True)
    con = duckdb.connect(str(build))
    con.execute(
        "create schema release; create table release.releases (release_id varchar, "
        "created_at timestamp not null default current_timestamp)"
    )
    con.close()
    killed = (
        "import duckdb, os, sys; con = duckdb.connect(sys.argv[1]); "
        "con.execute('alter table release.releases add column values_sha256 varchar'); "
        "con.execute(\"insert into release.releases (release_id) values ('RA-2025-v1')\"); "
        "os._exit(9)"
    )
    subprocess.run([sys.executable, "-c", killed, str(build)], check=False)
    with pytest.raises(duckdb.Error, match="replaying WAL"):
        duckdb.connect(str(build))
    ensure_build(settings)
    assert fetch_rows(build, "select release_id, values_sha256 from release.releases") == [
        ("RA-2025-v1", None)
    ]


def _ahead_files(settings: Settings) -> list[str]:
    return [p.name for p in (settings.warehouse.parent / ".publications").glob(".ahead-*")]


def _published_with_and_without(built: Settings, tmp_path: Path, ahead):
    """Publish ``built`` from the copy ``ahead`` prepared, and the same campaign (copied now)
    the way it was before: copied and read after the run. Both the same; no copy left."""
    other_root = tmp_path.with_name(tmp_path.name + "-other")
    shutil.copytree(built.warehouse.parent, other_root, symlinks=True)
    other = settings_for(other_root / "warehouse.duckdb")
    second = publish(built, ahead=ahead)
    ahead.discard()
    assert _ahead_files(built) == []
    reference = publish(other)
    assert sorted(second.reused) == sorted(reference.reused) and second.reused
    assert second.tables == reference.tables
    assert _content(built.warehouse) == _content(other.warehouse)
    assert verify_publication(built).intact
    return second, reference


def test_a_publication_started_from_the_copy_made_during_the_run_is_the_same(built, tmp_path):
    from dagster_project.warehouse.publication import CopyAhead

    publish(built)
    ahead = CopyAhead(built)  # kpi run: while its steps write the build
    write_build(built.build_warehouse, values=6)
    in_build(built, "comment on column raw.eau_reseau.lineaire_km is 'Linéaire en km.'")
    prepared = ahead.take()
    assert prepared is not None and prepared.hashes  # the copy read, its tables hashed
    second, reference = _published_with_and_without(built, tmp_path, ahead)
    assert "marts.fct_indicator_values" not in second.reused
    assert second.repaired == reference.repaired == []


def test_a_copy_made_during_the_run_is_not_used_after_another_publication(built):
    from dagster_project.warehouse.publication import CopyAhead

    publish(built)
    ahead = CopyAhead(built)
    assert ahead.take() is not None
    write_build(built.build_warehouse, values=6)
    publish(built)  # another publication meanwhile (kpi publish, the sensor)
    third = publish(built, ahead=ahead)  # starts again from the one in place
    ahead.discard()
    assert sorted(third.reused) == sorted(third.tables)
    assert _ahead_files(built) == []
    assert verify_publication(built).intact


def test_a_copy_made_for_a_run_that_publishes_nothing_is_removed(built):
    from dagster_project.warehouse.publication import CopyAhead

    publish(built)
    ahead = CopyAhead(built)
    assert ahead.take() is not None and _ahead_files(built)
    ahead.discard()  # a failed run, blocking checks
    assert _ahead_files(built) == []
    nothing = CopyAhead(settings_for(built.warehouse.parent / "none" / "warehouse.duckdb"))
    assert nothing.take() is None  # no publication yet: nothing to copy


def test_a_table_changed_by_hand_is_repaired_from_a_copy_made_during_the_run_too(built):
    from dagster_project.warehouse.publication import CopyAhead

    publish(built)
    _as_root(built.warehouse, TAMPERED)
    ahead = CopyAhead(built)
    second = publish(built, ahead=ahead)
    ahead.discard()
    assert second.repaired == ["marts.fct_indicator_values"]
    assert verify_publication(built).intact


def test_kpi_runs_publication_through_the_file_its_steps_left_open_is_the_same(
    built, tmp_path, monkeypatch
):
    """kpi run publishes inside ``kept_between_steps``: the publication reads the build through
    the file the last step left open (no checkpoint before, one in a thread meanwhile): the
    same publication as reading the closed file, nothing attached left, no log after the run."""
    from dagster_project.warehouse import access, publication

    checkpoints = []
    meanwhile = publication._checkpoint_meanwhile
    monkeypatch.setattr(
        publication,
        "_checkpoint_meanwhile",
        lambda con, alias: checkpoints.append(alias) or meanwhile(con, alias),
    )

    publish(built)
    other_root = tmp_path.with_name(tmp_path.name + "-closed")
    shutil.copytree(built.warehouse.parent, other_root, symlinks=True)
    other = settings_for(other_root / "warehouse.duckdb")
    build = built.build_warehouse
    with access.kept_between_steps(build):
        con = access.connect(build, purpose="l'exécution Dagster (dbt)", wait=5)
        con.execute("update marts.fct_indicator_values set value = value + 1")
        con.execute("comment on column raw.eau_reseau.lineaire_km is 'Linéaire en km.'")
        con.close()  # the last step: the file stays open, its log not yet written back
        assert build.with_name(build.name + ".wal").exists()
        second = publish(built)
        # read through the open file (its checkpoint meanwhile); each copy is checkpointed
        # while its exports are written
        assert checkpoints == [TARGET_ALIAS, build.stem, TARGET_ALIAS]
        with access.reading_kept_file(build, "test") as kept:
            rows = kept.execute("select database_name from duckdb_databases()").fetchall()
        assert {r[0] for r in rows} <= {build.stem, "system", "temp"}  # the copy detached
    assert not build.with_name(build.name + ".wal").exists()
    in_build(
        other,
        "update marts.fct_indicator_values set value = value + 1",
        "comment on column raw.eau_reseau.lineaire_km is 'Linéaire en km.'",
    )
    reference = publish(other)
    assert sorted(second.reused) == sorted(reference.reused) and second.reused
    assert "marts.fct_indicator_values" not in second.reused
    assert second.tables == reference.tables
    assert _content(built.warehouse) == _content(other.warehouse)
    assert verify_publication(built).intact


def test_a_publication_failing_on_the_open_file_leaves_it_to_the_run(built, monkeypatch):
    from dagster_project.warehouse import access, publication

    publish(built)
    before = publication_info(built.warehouse)
    build = built.build_warehouse
    monkeypatch.setattr(
        publication, "_write_exports", lambda *a: (_ for _ in ()).throw(OSError("disque plein"))
    )
    with access.kept_between_steps(build):
        access.connect(build, purpose="dbt", wait=5).close()
        with pytest.raises(OSError, match="disque plein"):
            publish(built)
        with access.reading_kept_file(build, "test") as kept:  # still open, the copy detached
            rows = kept.execute("select database_name from duckdb_databases()").fetchall()
            assert {r[0] for r in rows} <= {build.stem, "system", "temp"}
    assert publication_info(built.warehouse) == before
    assert [
        p.name
        for p in (built.warehouse.parent / ".publications").iterdir()
        if not p.name.startswith(("current", before["publication_id"]))
    ] == []


def test_a_copy_made_by_the_runs_worker_process_gives_the_same_publication(
    built, tmp_path, monkeypatch
):
    """In a run of the warm process, CopyAhead hands the copy to the run's worker process
    (gx_worker.start_job): the prepared copy comes back pickled from another process, and the
    publication started from it is the one a copy made in the run's process gives."""
    import importlib
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from dagster_project.quality import gx_worker
    from dagster_project.warehouse.publication import CopyAhead

    pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
    futures = []

    def start_job(target: str, *args) -> int:  # the worker's side, in another process
        module, _, name = target.partition(":")
        futures.append(pool.submit(getattr(importlib.import_module(module), name), *args))
        return len(futures) - 1

    monkeypatch.setattr(gx_worker, "start_job", start_job)
    monkeypatch.setattr(gx_worker, "job_result", lambda job: futures[job].result())
    publish(built)
    try:
        ahead = CopyAhead(built, gx_worker)  # as kpi run makes it
        assert futures  # handed to the worker, no thread of its own
        write_build(built.build_warehouse, values=6)
        prepared = ahead.take()
        assert prepared is not None and prepared.hashes
    finally:
        pool.shutdown()
    _published_with_and_without(built, tmp_path, ahead)
