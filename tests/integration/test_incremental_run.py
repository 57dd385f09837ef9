"""``kpi run`` does only what changed (``dagster_project.warehouse.inputs``), on a real campaign.

A second run with the same inputs says « rien à faire » and touches nothing; a re-delivery of
one source is named, processed with what depends on it only, and published, with the other
parts' latest check and dbt results carried forward: the evidence a release would state is the
same as after the full run; then nothing again.
The times are printed (``pytest -s``) for bench/README.md, never asserted.
"""

from __future__ import annotations

import os
import time

import duckdb
from support.publishing import TODAY, copy_campaign, kpi, published_campaign

from dagster_project.release.gate import latest_run_id, validation_summary
from dagster_project.warehouse.inputs import current_publication


def _evidence(settings):
    con = duckdb.connect(str(settings.build_warehouse), read_only=True)
    try:
        run_id = latest_run_id(con)
        carried = con.execute(
            "select count(*) from audit.dbt_results where run_id = ? and carried_from is not null",
            [run_id],
        ).fetchone()[0]
        own = con.execute(
            "select count(*) from audit.check_results where run_id = ?", [run_id]
        ).fetchone()[0]
        return run_id, validation_summary(con, run_id), carried, own
    finally:
        con.close()


def _run(settings):
    started = time.perf_counter()
    done = kpi(
        "run",
        "--sources",
        str(settings.sources_dir),
        "--warehouse",
        str(settings.warehouse),
        "--today",
        TODAY,
        env={"DAGSTER_HOME": str(settings.warehouse.parent / "dagster_home")},
    )
    return done, time.perf_counter() - started


def test_nothing_changed_then_one_re_delivery_then_nothing(tmp_path_factory, tmp_path):
    settings = copy_campaign(published_campaign(tmp_path_factory), tmp_path / "campagne")
    publication = current_publication(settings)
    assert publication
    full_run, full_evidence, carried, full_checks = _evidence(settings)
    assert carried == 0 and full_evidence["checks"] and full_evidence["dbt"]

    done, idle = _run(settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rien à faire" in done.stdout, done.stdout + done.stderr
    assert current_publication(settings) == publication  # nothing published, nothing written

    delivery = settings.sources_dir / "2025" / "water" / "eau_reseau_2025.xlsx"
    stat = delivery.stat()
    os.utime(delivery, ns=(stat.st_atime_ns, stat.st_mtime_ns + 60_000_000_000))
    done, partial = _run(settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "seules les livraisons de eau_reseau ont changé" in done.stderr, done.stderr
    assert current_publication(settings) != publication  # processed and published
    limited_run, evidence, carried, own_checks = _evidence(settings)
    assert limited_run != full_run
    # only eau_reseau and what depends on it ran again; the rest was carried forward, and the
    # evidence is the full run's (every suite, every dbt node, same outcomes)
    assert 0 < own_checks < full_checks and carried > 0
    assert evidence == full_evidence

    done, idle_again = _run(settings)
    assert done.returncode == 0 and "rien à faire" in done.stdout, done.stdout + done.stderr
    print(
        f"\nkpi run, nothing changed: {idle:.1f} s; one re-delivery: {partial:.1f} s; "
        f"nothing changed again: {idle_again:.1f} s"
    )
