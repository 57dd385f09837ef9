"""``kpi run`` does only what changed: the inputs' fingerprint, by source, and the plan."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagster_project.contracts.model import source_of
from dagster_project.settings import Settings
from dagster_project.warehouse import inputs

SOURCES = ["eau_reseau", "eau_udi", "dechets_collecte"]


def classify(path: Path) -> str | None:
    return source_of(path.name, SOURCES)


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    sources = tmp_path / "sources"
    (sources / "2025" / "water").mkdir(parents=True)
    (sources / "2025" / "waste").mkdir(parents=True)
    (sources / "2025" / "water" / "eau_reseau_2025.xlsx").write_bytes(b"premier")
    (sources / "2025" / "waste" / "dechets_collecte_2025.xlsx").write_bytes(b"premier")
    (sources / "2025" / "campagne.yml").write_text("annee: 2025\n", encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("KPI_")]:
        monkeypatch.delenv(name)
    s = Settings(
        sources_dir=sources,
        warehouse=tmp_path / "warehouse.duckdb",
        releases_dir=tmp_path / "r",
        today="2026-01-15",
    )
    s.build_warehouse.parent.mkdir(parents=True)
    s.build_warehouse.write_bytes(b"")
    publish_as(s, "20261205T100000-abc123")
    s.warehouse.symlink_to(Path(".publications") / "current" / "warehouse.duckdb")
    return s


def publish_as(settings: Settings, publication_id: str) -> None:
    folder = settings.warehouse.parent / ".publications" / publication_id
    folder.mkdir(parents=True)
    (folder / "warehouse.duckdb").write_bytes(b"")
    current = folder.parent / "current"
    current.unlink(missing_ok=True)
    current.symlink_to(publication_id)


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_fingerprint_is_stable_and_ignores_what_runs_write(settings):
    first = inputs.fingerprint(settings, classify)
    assert set(first.deliveries) == {"eau_reseau", "dechets_collecte"}
    folder = settings.sources_dir / "2025" / "water"
    (folder / "eau_reseau_2025.xlsx.rejet.csv").write_text("rapport", encoding="utf-8")
    (folder / "eau_reseau_2025.xlsx.a_confirmer.csv").write_text("à voir", encoding="utf-8")
    assert inputs.fingerprint(settings, classify) == first


def test_no_record_means_a_full_run(settings):
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert not todo.nothing and todo.sources is None


def test_nothing_changed_means_nothing_to_do(settings):
    inputs.record_run(settings, inputs.fingerprint(settings, classify), "run-1")
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert todo.nothing and todo.last["run_id"] == "run-1"
    assert todo.last["publication_id"] == "20261205T100000-abc123"


@pytest.mark.parametrize(
    ("change", "sources"),
    [
        (lambda d: (d / "water" / "eau_udi_2025.xlsx").write_bytes(b"x"), ("eau_udi",)),
        (lambda d: (d / "water" / "eau_reseau_2025.xlsx").write_bytes(b"2"), ("eau_reseau",)),
        (lambda d: touch_later(d / "waste" / "dechets_collecte_2025.xlsx"), ("dechets_collecte",)),
        (lambda d: (d / "water" / "eau_reseau_2025.xlsx").unlink(), ("eau_reseau",)),
    ],
    ids=["new source", "re-delivery", "same bytes, new time", "withdrawn"],
)
def test_a_changed_delivery_selects_its_source_only(settings, change, sources):
    inputs.record_run(settings, inputs.fingerprint(settings, classify), "run-1")
    change(settings.sources_dir / "2025")
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert not todo.nothing and todo.sources == sources


@pytest.mark.parametrize(
    "change",
    [
        lambda s, env: touch_later(s.sources_dir / "2025" / "campagne.yml"),
        lambda s, env: (s.sources_dir / "2025" / "water" / "inconnu.xlsx").write_bytes(b"?"),
        # (through monkeypatch: set directly, it stayed in the worker's environment, and the
        # later tests' kpi processes rejected every delivery of more than 10 rows)
        lambda s, env: env.setenv("KPI_MAX_ROWS", "10"),
    ],
    ids=["campaign file", "file of no source", "reader limit"],
)
def test_a_change_of_the_project_means_a_full_run(settings, change, monkeypatch):
    monkeypatch.delenv("KPI_MAX_ROWS", raising=False)
    inputs.record_run(settings, inputs.fingerprint(settings, classify), "run-1")
    change(settings, monkeypatch)
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert not todo.nothing and todo.sources is None


def test_the_campaign_clock_is_an_input(settings):
    later = Settings(**{**settings.__dict__, "today": "2026-03-01"})
    assert (
        inputs.fingerprint(later, classify).project
        != inputs.fingerprint(settings, classify).project
    )


def test_another_publication_since_means_a_full_run(settings):
    inputs.record_run(settings, inputs.fingerprint(settings, classify), "run-1")
    publish_as(settings, "20261206T100000-def456")  # a freeze, kpi publish, the daemon
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert not todo.nothing and todo.sources is None


def test_a_run_that_starts_forgets_the_record(settings):
    inputs.record_run(settings, inputs.fingerprint(settings, classify), "run-1")
    inputs.forget_last_run(settings)
    todo = inputs.plan(settings, inputs.fingerprint(settings, classify))
    assert todo.sources is None
