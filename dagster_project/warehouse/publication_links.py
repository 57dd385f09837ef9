"""The analysts' fixed paths, switched from one publication to the next, and old ones removed.

Each publication is one folder, ``<warehouse folder>/.publications/<id>/`` (the copy and its
Parquet exports); ``current`` designates the one in place, and the analysts' paths are fixed
links through it: ``warehouse.duckdb -> .publications/current/warehouse.duckdb``,
``exports/marts -> ../.publications/current/marts``. Replacing ``current``
(``switch_current``) switches both at once; ``link_in_place`` makes the fixed links once;
``clean_versions`` removes what no reader can need any more.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from dagster_project.warehouse.build import fsync

PUBLICATIONS = ".publications"
CURRENT = "current"
EXPORTED_SCHEMAS = ("marts",)


def remove_leftovers(folder: Path, name: str) -> None:
    """Temporary files of publications that died (SIGKILL, power loss) before their swap."""
    for path in folder.glob(f".{name}.publish-*"):
        with contextlib.suppress(OSError):
            path.unlink()


def switch_current(publications: Path, version: str) -> str | None:
    """Point ``current`` at the new version (a symbolic link replaced atomically): the one
    rename that switches the published copy and its exports together. Returns the version
    it designated before."""
    link = publications / CURRENT
    before = os.readlink(link) if link.is_symlink() else None
    tmp = publications / f".{CURRENT}.link-{version}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(version, tmp)
    os.replace(tmp, link)
    fsync(publications)
    return before


def _fixed_link(link: Path, target: str) -> bool:
    """``link`` -> ``target`` (relative), replaced atomically; False when it already was."""
    if link.is_symlink() and os.readlink(link) == target:
        return False
    tmp = link.with_name(f".{link.name}.link-tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync(link.parent)
    return True


def link_in_place(published: Path, exports: Path, publications: Path, version: str) -> bool:
    """The analysts' paths as fixed links through ``current``: ``warehouse.duckdb`` and
    ``exports/<schema>``. Made once: the first publication in this layout replaces the file
    and the links of the earlier one (``exports/marts -> .versions/<id>/marts``), so only
    then can a reader see the new copy beside the previous exports, for an instant. A real
    folder put at ``exports/<schema>`` by hand is set aside, never deleted. Returns True when
    a link of the earlier layout was replaced (its versions are kept one more publication,
    for readers still in them)."""
    _fixed_link(
        published, os.path.relpath(publications / CURRENT / published.name, published.parent)
    )
    exports.mkdir(parents=True, exist_ok=True)
    migrated = False
    for schema in EXPORTED_SCHEMAS:
        link = exports / schema
        if link.exists() and not link.is_symlink():
            os.replace(link, publications / f"manual-{version}-{schema}")
        migrated |= link.is_symlink() and ".versions" in Path(os.readlink(link)).parts
        _fixed_link(link, os.path.relpath(publications / CURRENT / schema, exports))
    return migrated


def clean_versions(
    publications: Path, version: str, before: str | None, name: str, exports: Path, migrated: bool
) -> None:
    """Keep the publication in place and the whole previous one (its copy and its exports:
    a reader that resolved ``warehouse.duckdb`` through the link an instant before the switch
    opens the previous file after it, and must find it; measured by test_concurrency, where a
    reader failed with « database does not exist » when the previous file was removed at
    once); remove a log left beside the previous copy, and every other folder, those of
    publications killed before their switch included. A publication is therefore readable
    until the next one after it is made."""
    if before and before != version and (publications / before).is_dir():
        for path in (publications / before).glob(f"{name}.wal"):  # a log beside it only
            with contextlib.suppress(OSError):
                path.unlink()
    for old in publications.iterdir():
        if old.name in (version, before, CURRENT) or old.name.startswith("manual-"):
            continue
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                old.unlink()
    legacy = exports / ".versions"  # the earlier layout, once nothing designates it
    if legacy.is_dir() and not migrated:
        for old in legacy.iterdir():
            if not old.name.startswith("manual-"):
                shutil.rmtree(old, ignore_errors=True)
        with contextlib.suppress(OSError):
            legacy.rmdir()
    for stale in exports.glob(".*.link-*"):
        with contextlib.suppress(OSError):
            stale.unlink()
