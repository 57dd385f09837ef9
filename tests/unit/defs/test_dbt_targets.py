"""dbt's per-invocation folders are pruned (assets/dbt.py prune_invocation_dirs)."""

from __future__ import annotations

import os

from dagster_project.defs.assets.dbt import prune_invocation_dirs


def test_only_the_newest_invocation_folders_are_kept(tmp_path):
    now = 1_000_000.0
    for i in range(14):
        folder = tmp_path / f"dbt_models-run{i:02d}-abc"
        folder.mkdir()
        (folder / "dbt.log").write_text("x")
        age = 7200 + i if i != 13 else 60  # folder 13: the oldest mtime ... except it is recent
        os.utime(folder, (now - age, now - age))
    (tmp_path / "partial_parse.msgpack").write_text("kept")
    (tmp_path / "other-folder").mkdir()
    removed = prune_invocation_dirs(tmp_path, keep=10, older_than=3600, now=now)
    remaining = sorted(p.name for p in tmp_path.glob("dbt_models-*"))
    # the 10 newest stay (13 is the newest of all); of the 4 older, all are over an hour old
    assert len(removed) == 4 and len(remaining) == 10
    assert "dbt_models-run13-abc" in remaining
    assert {p.name for p in removed} == {f"dbt_models-run{i:02d}-abc" for i in (9, 10, 11, 12)}
    assert (tmp_path / "partial_parse.msgpack").exists() and (tmp_path / "other-folder").exists()


def test_a_recent_folder_beyond_the_newest_is_kept(tmp_path):
    now = 1_000_000.0
    for i in range(3):
        folder = tmp_path / f"dbt_models-run{i}-abc"
        folder.mkdir()
        os.utime(folder, (now - 10 - i, now - 10 - i))
    assert prune_invocation_dirs(tmp_path, keep=1, older_than=3600, now=now) == []
    assert len(list(tmp_path.glob("dbt_models-*"))) == 3
