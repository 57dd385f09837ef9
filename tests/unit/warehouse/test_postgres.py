"""The PostgreSQL target, without a server: what dbt builds fits PostgreSQL's names.

(The copy to PostgreSQL and `kpi run --target postgres`, which need a server, are in
tests/integration/test_postgres.py.)
"""

from __future__ import annotations

import yaml

from dagster_project.settings import DBT_PROJECT_DIR

PG_IDENTIFIER_MAX = 63


def test_dbt_names_fit_postgres_identifiers():
    """PostgreSQL truncates (models) or refuses (unit tests) names over 63 bytes."""
    names = {p.stem for p in (DBT_PROJECT_DIR / "models").rglob("*.sql")}
    names |= {p.stem for p in (DBT_PROJECT_DIR / "seeds").rglob("*.csv")}
    for path in (DBT_PROJECT_DIR / "models").rglob("*.yml"):
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in ("models", "unit_tests", "seeds"):
            names |= {item["name"] for item in document.get(section) or [] if "name" in item}
    too_long = sorted(n for n in names if len(n.encode()) > PG_IDENTIFIER_MAX)
    assert too_long == []
