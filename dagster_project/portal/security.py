"""Signed session cookies and the key that signs them, CSRF tokens, security headers.

The session cookie holds ``<session id>.<expiry>.<signature>`` (HMAC-SHA256 with the
portal's key): a cookie that was altered, has expired or whose session ended (logout, a new
password) is refused. It is ``HttpOnly``, ``SameSite=Strict``, ``Path=/``, and ``Secure``
behind HTTPS (``kpi portal --https-proxy``). Every form carries the session's CSRF token
(the login form a token of its own cookie, signed the same way), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

SESSION_COOKIE = "kpi_session"
LOGIN_COOKIE = "kpi_login"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def sign(key: bytes, payload: str) -> str:
    mac = hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{payload}.{mac}"


def unsign(key: bytes, value: str | None) -> str | None:
    if not value or "." not in value:
        return None
    payload, mac = value.rsplit(".", 1)
    expected = hmac.new(key, payload.encode("utf-8"), hashlib.sha256).hexdigest()
    return payload if hmac.compare_digest(mac, expected) else None


def session_cookie_value(key: bytes, session_id: str, expires: float) -> str:
    return sign(key, f"{session_id}.{int(expires)}")


def session_id_of(key: bytes, value: str | None) -> tuple[str | None, bool]:
    """(session id, expired): the id of a valid cookie; (None, True) for an expired one."""
    payload = unsign(key, value)
    if payload is None or "." not in payload:
        return None, False
    session_id, expires = payload.rsplit(".", 1)
    try:
        if int(expires) < time.time():
            return None, True
    except ValueError:
        return None, False
    return session_id, False


def new_login_token(key: bytes) -> tuple[str, str]:
    """(token for the form, cookie value)."""
    token = secrets.token_urlsafe(24)
    return token, sign(key, f"{token}.{int(time.time()) + 3600}")


def login_token_ok(key: bytes, cookie: str | None, submitted: str | None) -> bool:
    payload = unsign(key, cookie)
    if payload is None or not submitted:
        return False
    token, expires = payload.rsplit(".", 1)
    return int(expires) >= time.time() and hmac.compare_digest(token, submitted)


def tokens_equal(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a, b)


def secret_key(folder: Path) -> bytes:
    """The key signing the session cookies: ``KPI_PORTAL_SECRET``, or ``portal.secret`` in the
    state folder (created once, readable by its owner only)."""
    env = os.environ.get("KPI_PORTAL_SECRET")
    if env:
        return env.encode("utf-8")
    path = Path(folder) / "portal.secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode("utf-8")
