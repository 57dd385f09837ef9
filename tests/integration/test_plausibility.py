"""The issue's scenario on the demo, through the `kpi` commands: a declared figure typed
×1000 is caught at the freeze, then withdrawn, or qualified in `kpi review` and frozen.
"""

from __future__ import annotations

import duckdb
from support.french import fr


def _kpi(demo, *args, **env):
    import os
    import subprocess
    import sys

    from support.demo import DEMO_TODAY
    from support.settings import SETTINGS_VARS

    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARS}
    environment.update(
        KPI_SOURCES=str(demo.sources),
        KPI_WAREHOUSE=str(demo.warehouse),
        KPI_RELEASES=str(demo.releases),
        KPI_TODAY=DEMO_TODAY,
        DAGSTER_HOME=str(demo.dagster_home),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-c", "import sys; from dagster_project.cli import main; sys.exit(main())"]
        + list(args),
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _declared(demo, indicator: str):
    con = duckdb.connect(str(demo.warehouse), read_only=True)
    try:
        return con.execute(
            "select value from marts.fct_indicator_values where indicator_id = ? and year = 2025 "
            "and code_insee is null",
            [indicator],
        ).fetchone()[0]
    finally:
        con.close()


def test_a_thousandfold_declaration_is_caught_qualified_or_withdrawn(tmp_path, demo_warehouse):
    import os
    import shutil

    import openpyxl

    assert demo_warehouse.returncode in (0, 3), demo_warehouse.stderr[-3000:]
    demo = demo_warehouse.copy(tmp_path / "demo")
    from dagster_project.settings import PROJECT_ROOT

    # the steering department's campaign file, which `kpi status` reads
    shutil.copy(PROJECT_ROOT / "sources" / "2025" / "campagne.yml", demo.sources / "2025")
    original = demo.sources / "2025" / "water" / "indicateurs_declares_2025.xlsx"
    assert _declared(demo, "wwtp_count") == 15
    # the department re-delivers its declared figures with one typed ×1000
    mistake = original.with_name("indicateurs_declares_2025_v2.xlsx")
    workbook = openpyxl.load_workbook(original)
    sheet = workbook.active
    [row] = [r for r in sheet.iter_rows() if r[0].value == "wwtp_count"]
    row[2].value = 15_000
    workbook.save(mistake)
    os.utime(mistake, (original.stat().st_mtime + 60,) * 2)

    done = _kpi(demo, "run", "--select", "indicateurs_declares")
    assert done.returncode in (0, 3), done.stderr[-3000:]
    assert _declared(demo, "wwtp_count") == 15_000  # accepted: a plausible-looking file
    notice = mistake.with_name(mistake.name + ".a_confirmer.csv")
    assert "wwtp_count" in notice.read_text(encoding="utf-8-sig")
    status = _kpi(demo, "status", "--year", "2025")
    assert "1 valeur à confirmer" in status.stdout, status.stdout[-3000:]

    refused = _kpi(demo, "freeze", "--year", "2025")
    assert refused.returncode == 3, refused.stderr[-3000:]
    assert "valeur(s) atypique(s)" in refused.stderr and "wwtp_count" in refused.stderr
    assert fr("×1 000 en un an (15 → 15 000") in refused.stderr
    assert "Valeurs atypiques : 1 (1 à qualifier" in refused.stdout
    assert not demo.releases.exists() or not any(demo.releases.iterdir())

    # withdrawn: v2 removed, the original in force again, its figure back
    mistake.unlink()
    done = _kpi(demo, "run", "--select", "indicateurs_declares")
    assert done.returncode in (0, 3), done.stderr[-3000:]
    assert _declared(demo, "wwtp_count") == 15
    assert not notice.exists()

    # or qualified: the ×1000 put back, confirmed with a comment, then frozen
    workbook.save(mistake)
    os.utime(mistake, (original.stat().st_mtime + 120,) * 2)
    done = _kpi(demo, "run", "--select", "indicateurs_declares")
    assert _declared(demo, "wwtp_count") == 15_000
    reviewed = _kpi(
        demo,
        "review",
        "set",
        "--year",
        "2025",
        "--indicator",
        "wwtp_count",
        "--status",
        "ok",
        "--comment",
        "les micro-stations sont désormais comptées une à une (courriel du 12/01)",
        "--reviewer",
        "DPS",
    )
    assert reviewed.returncode == 0, reviewed.stderr
    frozen = _kpi(demo, "freeze", "--year", "2025", "--no-publish")
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    assert "qualifiée « sans anomalie apparente » par DPS" in frozen.stdout
    assert "Publication RA-2025-v1 figée" in frozen.stdout
