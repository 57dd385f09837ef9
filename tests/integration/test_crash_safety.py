"""Nothing is lost when things go wrong: `kpi run`, `kpi publish` and `kpi freeze` killed
(SIGKILL, as a crash or the OOM killer would) during ingestion, during dbt build, at every
step of the publication and at every step of the freeze (``dagster_project.lib.crash.POINTS``:
the command kills itself where ``KPI_CRASH_AT`` says).

After each kill: the published copy opens and holds one complete publication, the one before
or the new one, and its Parquet exports are those of the same publication; the next command
(`kpi verify` here) recovers what a killed freeze left: the release is absent (no staging
folder, no journal left) or complete (recorded, anchored in releases/SHA256SUMS), and every
release verifies. Then the reruns complete, and the release they freeze is byte-identical to
the one an uninterrupted run freezes; a rerun with no new delivery changes nothing.

Slow (several real runs); it starts from the session's published campaign
(support.publishing.published_campaign) to save one, and the uninterrupted reference (its own
copy, its own Dagster instance) runs in the background while the crashes go on: the two
share no file, so neither can influence the other, and the comparison waits for it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
from support.publishing import TODAY, copy_campaign, kpi, published_campaign

from dagster_project.lib.crash import POINTS
from dagster_project.release.verify import verify
from dagster_project.settings import PROJECT_ROOT, Settings
from dagster_project.warehouse.build import ensure_build

KPI = str(Path(sys.executable).parent / "kpi")
ADDED_2024 = sorted((PROJECT_ROOT / "sources" / "2024" / "water").glob("*.xlsx"))


def args_of(settings: Settings, command: str) -> list[str]:
    if command == "run":
        return [
            "run",
            "--sources",
            str(settings.sources_dir),
            "--warehouse",
            str(settings.warehouse),
            "--today",
            TODAY,
        ]
    return [
        "freeze",
        "--year",
        "2025",
        "--warehouse",
        str(settings.warehouse),
        "--releases",
        str(settings.releases_dir),
    ]


def killed_at(point: str, command: list[str], env: dict) -> str:
    """`kpi ...` killed (SIGKILL, by itself) at a named point of ``dagster_project.lib.crash``;
    returns its output."""
    done = subprocess.run(
        [KPI, *command],
        env={**os.environ, **env, "KPI_CRASH_AT": point},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stdout + done.stderr)
    return done.stdout + done.stderr


def recovered(settings: Settings, env: dict) -> str:
    """`kpi verify` after a kill: it recovers what a killed freeze left, then everything
    verifies (exit 0) and nothing of the killed freeze is left beside the releases."""
    done = kpi(
        "verify",
        "--warehouse",
        str(settings.warehouse),
        "--releases",
        str(settings.releases_dir),
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    if settings.releases_dir.exists():
        hidden = sorted(
            p.name
            for p in settings.releases_dir.iterdir()
            if p.name.startswith(".") and p.name != ".interrompues"
        )
        assert hidden == [], hidden  # no staging folder, no journal
    return done.stdout


def kill_at(command: list[str], env: dict, marker=None, when=None, delay=0.0, timeout=600):
    """Start `kpi ...` in its own process group; SIGKILL the group when a stderr line matches
    ``marker`` (regex) or ``when()`` becomes true (polled). Returns (killed, stderr)."""
    proc = subprocess.Popen(
        [KPI, *command],
        env={**os.environ, **env, "KPI_PROGRESS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    killed = False
    deadline = time.monotonic() + timeout
    try:
        if marker is not None:
            pattern = re.compile(marker)
            for line in proc.stderr:
                seen.append(line)
                if pattern.search(line):
                    time.sleep(delay)
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
                if time.monotonic() > deadline:
                    break
        else:
            os.set_blocking(proc.stderr.fileno(), False)
            while proc.poll() is None and time.monotonic() < deadline:
                if when():
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.002)
    finally:
        if proc.poll() is None and not killed:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rest = proc.stderr.read() or ""
        proc.stderr.close()
    return killed, "".join(seen) + rest


class InBackground(threading.Thread):
    """`kpi` commands one after the other (each in its own process group), in a thread; stops
    at the first failure. ``join()`` waits for them; ``stop()`` kills the one running."""

    def __init__(self, commands: list[list[str]], env: dict):
        super().__init__(daemon=True)
        self.commands, self.env = commands, env
        self.results: list[subprocess.CompletedProcess] = []
        self.process: subprocess.Popen | None = None
        self.stopped = False
        self.start()

    def run(self) -> None:
        for command in self.commands:
            if self.stopped:
                return
            self.process = subprocess.Popen(
                [KPI, *command],
                env={**os.environ, **self.env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            out, err = self.process.communicate()
            done = subprocess.CompletedProcess(command, self.process.returncode, out, err)
            self.results.append(done)
            if done.returncode != 0:
                return

    def stop(self) -> None:
        self.stopped = True
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        self.join(timeout=60)


def published_state(settings: Settings) -> dict:
    """Row counts of every table of the published copy and of its Parquet exports; asserts
    they agree with the publication's own record (the copy is complete)."""
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        recorded = {
            f"{s}.{t}": n
            for s, t, n in con.execute(
                "select schema_name, table_name, row_count from publication.tables"
            ).fetchall()
        }
        actual = {
            name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in recorded
        }
        publication_id = con.execute("select publication_id from publication.info").fetchone()[0]
    finally:
        con.close()
    assert actual == recorded
    marts = settings.exports_dir / "marts"
    listing = json.loads((marts / "_publication.json").read_text(encoding="utf-8"))
    assert listing["publication_id"] == publication_id  # never two publications at once
    exported = {
        p.stem: duckdb.sql(f"select count(*) from '{p}'").fetchone()[0]
        for p in sorted(marts.glob("*.parquet"))
    }
    assert exported and all(recorded[f"marts.{name}"] == n for name, n in exported.items())
    return {"publication_id": publication_id, "tables": actual}


