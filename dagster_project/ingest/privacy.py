"""Keyed pseudonyms for personal identifiers (HR ``matricule``).

The key comes from ``KPI_PSEUDONYM_KEY`` (the key itself) or from the file named by
``KPI_PSEUDONYM_KEY_FILE`` (default ``secrets/pseudonym.key``, git-ignored). There is no
built-in default: without a key, ingesting a personal source fails with a clear message.
The same key gives the same pseudonym year after year, so an agent can be followed across
campaigns without the warehouse ever holding the identifier.

A key, from the environment or the file, has at least ``MIN_KEY_LENGTH`` characters. The
first use of a key on a warehouse records its fingerprint (an HMAC of a fixed label with the
key: it identifies the key without revealing it) in ``raw_restricted.pseudonym_key``, never
published; a later run with another key is refused before any HR file is read
(``check_key``), instead of silently giving every agent new pseudonyms.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from dagster_project.settings import PROJECT_ROOT
from dagster_project.warehouse.relations import table_exists
from dagster_project.warehouse.schema import ensure

DEFAULT_KEY_FILE = PROJECT_ROOT / "secrets" / "pseudonym.key"
PSEUDONYM_LENGTH = 16
MIN_KEY_LENGTH = 32
FINGERPRINT_TABLE = "raw_restricted.pseudonym_key"
FINGERPRINT_LABEL = b"kpi-warehouse:pseudonym-key-fingerprint:v1"


class PseudonymKeyError(RuntimeError):
    pass


def key_file() -> Path:
    return Path(os.environ.get("KPI_PSEUDONYM_KEY_FILE", DEFAULT_KEY_FILE))


def load_key() -> bytes:
    value = os.environ.get("KPI_PSEUDONYM_KEY")
    if value:
        if len(value.strip()) < MIN_KEY_LENGTH:
            raise PseudonymKeyError(
                "clé de pseudonymisation trop courte dans KPI_PSEUDONYM_KEY "
                f"({MIN_KEY_LENGTH} caractères minimum ; `kpi init-key` en crée une)"
            )
        return value.encode("utf-8")
    path = key_file()
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if len(key) < MIN_KEY_LENGTH:
            raise PseudonymKeyError(
                f"clé de pseudonymisation trop courte dans {path} "
                f"({MIN_KEY_LENGTH} caractères minimum)"
            )
        return key.encode("utf-8")
    raise PseudonymKeyError(
        "aucune clé de pseudonymisation : les fichiers RH ne peuvent pas être intégrés. "
        f"Définissez KPI_PSEUDONYM_KEY, ou créez le fichier {path} avec `kpi init-key` "
        "(à conserver hors du dépôt : sans la même clé, les pseudonymes changent)."
    )


def key_configured() -> bool:
    """A key is given (``KPI_PSEUDONYM_KEY`` or the key file), valid or not."""
    return bool(os.environ.get("KPI_PSEUDONYM_KEY")) or key_file().is_file()


def create_key_file(path: Path | None = None) -> Path:
    """Write a new random key file if none exists (never overwrites). The file is created
    with its final permissions (0600, owner only): the key is never readable by others, not
    even for an instant."""
    path = path or key_file()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # created meanwhile by another process: kept as it is
        return path
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def key_fingerprint(key: bytes) -> str:
    """Identifies a key without revealing it: HMAC-SHA256 of a fixed label, keyed by it."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()


def recorded_fingerprint(con) -> tuple[str, object] | None:
    """(fingerprint, recorded_at) of the key the warehouse was built with, if recorded."""
    if not table_exists(con, FINGERPRINT_TABLE):
        return None
    row = con.execute(
        f"select fingerprint, recorded_at from {FINGERPRINT_TABLE} order by recorded_at limit 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def mismatch_message(recorded_at) -> str:
    when = f" (clé enregistrée le {recorded_at:%d/%m/%Y})" if recorded_at else ""
    return (
        "la clé de pseudonymisation n'est pas celle avec laquelle l'entrepôt a été construit"
        f"{when} : les pseudonymes des agents ne correspondraient plus à ceux des années déjà "
        "intégrées. Aucun fichier RH n'a été intégré. Rétablissez la clé d'origine "
        f"(KPI_PSEUDONYM_KEY, ou le fichier {key_file()}, à reprendre de la sauvegarde) ; "
        "l'entrepôt ne garde que son empreinte, jamais la clé."
    )


def check_key(con, key: bytes, *, record: bool = True) -> None:
    """Refuse a key other than the one the warehouse was built with (``PseudonymKeyError``,
    French message); with ``record``, record this key's fingerprint when none is (the first
    use of a key on this warehouse, before its first pseudonym is written)."""
    fingerprint = key_fingerprint(key)
    recorded = recorded_fingerprint(con)
    if recorded is not None:
        if not hmac.compare_digest(recorded[0], fingerprint):
            raise PseudonymKeyError(mismatch_message(recorded[1]))
        return
    if not record:
        return
    ensure(con, FINGERPRINT_TABLE)
    con.execute(
        f"insert into {FINGERPRINT_TABLE} values (?, ?, current_timestamp::timestamp)",
        [fingerprint, "HMAC-SHA256(clé, " + FINGERPRINT_LABEL.decode() + ")"],
    )


def pseudonymiser(key: bytes) -> Callable[[str], str]:
    def pseudonym(value: str) -> str:
        digest = hmac.new(key, value.strip().upper().encode("utf-8"), hashlib.sha256)
        return digest.hexdigest()[:PSEUDONYM_LENGTH]

    return pseudonym
