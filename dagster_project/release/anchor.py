"""What is kept beside the releases, outside the warehouse file, written durably.

``SHA256SUMS``, the anchor: one block per release, appended at its freeze (the SHA-256 of
every file of its folder, manifest last, as ``sha256sum -c`` reads it), against which
``verify`` checks the build database and ``verify_copy`` the published copy's release
tables; its SHA-256, the chain head (``chain_head``), kept away from the server, shows later
that the anchor was only ever appended to. ``.gel-en-cours.json``, the write-ahead intent of
the freeze in progress (the journal), from which ``recovery.recover_interrupted`` completes
or sets aside (``.interrompues/``) what a killed freeze left. Both are written whole or not
at all (temporary file, ``fsync``, rename).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from dagster_project.lib.hashing import sha256_file
from dagster_project.release.manifest import CHECKSUMS, MANIFEST

# Beside the releases, outside the warehouse file: the anchor every release is checked
# against (`sha256sum -c`), the write-ahead intent of the freeze in progress, and where a
# folder left by an interrupted freeze is set aside when it cannot be completed.
ANCHOR = "SHA256SUMS"
JOURNAL = ".gel-en-cours.json"
SET_ASIDE = ".interrompues"


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Every file and folder of a release on disk before its rename makes it visible."""
    for path in folder.rglob("*"):
        fsync(path)
    fsync(folder)


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write a small file whole or not at all (temporary file, fsync, rename, fsync)."""
    tmp = path.with_name(f"{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.chmod(mode)
    os.replace(tmp, path)
    fsync(path.parent)


def write_journal(releases_dir: Path, entry: dict) -> None:
    text = json.dumps(entry, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    _write_atomic(releases_dir / JOURNAL, text.encode("utf-8"))


def read_journal(releases_dir: Path) -> dict | None:
    try:
        entry = json.loads((releases_dir / JOURNAL).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return entry if isinstance(entry, dict) else {}


@dataclass
class Anchor:
    """``releases/SHA256SUMS``: for each release, in the order they were frozen, the SHA-256
    of every file of its folder, its manifest last, in the format of ``sha256sum``."""

    releases: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {path: sha}
    problems: list[str] = field(default_factory=list)

    def manifest(self, release_id: str) -> str | None:
        return self.releases.get(release_id, {}).get(MANIFEST)


def read_anchor(releases_dir: Path) -> Anchor | None:
    """The anchor beside the releases, None when there is none."""
    path = releases_dir / ANCHOR
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return Anchor(problems=[f"ancre {ANCHOR} illisible"])
    anchor = Anchor()
    for number, line in enumerate(lines, start=1):
        digest, sep, name = line.partition("  ")
        release_id, slash, relative = name.partition("/")
        if (
            not sep
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
            or not release_id.startswith("RA-")
            or not slash
            or not relative
        ):
            anchor.problems.append(f"ancre {ANCHOR} : ligne {number} illisible")
            continue
        anchor.releases.setdefault(release_id, {})[relative] = digest
    return anchor


def chain_head(releases_dir: Path) -> str | None:
    """SHA-256 of the anchor file (``sha256sum releases/SHA256SUMS``): kept away from the
    server, it shows later that the anchor was only ever appended to."""
    path = releases_dir / ANCHOR
    return sha256_file(path) if path.is_file() else None


def anchor_block(
    release_id: str, outputs: dict[str, str], manifest_sha: str, checksums_sha: str | None = None
) -> str:
    """A release's lines: its outputs and the folder's ``SHA256SUMS`` (``checksums_sha``,
    ``manifest.checksums_sha256``; None for a release frozen before it), sorted, then its
    manifest."""
    files = {**outputs, **({CHECKSUMS: checksums_sha} if checksums_sha else {})}
    names = sorted(files)
    for name in names:
        if "\n" in name or "\\" in name:  # sha256sum would escape it: never in a release
            raise ValueError(f"nom de fichier impossible à inscrire dans l'ancre : {name!r}")
    lines = [f"{files[name]}  {release_id}/{name}" for name in names]
    lines.append(f"{manifest_sha}  {release_id}/{MANIFEST}")
    return "".join(line + "\n" for line in lines)


def append_anchor(releases_dir: Path, blocks: list[str]) -> None:
    """Append whole blocks to the anchor, atomically (a copy with the new lines replaces
    it): what was there stays byte for byte, so an earlier chain head still matches its
    beginning."""
    path = releases_dir / ANCHOR
    before = path.read_bytes() if path.exists() else b""
    _write_atomic(path, before + "".join(blocks).encode("utf-8"), mode=0o444)
