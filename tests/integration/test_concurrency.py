"""Analysts query while the pipeline writes: 10 reader processes loop over the published
copy (and its Parquet export) while 6 publications replace it, each with new content: first
a real `kpi run` (a delivery changes: ingestion, dbt build, checks, publication), then 5
`kpi publish` of a build database changed in between. No reader error, and every read sees
one complete publication: its checksum of marts.fct_indicator_values is the checksum of the
publication it names.

Readers only ever open the published copy and its exports, which nothing but
``dagster_project.warehouse.publication.publish`` writes (`kpi run` calls it after the run, `kpi publish`
calls it directly): the swap under readers is the same code path whichever command runs it.
One full `kpi run` shows a run does not disturb readers; the other publications skip the
dbt build (one value of the build's marts changes, in one statement, as a run would change
it), so more swaps happen under readers for a fraction of the time.

Also: two `kpi freeze` started at the same moment run one after the other (no DuckDB lock
error).

Slow; starts from the session's published campaign (support.publishing.published_campaign).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import openpyxl
from support.publishing import TODAY, copy_campaign, kpi, published_campaign

READERS = 10
RUNS = 1  # full `kpi run`, a delivery changed
PUBLISHES = 5  # `kpi publish` after a change of the build
CHECKSUM = (
    "select year, count(*), sum(hash(indicator_id, code_insee, value)) "
    "from {table} group by year order by year"
)

READER = r"""
import json, os, sys, time, traceback
import duckdb

warehouse, exports, stop, out, index = sys.argv[1:6]
index = int(index)
checksum = sys.argv[6]
reads, errors = [], []
i = 0
while not os.path.exists(stop):
    i += 1
    try:
        if index % 2 == 0 or i % 4:
            con = duckdb.connect(warehouse, read_only=True)
            try:
                pid = con.execute("select publication_id from publication.info").fetchone()[0]
                rows = con.execute(checksum.format(table="marts.fct_indicator_values")).fetchall()
                recorded = con.execute(
                    "select row_count from publication.tables where schema_name = 'marts' "
                    "and table_name = 'fct_indicator_values'"
                ).fetchone()[0]
                assert recorded == sum(r[1] for r in rows), (recorded, rows)
            finally:
                con.close()
            kind = "db"
        else:
            folder = os.path.realpath(os.path.join(exports, "marts"))
            with open(os.path.join(folder, "_publication.json"), encoding="utf-8") as handle:
                pid = json.load(handle)["publication_id"]
            parquet = os.path.join(folder, "fct_indicator_values.parquet").replace("'", "''")
            rows = duckdb.sql(checksum.format(table=f"'{parquet}'")).fetchall()
            kind = "parquet"
        reads.append([kind, pid, repr(rows)])
    except Exception:
        errors.append(traceback.format_exc())
    time.sleep(0.25)  # about 40 reads a second in all: readers, not a load test
with open(out, "w", encoding="utf-8") as handle:
    json.dump({"reads": reads, "errors": errors}, handle)
"""


def checksum_of(path) -> tuple[str, str]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        pid = con.execute("select publication_id from publication.info").fetchone()[0]
        rows = con.execute(CHECKSUM.format(table="marts.fct_indicator_values")).fetchall()
    finally:
        con.close()
    return pid, repr(rows)


def change_delivery(path, step: int) -> None:
    """A new version of the delivery: one month's produced volume changes."""
    workbook = openpyxl.load_workbook(path)
    sheet = workbook["Volumes 2025"]
    assert sheet.cell(row=3, column=3).value == "Volume produit m3"
    sheet.cell(row=5, column=3).value = float(sheet.cell(row=5, column=3).value) + 100 * step
    workbook.save(path)


def change_build(build, step: int) -> None:
    """What a run would write into the build: one value of marts.fct_indicator_values."""
    con = duckdb.connect(str(build))
    try:
        (changed,) = con.execute(
            "update marts.fct_indicator_values set value = value + ? where year = 2025 "
            "and code_insee is null and indicator_id = 'water_volume_produced'",
            [step],
        ).fetchone()
    finally:
        con.close()
    assert changed == 1


def test_readers_never_see_a_partial_publication(tmp_path_factory):
    base = published_campaign(tmp_path_factory)
    root = tmp_path_factory.mktemp("concurrency")
    settings = copy_campaign(base, root / "campaign")
    env = {"DAGSTER_HOME": str(root / "dagster_home")}
    delivery = settings.sources_dir / "2025" / "water" / "eau_volumes_2025.xlsx"
    pid, rows = checksum_of(settings.warehouse)
    published = {pid: rows}

    stop = root / "stop"
    readers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                READER,
                str(settings.warehouse),
                str(settings.exports_dir),
                str(stop),
                str(root / f"reader-{i}.json"),
                str(i),
                CHECKSUM,
            ]
        )
        for i in range(READERS)
    ]
    try:
        time.sleep(1)
        for step in range(1, RUNS + PUBLISHES + 1):
            if step <= RUNS:
                time.sleep(1.1)  # a distinct modification time: the new file is the one in force
                change_delivery(delivery, step)
                command = ["run", "--sources", str(settings.sources_dir), "--today", TODAY]
                command += ["--select", "eau_volumes"]
            else:
                time.sleep(0.5)  # readers read each publication for a while
                change_build(settings.build_warehouse, step)
                command = ["publish"]
            result = kpi(*command, "--warehouse", str(settings.warehouse), env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            pid, rows = checksum_of(settings.warehouse)
            assert pid not in published and rows not in published.values()
            published[pid] = rows
        time.sleep(1)
    finally:
        stop.touch()
        for reader in readers:
            reader.wait(timeout=120)

    reads, errors = [], []
    for i in range(READERS):
        outcome = json.loads((root / f"reader-{i}.json").read_text(encoding="utf-8"))
        reads += outcome["reads"]
        errors += outcome["errors"]
    assert errors == []
    assert len(published) == RUNS + PUBLISHES + 1
    wrong = [r for r in reads if published.get(r[1]) != r[2]]
    assert wrong == []
    seen = {r[1] for r in reads}
    assert len(seen) >= 3, seen  # the readers did read across publications
    assert {r[0] for r in reads} == {"db", "parquet"}


def test_two_freezes_at_once_run_one_after_the_other(tmp_path_factory):
    """Two people freeze the same year at the same moment: the second waits for the first
    (`kpi freeze` holds the session and the build's write access from start to end), then is
    refused in French because the release exists; never a DuckDB lock error or traceback."""
    base = published_campaign(tmp_path_factory)
    root = tmp_path_factory.mktemp("two_freezes")
    settings = copy_campaign(base, root / "campaign")
    env = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
    command = [str(Path(sys.executable).parent / "kpi"), "freeze", "--year", "2025"]
    command += ["--warehouse", str(settings.warehouse), "--releases", str(settings.releases_dir)]
    both = [
        subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(timeout=900), *p.communicate()) for p in both)
    assert [code for code, _out, _err in outcomes] == [0, 3], outcomes
    for _code, out, err in outcomes:
        assert "Traceback" not in err and "Could not set lock" not in out + err, err
    assert "RA-2025-v1 existe déjà" in outcomes[1][2]
    verified = kpi("verify", "--warehouse", str(settings.warehouse), env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "1 publication(s) vérifiée(s), intègre(s) : RA-2025-v1" in verified.stdout
