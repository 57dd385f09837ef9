"""quality/suites.py: expectations/marts.yml read once per version of the file."""

from __future__ import annotations

import os

from dagster_project.quality.suites import load_marts_yml, mart_suites


def _write(path, text: str, mtime_ns: int) -> None:
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_marts_yml_is_read_again_when_it_changes_and_each_caller_gets_its_own_copy(tmp_path):
    path = tmp_path / "marts.yml"
    _write(path, "suites:\n  a:\n    blocking: true\n", 1_000_000_000)
    first = load_marts_yml(path)
    assert mart_suites(path) == ["a"]
    first["suites"]["a"]["blocking"] = False  # a caller changing its copy changes no other
    assert load_marts_yml(path)["suites"]["a"]["blocking"] is True
    _write(path, "suites:\n  a: {}\n  b: {}\n", 2_000_000_000)  # edited: read again
    assert mart_suites(path) == ["a", "b"]
    _write(path, "", 3_000_000_000)
    assert load_marts_yml(path) == {}
