"""``kpi run`` knows when nothing changed: the inputs' fingerprint and the last run's record."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagster_project.settings import Settings
from dagster_project.warehouse import inputs


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    sources = tmp_path / "sources"
    (sources / "2025" / "water").mkdir(parents=True)
    (sources / "2025" / "water" / "eau_reseau_2025.xlsx").write_bytes(b"premier")
    (sources / "2025" / "campagne.yml").write_text("annee: 2025\n", encoding="utf-8")
    for name in [n for n in os.environ if n.startswith("KPI_")]:
        monkeypatch.delenv(name)
    s = Settings(
        sources_dir=sources, warehouse=tmp_path / "warehouse.duckdb", releases_dir=tmp_path / "r"
    )
    s.build_warehouse.parent.mkdir(parents=True)
    s.build_warehouse.write_bytes(b"")
    publication = tmp_path / ".publications" / "20261205T100000-abc123"
    publication.mkdir(parents=True)
    (publication / "warehouse.duckdb").write_bytes(b"")
    (tmp_path / ".publications" / "current").symlink_to(publication.name)
    s.warehouse.symlink_to(Path(".publications") / "current" / "warehouse.duckdb")
    return s


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_the_fingerprint_is_stable_and_ignores_what_runs_write(settings):
    first = inputs.inputs_fingerprint(settings)
    folder = settings.sources_dir / "2025" / "water"
    (folder / "eau_reseau_2025.xlsx.rejet.csv").write_text("rapport", encoding="utf-8")
    (folder / "eau_reseau_2025.xlsx.a_confirmer.csv").write_text("à voir", encoding="utf-8")
    assert inputs.inputs_fingerprint(settings) == first


@pytest.mark.parametrize(
    "change",
    [
        lambda s: (s.sources_dir / "2025" / "water" / "eau_udi_2025.xlsx").write_bytes(b"x"),
        lambda s: (s.sources_dir / "2025" / "water" / "eau_reseau_2025.xlsx").write_bytes(b"2"),
        lambda s: _touch_later(s.sources_dir / "2025" / "campagne.yml"),
        lambda s: (s.sources_dir / "2025" / "water" / "eau_reseau_2025.xlsx").unlink(),
        lambda s: os.environ.__setitem__("KPI_MAX_ROWS", "10"),
    ],
    ids=["new delivery", "re-delivery", "campaign file", "withdrawn", "reader limit"],
)
def test_any_change_of_an_input_changes_the_fingerprint(settings, change, monkeypatch):
    monkeypatch.delenv("KPI_MAX_ROWS", raising=False)
    before = inputs.inputs_fingerprint(settings)
    change(settings)
    assert inputs.inputs_fingerprint(settings) != before


def test_the_campaign_clock_is_an_input(settings):
    later = Settings(**{**settings.__dict__, "today": "2026-03-01"})
    assert inputs.inputs_fingerprint(later) != inputs.inputs_fingerprint(settings)


def test_unchanged_only_with_the_same_inputs_and_its_publication_in_place(settings, tmp_path):
    fingerprint = inputs.inputs_fingerprint(settings)
    assert inputs.unchanged_since_last_run(settings, fingerprint) is None  # no run yet
    inputs.record_run(settings, fingerprint, "run-1")
    last = inputs.unchanged_since_last_run(settings, fingerprint)
    assert last["run_id"] == "run-1" and last["publication_id"] == "20261205T100000-abc123"
    assert inputs.unchanged_since_last_run(settings, "autre") is None
    # another publication since (a freeze, kpi publish, a run of the daemon): a full run
    other = tmp_path / ".publications" / "20261206T100000-def456"
    other.mkdir()
    current = tmp_path / ".publications" / "current"
    current.unlink()
    current.symlink_to(other.name)
    assert inputs.unchanged_since_last_run(settings, fingerprint) is None


def test_a_run_that_starts_forgets_the_record(settings):
    fingerprint = inputs.inputs_fingerprint(settings)
    inputs.record_run(settings, fingerprint, "run-1")
    inputs.forget_last_run(settings)
    assert inputs.unchanged_since_last_run(settings, fingerprint) is None
