"""What wrote a release: the versions of the tools the project runs on (one list for every
place that records them) and the version of the project's own code.

A release manifest records ``release_tools()`` under ``tools``: every Python distribution of
``TOOLS`` with its installed version (« absent » for one not installed), the Python
interpreter, and the npm packages whose files the Data Docs carry (``npm_versions``, from
``package-lock.json``); and ``code_version()`` under ``code``: the git commit when the project
is a git checkout, and always the package version and the SHA-256 of the package's files, of
the contracts, of the dbt seeds and of the dbt manifest (docs/audit.md, § 2). The benchmark
(``bench/run.py``) reports ``tool_versions()``. Changing ``TOOLS`` changes the bytes of the
manifests frozen afterwards (never of those already frozen).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from dagster_project.lib.hashing import sha256_file
from dagster_project.settings import CONTRACTS_DIR, DBT_PROJECT_DIR, PROJECT_ROOT

# Every Python distribution that computes or writes a release's files, or reads the
# deliveries they come from.
TOOLS = [
    "duckdb",  # the warehouse, values.csv's rows, values.parquet
    "dbt-core",  # the models
    "dbt-duckdb",
    "dagster",  # the runs
    "dagster-dbt",
    "great-expectations",  # validation/, data_docs/
    "jinja2",  # the Data Docs' pages (GX's templates)
    "pandas",  # the datasets GX validates
    "pyarrow",  # Arrow between DuckDB, pandas and the readers
    "python-calamine",  # reading the delivered workbooks
    "fastexcel",
    "openpyxl",  # reading and editing workbooks (templates, review import)
    "xlsxwriter",  # the Excel workbook of a release
]
ABSENT = "absent"
PACKAGE = "kpi-warehouse"
PACKAGE_DIR = PROJECT_ROOT / "dagster_project"
PACKAGE_LOCK = PROJECT_ROOT / "package-lock.json"
DBT_MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"
# Keys of dbt's manifest that change at every parse (times, invocation): left out of its digest
DBT_VOLATILE = frozenset(
    {"generated_at", "invocation_id", "invocation_started_at", "run_started_at", "created_at"}
)


def tool_versions(tools: Iterable[str] = TOOLS, absent: str | None = ABSENT) -> dict:
    """{distribution name: installed version}, ``absent`` for one that is not installed."""
    versions = {}
    for tool in tools:
        try:
            versions[tool] = metadata.version(tool)
        except metadata.PackageNotFoundError:
            versions[tool] = absent
    return versions


def npm_versions(lock: Path = PACKAGE_LOCK) -> dict[str, str]:
    """{npm package: version} of the project's npm dependencies (the static files of the
    Data Docs, ``release.exports.vendor``), as ``package-lock.json`` pins them; empty
    without a lock."""
    try:
        packages = json.loads(lock.read_text(encoding="utf-8"))["packages"]
    except (OSError, ValueError, KeyError):
        return {}
    return {
        name: packages.get(f"node_modules/{name}", {}).get("version", ABSENT)
        for name in sorted(packages.get("", {}).get("dependencies", {}))
    }


def release_tools() -> dict:
    """Every tool that wrote a release's files: ``TOOLS``, the interpreter, the npm packages."""
    return {**tool_versions(), "python": platform.python_version(), "npm": npm_versions()}


def files_sha256(folder: Path, patterns: Iterable[str] = ("*",)) -> str | None:
    """SHA-256 of the listing ``<sha256>  <path>`` (one line per file matching ``patterns``
    under ``folder``, recursively, paths relative to it, sorted, as ``sha256sum`` writes
    them); None when there is no such file. For one folder level, by hand:
    ``cd sources/contracts && sha256sum *.yml | sha256sum`` (in the C locale's order)."""
    files = sorted(
        {
            p
            for pattern in patterns
            for p in folder.rglob(pattern)
            if p.is_file() and "__pycache__" not in p.relative_to(folder).parts
        },
        key=lambda p: p.relative_to(folder).as_posix(),
    )
    if not files:
        return None
    listing = "".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in files)
    return hashlib.sha256(listing.encode("utf-8")).hexdigest()


def dbt_manifest_sha256(path: Path = DBT_MANIFEST) -> str | None:
    """SHA-256 of dbt's manifest (every model, macro, test, seed and source, with the
    checksums of their files) without what changes at each parse (``DBT_VOLATILE``), as
    JSON with sorted keys; None without a manifest."""

    def stable(value):
        if isinstance(value, dict):
            return {k: stable(v) for k, v in value.items() if k not in DBT_VOLATILE}
        if isinstance(value, list):
            return [stable(v) for v in value]
        return value

    for attempt in range(3):  # `dbt parse` rewrites it in place: a half-written one, retried
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
            break
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            if attempt == 2:
                return None
            time.sleep(0.5)
    text = json.dumps(stable(manifest), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The commit checked out in ``root`` (read from ``.git``, no git process), None when
    ``root`` is not a git checkout or the commit cannot be read. A working tree changed
    since is not seen here: the digests of ``code_version`` are."""
    git = root / ".git"
    try:
        if git.is_file():  # a linked worktree or a submodule: « gitdir: <path> »
            pointer = git.read_text(encoding="utf-8").strip()
            if not pointer.startswith("gitdir:"):
                return None
            git = (root / pointer.removeprefix("gitdir:").strip()).resolve()
        head = (git / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return _commit_id(head)
        ref = head.removeprefix("ref:").strip()
        common = git
        if (git / "commondir").is_file():  # refs of a worktree live in the main .git
            common = (git / (git / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in dict.fromkeys([git, common]):
            if (base / ref).is_file():
                return _commit_id((base / ref).read_text(encoding="utf-8").strip())
        for base in dict.fromkeys([git, common]):
            if (base / "packed-refs").is_file():
                for line in (base / "packed-refs").read_text(encoding="utf-8").splitlines():
                    sha, _, name = line.partition(" ")
                    if name == ref:
                        return _commit_id(sha)
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _commit_id(text: str) -> str | None:
    text = text.strip().lower()
    ok = len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)
    return text if ok else None


def code_version() -> dict:
    """The project's code a release was frozen with: the git commit (None outside a git
    checkout), the package version, and the SHA-256 of the package's files, of the contracts,
    of the dbt seeds (the catalogue, the communes, the comments, the units) and of dbt's
    manifest (None when absent)."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = ABSENT
    return {
        "git_commit": git_commit(),
        "package_version": version,
        "package_sha256": files_sha256(PACKAGE_DIR, ("*.py", "*.html", "*.css", "*.js")),
        "contracts_sha256": files_sha256(CONTRACTS_DIR, ("*.yml",)),
        "seeds_sha256": files_sha256(DBT_PROJECT_DIR / "seeds", ("*.csv",)),
        "dbt_manifest_sha256": dbt_manifest_sha256(),
    }