def assert_releases_intact(settings: Settings) -> list[str]:
    """Every release verifies (against the anchor too); no visible folder is a partial
    release."""
    visible = sorted(
        p.name
        for p in (settings.releases_dir.iterdir() if settings.releases_dir.exists() else [])
        if p.is_dir() and not p.name.startswith(".")
    )
    con = duckdb.connect(str(ensure_build(settings)), read_only=True)  # as `kpi verify`
    try:
        result = verify(con, settings.releases_dir)
    finally:
        con.close()
    assert result.intact, result.problems
    assert visible == sorted(result.checked)
    return visible


def release_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build_rows(settings: Settings, sql: str):
    con = duckdb.connect(str(ensure_build(settings)), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_kills_lose_nothing_and_reruns_give_the_same_release(tmp_path_factory):
    base = published_campaign(tmp_path_factory)
    root = tmp_path_factory.mktemp("crash")

    env = {"DAGSTER_HOME": str(root / "dagster_home")}

    def with_2024_deliveries(name: str) -> Settings:
        """The session's campaign, then the 2024 deliveries arrive (same files, same dates)."""
        settings = copy_campaign(base, root / name)
        for path in ADDED_2024:
            target = settings.sources_dir / "2024" / "water" / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        return settings

    # Reference: the same start, one uninterrupted run, frozen; in the background (its own
    # folder and Dagster instance), compared once the crashed warehouse is frozen too.
    reference = with_2024_deliveries("reference")
    reference_env = {"DAGSTER_HOME": str(root / "dagster_home_reference")}
    uninterrupted = InBackground(
        [args_of(reference, "run"), args_of(reference, "freeze")], reference_env
    )
    try:
        check_crashes(with_2024_deliveries("crashed"), env, reference, uninterrupted)
    finally:
        uninterrupted.stop()


def check_crashes(
    crashed: Settings, env: dict, reference: Settings, uninterrupted: InBackground
) -> None:
    # The crashed warehouse: same start, same deliveries, killed again and again.
    before = published_state(crashed)

    # 1. killed during ingestion (after the first accepted delivery)
    killed, log = kill_at(args_of(crashed, "run"), env, marker=r": [1-9]\d* acceptée")
    assert killed, log
    assert published_state(crashed) == before
    assert_releases_intact(crashed)

    # 2. killed during dbt build
    killed, log = kill_at(args_of(crashed, "run"), env, marker=r"dbt build : modèles", delay=3)
    assert killed, log
    assert published_state(crashed) == before
    assert_releases_intact(crashed)

    # 3. killed during the publication (the whole run done, the swap not yet)
    def publishing() -> bool:
        """A killed publication's folder is left (besides the one in place and the previous)."""
        folder = crashed.warehouse.parent / ".publications"
        return len([p for p in folder.iterdir() if not p.is_symlink()]) > 2

    killed, log = kill_at(args_of(crashed, "run"), env, marker=r"publication de la copie")
    assert killed, log
    after_publish_kill = published_state(crashed)
    assert_releases_intact(crashed)
    published = kpi("publish", "--warehouse", str(crashed.warehouse), env=env)
    assert published.returncode == 0, published.stdout + published.stderr
    new_state = published_state(crashed)
    assert after_publish_kill in (before, new_state)
    assert (
        new_state["tables"]["marts.fct_indicator_values"]
        > before["tables"]["marts.fct_indicator_values"]
    )  # the 2024 values are published now
    assert not publishing()  # the leftovers of the killed publication are gone

    # 4. killed at every step of a publication: one publication or the other, never a mix
    for point in [p for p in POINTS if p.startswith("publish:")]:
        before_kill = published_state(crashed)
        killed_at(point, ["publish", "--warehouse", str(crashed.warehouse)], env)
        after_kill = published_state(crashed)  # the copy and its exports: same publication
        if point == "publish:switched":
            assert after_kill["publication_id"] != before_kill["publication_id"]
        else:
            assert after_kill == before_kill
        recovered(crashed, env)
    new_state = published_state(crashed)

    # 5. killed at every step of the freeze: absent, or complete, once `kpi verify` ran
    freeze_points = [p for p in POINTS if p.startswith("freeze:")]
    for point in freeze_points[: freeze_points.index("freeze:renamed")]:
        killed_at(point, args_of(crashed, "freeze"), env)
        assert "gel interrompu" in recovered(crashed, env)
        assert assert_releases_intact(crashed) == []  # absent: the next freeze makes it
        assert published_state(crashed) == new_state
    # killed between its folder's rename and its commit: completed from its folder
    killed_at("freeze:renamed", args_of(crashed, "freeze"), env)
    out = recovered(crashed, env)
    assert "RA-2025-v1 : gel interrompu après l'écriture de son dossier" in out, out
    assert "pas encore dans la copie publiée" in out  # killed before its publication
    assert assert_releases_intact(crashed) == ["RA-2025-v1"]
    # the later steps, on revisions: killed after the commit, after the anchor
    expected = ["RA-2025-v1"]
    for version, point in enumerate(freeze_points[freeze_points.index("freeze:renamed") + 1 :], 2):
        killed_at(point, [*args_of(crashed, "freeze"), "--reason", f"version {version}"], env)
        recovered(crashed, env)
        expected.append(f"RA-2025-v{version}")
        assert assert_releases_intact(crashed) == expected
    # killed while the freeze republishes the analysts' copy
    version = len(expected) + 1
    killed_at("publish:ready", [*args_of(crashed, "freeze"), "--reason", f"version {version}"], env)
    expected.append(f"RA-2025-v{version}")
    assert "pas encore dans la copie publiée" in recovered(crashed, env)
    assert assert_releases_intact(crashed) == expected
    published = kpi("publish", "--warehouse", str(crashed.warehouse), env=env)
    assert published.returncode == 0, published.stdout + published.stderr
    assert "pas encore" not in recovered(crashed, env)
    assert not publishing()
    assert published_state(crashed)["tables"]["release.releases"] == len(expected)
    anchor = (crashed.releases_dir / "SHA256SUMS").read_text(encoding="utf-8")
    assert [line.split("  ")[1] for line in anchor.splitlines() if "manifest" in line] == [
        f"{release_id}/manifest.json" for release_id in expected
    ]

    # The release after all those crashes is byte for byte the uninterrupted one.
    uninterrupted.join(timeout=900)
    assert [r.returncode for r in uninterrupted.results] == [0, 0], [
        r.stdout + r.stderr for r in uninterrupted.results
    ]
    expected_release = release_files(reference.releases_dir / "RA-2025-v1")
    assert {"values.csv", "values.parquet", "manifest.json"} <= set(expected_release)
    got = release_files(crashed.releases_dir / "RA-2025-v1")
    assert sorted(got) == sorted(expected_release)
    different = [name for name in got if got[name] != expected_release[name]]
    assert different == []

    # Rerunning with no new delivery changes nothing.
    deliveries = "select * from ingest.deliveries order by delivery_id"
    values = "select * from marts.fct_indicator_values order by all"
    deliveries_before = build_rows(crashed, deliveries)
    values_before = build_rows(crashed, values)
    rerun = kpi(*args_of(crashed, "run"), env=env)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    # « rien à faire » when its last run was published since (warehouse/inputs.py), else a run
    # that accepts nothing
    assert "rien à faire" in rerun.stdout or "0 acceptée(s), 0 rejetée(s)" in rerun.stdout
    assert build_rows(crashed, deliveries) == deliveries_before
    assert build_rows(crashed, values) == values_before
    assert published_state(crashed)["tables"]["marts.fct_indicator_values"] == len(values_before)
