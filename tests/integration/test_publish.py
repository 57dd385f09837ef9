"""The published copy of a real campaign (``support.publishing.published_campaign``: one
`kpi run`, read or copied): marts and Parquet exports without personal data; `kpi docs` (one
self-contained HTML page, every mart column described); every query of the analysts' guide.
"""

from __future__ import annotations

import json
import re

import duckdb
import pytest
from support.publishing import copy_campaign, fetch_rows, kpi, published_campaign

from dagster_project.settings import PROJECT_ROOT


def test_a_real_run_publishes_marts_and_no_personal_data(tmp_path_factory):
    base = published_campaign(tmp_path_factory)
    path = base / "warehouse.duckdb"
    build = base / ".build" / "warehouse.duckdb"
    tables = {
        f"{s}.{t}"
        for s, t in fetch_rows(
            path, "select table_schema, table_name from information_schema.tables"
        )
    }
    for mart in ("fct_indicator_values", "dim_indicators", "dim_communes", "p2_indicators"):
        assert f"marts.{mart}" in tables
        assert (base / "exports" / "marts" / f"{mart}.parquet").exists()
    assert not any(t.split(".")[0] in ("raw_restricted", "restricted") for t in tables)
    # the build has the HR rows, the published copy has none of their pseudonyms
    pseudonyms = [
        r[0] for r in fetch_rows(build, "select matricule from raw_restricted.rh_effectifs")
    ]
    assert pseudonyms
    content = path.read_bytes()
    assert not any(p.encode() in content for p in pseudonyms[:50])
    fct = "select count(*) from marts.fct_indicator_values"
    assert fetch_rows(path, fct) == fetch_rows(build, fct)
    parquet = base / "exports" / "marts" / "fct_indicator_values.parquet"
    assert duckdb.sql(f"select count(*) from '{parquet}'").fetchall() == fetch_rows(path, fct)


@pytest.fixture(scope="module")
def docs_site(tmp_path_factory):
    out = tmp_path_factory.mktemp("docs")
    result = kpi("docs", "--out", str(out), "--warehouse", str(out / "absent.duckdb"), cwd=str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_docs_site_is_one_self_contained_page(docs_site):
    html = (docs_site / "index.html").read_text(encoding="utf-8")
    assert len(html) > 100_000 and '"nodes"' in html  # manifest and catalog are embedded
    external = re.findall(
        r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", html
    )
    assert external == []
    assert not re.search(r"@import\s+url\(\s*[\"']?(?:https?:)?//", html)
    assert not re.search(r"url\(\s*[\"']?https?://", html)


def test_every_mart_column_is_described_and_under_contract(docs_site):
    manifest = json.loads((docs_site / "manifest.json").read_text(encoding="utf-8"))
    marts = {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
        and node["original_file_path"].startswith("models/marts/")
    }
    assert {
        "fct_indicator_values",
        "dim_indicators",
        "dim_communes",
        "p1_indicators",
        "p2_indicators",
        "p3_indicators",
        "p4_indicators",
        "appui_indicators",
        "territoire_indicators",
    } <= set(marts)
    missing = []
    for name, node in marts.items():
        if not node["description"].strip():
            missing.append(name)
        if not node["config"]["contract"]["enforced"]:
            missing.append(f"{name} : contrat non appliqué")
        if not node["columns"]:
            missing.append(f"{name} : aucune colonne documentée")
        for column, spec in node["columns"].items():
            if not (spec.get("description") or "").strip():
                missing.append(f"{name}.{column}")
            if not spec.get("data_type"):
                missing.append(f"{name}.{column} : type absent")
            if "{{" in (spec.get("description") or ""):
                missing.append(f"{name}.{column} : description non rendue")
    assert missing == []


def test_every_query_of_the_analysts_guide_runs(tmp_path_factory):
    """docs/analysts.md: each SQL example runs on a published copy holding a release."""
    base = published_campaign(tmp_path_factory)
    root = tmp_path_factory.mktemp("guide")
    settings = copy_campaign(base, root / "campaign")
    frozen = kpi(
        "freeze",
        "--year",
        "2025",
        "--warehouse",
        str(settings.warehouse),
        "--releases",
        str(settings.releases_dir),
        env={"DAGSTER_HOME": str(root / "dagster_home")},
    )
    assert frozen.returncode == 0, frozen.stdout + frozen.stderr
    guide = (PROJECT_ROOT / "docs" / "analysts.md").read_text(encoding="utf-8")
    statements = []
    for block in re.findall(r"```sql\n(.*?)```", guide, re.S):
        # DuckDB CLI dot commands (.tables) are not SQL
        sql = "\n".join(line for line in block.splitlines() if not line.startswith("."))
        statements += [
            statement
            for statement in sql.split(";")
            if any(
                line.strip() and not line.strip().startswith("--")
                for line in statement.splitlines()
            )
        ]
    assert len(statements) >= 12
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    try:
        results = [con.execute(statement).fetchall() for statement in statements]
    finally:
        con.close()
    by_text = dict(zip(statements, results, strict=True))

    def rows_of(fragment: str) -> list:
        return next(rows for text, rows in by_text.items() if fragment in text)

    assert len(rows_of("indicator_id = 'water_network_length'")) == 100
    assert rows_of("from marts.p2_indicators\nwhere year = 2025 and code_insee is null\norder")
    assert rows_of("where v.release_id = 'RA-2025-v1'")
    assert rows_of("from publication.info")
