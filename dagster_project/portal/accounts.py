"""Who may sign in, and how a password is kept: the roles, the ``Account``, the password
rules and their scrypt hashes.

Passwords are kept only as scrypt hashes (salted, slow: ``hash_password``), compared in
constant time; an unknown login costs the same time as a wrong password (``_dummy_hash``).
API tokens and session ids are kept only as SHA-256 hashes of high-entropy secrets
(``sha256_hex``). No database here: the store (``store``) keeps the rows, this module says
what they mean.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

ROLES = {"department": "direction", "steering": "pilotage", "auditor": "audit"}
ROLE_LABELS_FR = {
    "department": "direction",
    "steering": "Direction du Pilotage Stratégique",
    "auditor": "auditeur",
}
# scrypt: 2^15 x 8 x 128 bytes = 32 MiB and about 0.1 s per hash, the OWASP minimum
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
MIN_PASSWORD_LENGTH = 12


class AccountError(ValueError):
    """A refused account operation; the message is French."""


@dataclass(frozen=True)
class Account:
    login: str
    role: str
    departments: tuple[str, ...]
    name: str
    email: str
    disabled: bool = False

    @property
    def role_fr(self) -> str:
        return ROLE_LABELS_FR[self.role]

    def may_deliver_for(self, department: str) -> bool:
        return self.role == "department" and department in self.departments


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM,
        dklen=32,
    )
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=32,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed, base64.b64decode(digest))


# a hash to compare with when the login is unknown: the same time is spent either way
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(16))
    return _DUMMY_HASH


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 20 characters, 120 bits


def _account(row) -> Account:
    return Account(
        login=row["login"],
        role=row["role"],
        departments=tuple(d for d in row["departments"].split(",") if d),
        name=row["name"],
        email=row["email"],
        disabled=bool(row["disabled"]),
    )


def _check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"mot de passe trop court : {MIN_PASSWORD_LENGTH} caractères au moins")
