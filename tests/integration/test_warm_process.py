"""``kpi run`` through the warm process (cli/warm.py), the way a person uses it: the real
``kpi`` console script, ``kpi warm``, a published campaign. A forced full run gives the same
figures and the same evidence as the run made in its own process; a re-delivery is processed
alone; nothing changed says « rien à faire »; Ctrl-C on the person's ``kpi`` stops the run and
leaves the publication as it was; the next run works; ``kpi warm --stop`` stops it. The times
are printed (``pytest -s``), never asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
from support.publishing import TODAY, copy_campaign, kpi, published_campaign

from dagster_project.cli import warm
from dagster_project.release.gate import latest_run_id, validation_summary
from dagster_project.warehouse.inputs import current_publication

VALUES = (
    "select indicator_id, year, code_insee, value, unit from marts.fct_indicator_values "
    "order by all"
)


def _values(settings):
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        return con.execute(VALUES).fetchall()
    finally:
        con.close()


def _evidence(settings):
    con = duckdb.connect(str(settings.build_warehouse), read_only=True)
    try:
        return validation_summary(con, latest_run_id(con))
    finally:
        con.close()


def test_kpi_run_through_the_warm_process(tmp_path_factory, tmp_path):
    settings = copy_campaign(published_campaign(tmp_path_factory), tmp_path / "campagne")
    sockets = tmp_path / "w"
    sockets.mkdir(mode=0o700)
    env = {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        warm.ENV: "1",
        warm.DIR_ENV: str(sockets),
    }
    args = [
        "--sources",
        str(settings.sources_dir),
        "--warehouse",
        str(settings.warehouse),
        "--today",
        TODAY,
    ]

    def run(*extra):
        started = time.perf_counter()
        done = kpi("run", *extra, *args, env=env, cwd=tmp_path)
        print(
            f"kpi run {' '.join(extra)} (processus préchauffé) : {time.perf_counter() - started:.1f} s"
        )
        return done

    cold_values, cold_evidence = _values(settings), _evidence(settings)
    try:
        started = time.perf_counter()
        ready = kpi("warm", env=env, cwd=tmp_path)
        print(f"kpi warm : {time.perf_counter() - started:.1f} s")
        assert ready.returncode == 0 and "processus préchauffé prêt" in ready.stdout, (
            ready.stdout + ready.stderr
        )

        done = run("--force")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "chargement de Dagster et de dbt" in done.stderr  # its progress lines, as here
        assert "1 exécution(s)" in kpi("warm", "--status", env=env, cwd=tmp_path).stdout
        assert _values(settings) == cold_values
        assert _evidence(settings) == cold_evidence  # every suite and dbt node, same outcomes

        delivery = settings.sources_dir / "2025" / "water" / "eau_reseau_2025.xlsx"
        stat = delivery.stat()
        os.utime(delivery, ns=(stat.st_atime_ns, stat.st_mtime_ns + 60_000_000_000))
        done = run()
        assert done.returncode == 0, done.stdout + done.stderr
        assert "seules les livraisons de eau_reseau ont changé" in done.stderr, done.stderr
        assert _evidence(settings) == cold_evidence

        done = run()
        assert done.returncode == 0 and "rien à faire" in done.stdout, done.stdout + done.stderr

        # Ctrl-C on the person's kpi while dbt builds: the run stops, nothing is published
        publication = current_publication(settings)
        person = subprocess.Popen(
            [str(Path(sys.executable).parent / "kpi"), "run", "--force", *args],
            env={**os.environ, **env},
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        said = []
        for line in person.stderr:
            said.append(line)
            if "dbt build" in line:
                person.send_signal(signal.SIGINT)
                break
        person.stderr.read()
        assert person.wait(timeout=300) != 0, "".join(said)
        assert current_publication(settings) == publication

        done = run("--force")
        assert done.returncode == 0, done.stdout + done.stderr
        assert _values(settings) == cold_values
        assert "5 exécution(s)" in kpi("warm", "--status", env=env, cwd=tmp_path).stdout
    finally:
        stopped = kpi("warm", "--stop", env=env, cwd=tmp_path)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if kpi("warm", "--status", env=env, cwd=tmp_path).returncode:
                break
            time.sleep(0.5)
    assert "arrêté" in stopped.stdout
    assert kpi("warm", "--status", env=env, cwd=tmp_path).returncode == 1


def test_the_first_kpi_run_starts_the_warm_process_the_next_one_uses(tmp_path_factory, tmp_path):
    """From a person's shell (none of the variables kpi sets for itself while it runs), the
    first `kpi run` runs in its own process and leaves a warm process the next `kpi run` of the
    same shell uses. (A run's own settings and telemetry variables once made the warm process
    it started one no later run could use.)"""
    settings = copy_campaign(published_campaign(tmp_path_factory), tmp_path / "campagne")
    sockets = tmp_path / "w"
    sockets.mkdir(mode=0o700)
    kept = {"KPI_PSEUDONYM_KEY", "KPI_PSEUDONYM_KEY_FILE"}
    shell = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith("KPI_") or k in kept)
        and k not in ("DAGSTER_DISABLE_TELEMETRY", "DBT_SEND_ANONYMOUS_USAGE_STATS", "DO_NOT_TRACK")
    }
    shell.update(
        {
            "DAGSTER_HOME": str(tmp_path / "dagster_home"),
            warm.ENV: "1",
            warm.DIR_ENV: str(sockets),
        }
    )
    command = [str(Path(sys.executable).parent / "kpi")]
    args = ["--sources", str(settings.sources_dir), "--warehouse", str(settings.warehouse)]
    args += ["--today", TODAY]

    def kpi_here(*argv):
        return subprocess.run(
            [*command, *argv], env=shell, cwd=tmp_path, capture_output=True, text=True
        )

    try:
        first = kpi_here("run", "--force", *args)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "un processus préchauffé se prépare" in first.stderr
        deadline = time.monotonic() + 180
        while kpi_here("warm", "--status").returncode and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "0 exécution(s)" in kpi_here("warm", "--status").stdout
        second = kpi_here("run", "--force", *args)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "un processus préchauffé se prépare" not in second.stderr
        assert "1 exécution(s)" in kpi_here("warm", "--status").stdout
    finally:
        kpi_here("warm", "--stop")
