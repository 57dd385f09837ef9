"""SHA-256, the one place the project computes it: of a file (streamed), of bytes, of a text.

``sha256_file`` reads a file by blocks of 1 MiB (a delivery may weigh hundreds of
megabytes); with ``follow_links=False`` it refuses a symbolic link (``OSError``) instead of
hashing what the link designates, as the ingestion needs. Every digest is lowercase hex.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

BLOCK_SIZE = 1 << 20


def sha256_file(path: Path, *, follow_links: bool = True) -> str:
    """The SHA-256 of a file's content; with ``follow_links=False`` never through a link
    (it fails on one)."""
    flags = os.O_RDONLY | (0 if follow_links else getattr(os, "O_NOFOLLOW", 0))
    digest = hashlib.sha256()
    with os.fdopen(os.open(path, flags), "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_SIZE), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """The SHA-256 of bytes held in memory (a rendering, a label)."""
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    """The SHA-256 of a text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
