"""What a release states about what wrote it (``code``, ``tools`` of its manifest) and the
``SHA256SUMS`` of each release folder, that ``sha256sum -c`` accepts inside the folder.

Fast: the small warehouse of ``support.warehouses`` and its fake exports, as test_release.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import duckdb
import pytest
from support.warehouses import YEAR, build_warehouse, fake_exports

from dagster_project.lib import versions
from dagster_project.lib.hashing import sha256_file
from dagster_project.release import freeze as freeze_module
from dagster_project.release.anchor import read_anchor
from dagster_project.release.freeze import freeze
from dagster_project.release.manifest import CHECKSUMS, MANIFEST
from dagster_project.release.verify import verify, verify_records
from dagster_project.settings import PROJECT_ROOT


@pytest.fixture(autouse=True)
def _fake_exports(monkeypatch):
    monkeypatch.setattr(freeze_module, "_write_exports", fake_exports)


@pytest.fixture
def con(tmp_path):
    connection = duckdb.connect(str(build_warehouse(tmp_path / "w.duckdb")))
    yield connection
    connection.close()


def _manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- SHA256SUMS


def test_each_release_folder_has_a_sha256sums_that_sha256sum_accepts(con, tmp_path):
    releases = tmp_path / "releases"
    release = freeze(con, YEAR, releases)
    folder = release.folder
    manifest = _manifest(folder)
    assert manifest["checksums"] == CHECKSUMS and CHECKSUMS not in manifest["outputs"]
    lines = (folder / CHECKSUMS).read_text(encoding="utf-8").splitlines()
    listed = [line.split("  ", 1)[1] for line in lines]
    # every file of the folder but itself, manifest included, relative paths, sorted
    files = sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != CHECKSUMS
    )
    assert listed == files and "rapport/index.html" in listed and MANIFEST in listed
    for line in lines:
        digest, name = line.split("  ", 1)
        assert sha256_file(folder / name) == digest
    assert (folder / CHECKSUMS).stat().st_mode & 0o777 == 0o444
    # the anchor covers it too: `cd releases && sha256sum -c SHA256SUMS` checks every file
    anchored = read_anchor(releases).releases[release.release_id]
    assert anchored[CHECKSUMS] == sha256_file(folder / CHECKSUMS)
    assert set(anchored) == {*files, CHECKSUMS}
    assert verify(con, releases).intact
    if shutil.which("sha256sum"):
        for cwd in (folder, releases):
            checked = subprocess.run(
                ["sha256sum", "-c", "--strict", "SHA256SUMS"],
                cwd=cwd,
                capture_output=True,
                text=True,
            )
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert "FAILED" not in checked.stdout


def test_kpi_verify_reports_a_changed_or_missing_sha256sums(con, tmp_path):
    releases = tmp_path / "releases"
    folder = freeze(con, YEAR, releases).folder
    path = folder / CHECKSUMS
    original = path.read_bytes()
    path.chmod(0o644)
    path.write_bytes(original.replace(b"values.csv", b"values.tsv"))
    problems = verify(con, releases).problems
    assert "RA-2025-v1 : fichier SHA256SUMS modifié (différent des empreintes du manifeste)" in (
        problems
    )
    assert "RA-2025-v1 : fichier SHA256SUMS différent de l'ancre SHA256SUMS" not in problems
    path.unlink()
    assert "RA-2025-v1 : fichier SHA256SUMS absent" in verify_records(con, releases).problems
    path.write_bytes(original)
    assert verify(con, releases).intact


def test_a_release_frozen_before_sha256sums_still_verifies(con, tmp_path):
    """A folder frozen before 2026-12-05 has no SHA256SUMS and its manifest no ``checksums``:
    nothing is missing; a SHA256SUMS added to such a folder is a file added."""
    releases = tmp_path / "releases"
    folder = freeze(con, YEAR, releases).folder
    for path in (folder, folder / MANIFEST, folder / CHECKSUMS):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (folder / CHECKSUMS).unlink()
    manifest = _manifest(folder)
    del manifest["checksums"], manifest["code"]
    (folder / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    con.execute("update release.releases set manifest_sha256 = ?", [sha256_file(folder / MANIFEST)])
    assert verify_records(con, releases).intact
    (folder / CHECKSUMS).write_text("", encoding="utf-8")
    assert verify_records(con, releases).problems == [
        "RA-2025-v1 : fichier SHA256SUMS ajouté (absent du manifeste)"
    ]


# --------------------------------------------------------------------------- code and tools


def test_the_manifest_states_the_code_and_every_tool_that_wrote_the_files(con, tmp_path):
    manifest = _manifest(freeze(con, YEAR, tmp_path / "releases").folder)
    code = manifest["code"]
    assert set(code) == {
        "git_commit",
        "package_version",
        "package_sha256",
        "contracts_sha256",
        "seeds_sha256",
        "dbt_manifest_sha256",
    }
    assert code["package_version"] == "0.1.0"
    for key in ("package_sha256", "contracts_sha256", "seeds_sha256"):
        assert len(code[key]) == 64
    assert code["contracts_sha256"] == versions.files_sha256(
        PROJECT_ROOT / "sources" / "contracts", ("*.yml",)
    )
    if (PROJECT_ROOT / ".git").exists() and shutil.which("git"):
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
        )
        if head.returncode == 0:
            assert code["git_commit"] == head.stdout.strip()
    tools = manifest["tools"]
    for tool in (
        "duckdb",
        "pyarrow",
        "xlsxwriter",
        "openpyxl",
        "fastexcel",
        "python-calamine",
        "dbt-core",
        "dbt-duckdb",
        "great-expectations",
        "dagster",
        "pandas",
    ):
        assert tools[tool] not in (None, "", versions.ABSENT), tool
    assert tools["duckdb"] == duckdb.__version__ and tools["python"].startswith("3.11")
    lock = json.loads((PROJECT_ROOT / "package-lock.json").read_text(encoding="utf-8"))
    assert tools["npm"]["bootstrap"] == lock["packages"]["node_modules/bootstrap"]["version"]
    assert set(tools["npm"]) == set(lock["packages"][""]["dependencies"])


def test_freezing_twice_in_one_process_gives_the_same_bytes_code_included(tmp_path):
    folders = []
    for name in ("a", "b"):
        connection = duckdb.connect(str(build_warehouse(tmp_path / name / "w.duckdb")))
        folders.append(freeze(connection, YEAR, tmp_path / name / "releases").folder)
        connection.close()
    for name in (MANIFEST, CHECKSUMS):
        assert (folders[0] / name).read_bytes() == (folders[1] / name).read_bytes()
    assert _manifest(folders[0])["code"] == versions.code_version()


def test_git_commit_is_read_from_the_checkout_without_git(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    other = "fedcba9876543210fedcba9876543210fedcba98"
    assert versions.git_commit(tmp_path) is None  # not a checkout
    git = tmp_path / "repo" / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    assert versions.git_commit(git.parent) is None  # no commit yet
    (git / "packed-refs").write_text(f"# pack-refs with: peeled\n{other} refs/heads/main\n")
    assert versions.git_commit(git.parent) == other
    (git / "refs" / "heads" / "main").write_text(commit + "\n")  # a loose ref wins
    assert versions.git_commit(git.parent) == commit
    (git / "HEAD").write_text(other + "\n")  # detached
    assert versions.git_commit(git.parent) == other
    # a linked worktree: .git is a file naming its folder, refs in the main repository
    worktree = tmp_path / "worktree"
    admin = git / "worktrees" / "wt"
    admin.mkdir(parents=True)
    (admin / "HEAD").write_text("ref: refs/heads/main\n")
    (admin / "commondir").write_text("../..\n")
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {admin}\n")
    assert versions.git_commit(worktree) == commit


def test_the_dbt_manifest_digest_ignores_what_changes_at_each_parse(tmp_path):
    def manifest(generated_at: str, created_at: float, code: str) -> Path:
        path = tmp_path / f"{generated_at}-{created_at}-{len(code)}.json"
        path.write_text(
            json.dumps(
                {
                    "metadata": {"generated_at": generated_at, "invocation_id": generated_at},
                    "nodes": {"model.a": {"created_at": created_at, "raw_code": code}},
                }
            )
        )
        return path

    first = versions.dbt_manifest_sha256(manifest("2026-01-01", 1.0, "select 1"))
    assert first == versions.dbt_manifest_sha256(manifest("2026-02-02", 2.0, "select 1"))
    assert first != versions.dbt_manifest_sha256(manifest("2026-01-01", 1.0, "select 2"))
    assert versions.dbt_manifest_sha256(tmp_path / "absent.json") is None
