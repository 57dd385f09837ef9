"""Keyed pseudonyms for personal identifiers (HR ``matricule``).

The key comes from ``KPI_PSEUDONYM_KEY`` (the key itself) or from the file named by
``KPI_PSEUDONYM_KEY_FILE`` (default ``secrets/pseudonym.key``, git-ignored). There is no
built-in default: without a key, ingesting a personal source fails with a clear message.
The same key gives the same pseudonym year after year, so an agent can be followed across
campaigns without the warehouse ever holding the identifier.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT

DEFAULT_KEY_FILE = PROJECT_ROOT / "secrets" / "pseudonym.key"
PSEUDONYM_LENGTH = 16


class PseudonymKeyError(RuntimeError):
    pass


def key_file() -> Path:
    return Path(os.environ.get("KPI_PSEUDONYM_KEY_FILE", DEFAULT_KEY_FILE))


def load_key() -> bytes:
    value = os.environ.get("KPI_PSEUDONYM_KEY")
    if value:
        return value.encode("utf-8")
    path = key_file()
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < 32:
            raise PseudonymKeyError(
                f"clé de pseudonymisation trop courte dans {path} (32 caractères minimum)"
            )
        return key.encode("utf-8")
    raise PseudonymKeyError(
        "aucune clé de pseudonymisation : les fichiers RH ne peuvent pas être intégrés. "
        f"Définissez KPI_PSEUDONYM_KEY, ou créez le fichier {path} avec `kpi init-key` "
        "(à conserver hors du dépôt : sans la même clé, les pseudonymes changent)."
    )


def create_key_file(path: Path | None = None) -> Path:
    """Write a new random key file if none exists (never overwrites)."""
    path = path or key_file()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def pseudonymiser(key: bytes) -> Callable[[str], str]:
    def pseudonym(value: str) -> str:
        digest = hmac.new(key, value.strip().upper().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:PSEUDONYM_LENGTH]

    return pseudonym
