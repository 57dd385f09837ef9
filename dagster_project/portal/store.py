"""The portal's own state: accounts, API tokens, sessions, login failures, uploads and the
journal of who did what (``journal``), in one SQLite file beside the warehouse
(``<warehouse folder>/.portal/portail.sqlite``).

Why not a table of the build warehouse: DuckDB accepts one writer, and the build database is
the pipeline's (a run holds it for minutes); the portal records an upload at once, while a
run may be writing. SQLite (WAL mode) lets the portal write and auditors read at the same
time; auditors query ``journal`` with any SQLite client (``sqlite3 .portal/portail.sqlite
"select * from journal"``), ``kpi portal journal`` prints it as CSV, the auditors' pages
show it, and each ``kpi run`` copies it into the warehouse (``journal.copy_journal``).

What an account is and how its password is hashed is ``accounts``; this module keeps the
rows: only hashes of passwords, API tokens and session ids are stored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from dagster_project.portal.accounts import (
    ROLES,
    Account,
    AccountError,
    _account,
    _check_password_strength,
    _dummy_hash,
    check_password,
    hash_password,
    sha256_hex,
)
from dagster_project.settings import Settings

SESSION_SECONDS = 8 * 3600  # a working day; then log in again
LOGIN_WINDOW_SECONDS = 15 * 60
MAX_FAILURES_PER_LOGIN = 5  # failed logins of one account within the window
MAX_FAILURES_PER_CLIENT = 20  # failed logins from one address within the window

SCHEMA = """
create table if not exists accounts (
    login text primary key,
    role text not null check (role in ('department', 'steering', 'auditor')),
    departments text not null default '',
    name text not null default '',
    email text not null default '',
    password_hash text not null,
    created_at text not null,
    updated_at text not null,
    disabled integer not null default 0
);
create table if not exists tokens (
    token_id text primary key,
    login text not null references accounts(login),
    token_hash text not null,
    label text not null default '',
    created_at text not null,
    revoked_at text
);
create table if not exists sessions (
    session_hash text primary key,
    login text not null references accounts(login),
    csrf text not null,
    created_at text not null,
    expires_at real not null,
    ended_at text
);
create table if not exists login_failures (
    at real not null,
    login text not null,
    client text not null
);
create table if not exists uploads (
    upload_id text primary key,
    login text not null,
    via text not null,
    year integer not null,
    department text not null,
    source_id text not null,
    original_name text not null,
    stored_path text not null,
    sha256 text not null,
    size integer not null,
    outcome text not null,
    problem_count integer not null,
    verdict_seconds real not null,
    received_at text not null,
    delivery_id text,
    report_path text
);
create table if not exists journal (
    id integer primary key autoincrement,
    at text not null,
    login text not null,
    role text not null,
    action text not null,
    year integer,
    department text,
    source_id text,
    detail text not null default '',
    client text not null default ''
);
"""


def now_iso() -> str:
    return dt.datetime.now().replace(microsecond=0).isoformat(sep=" ")


def state_dir(settings: Settings) -> Path:
    """``<warehouse folder>/.portal``: beside the warehouse, like ``.build`` and ``releases``."""
    return settings.warehouse.parent / ".portal"


class PortalStore:
    """The SQLite file; one connection per operation (threads of the web server)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.connect() as con:
            con.executescript(SCHEMA)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            con.row_factory = sqlite3.Row
            con.execute("pragma journal_mode=wal")
            con.execute("pragma foreign_keys=on")
            yield con
        finally:
            con.close()

    # --- accounts ------------------------------------------------------------------------

    def create_account(
        self,
        login: str,
        role: str,
        password: str,
        *,
        departments: tuple[str, ...] = (),
        name: str = "",
        email: str = "",
    ) -> Account:
        login = login.strip()
        if not login or not all(c.isalnum() or c in "._-@" for c in login):
            raise AccountError(
                f"identifiant « {login} » invalide : lettres, chiffres, « . », « _ », « - », « @ »"
            )
        if role not in ROLES:
            raise AccountError(f"rôle « {role} » inconnu (attendu : {', '.join(ROLES)})")
        if role == "department" and not departments:
            raise AccountError("un compte de direction doit avoir au moins une direction")
        _check_password_strength(password)
        stamp = now_iso()
        with self.connect() as con:
            if con.execute("select 1 from accounts where login = ?", [login]).fetchone():
                raise AccountError(f"le compte « {login} » existe déjà (kpi portal account reset)")
            con.execute(
                "insert into accounts (login, role, departments, name, email, password_hash, "
                "created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    login,
                    role,
                    ",".join(departments),
                    name,
                    email,
                    hash_password(password),
                    stamp,
                    stamp,
                ],
            )
        return self.account(login)

    def reset_password(self, login: str, password: str) -> None:
        _check_password_strength(password)
        with self.connect() as con:
            cursor = con.execute(
                "update accounts set password_hash = ?, updated_at = ?, disabled = 0 "
                "where login = ?",
                [hash_password(password), now_iso(), login],
            )
            if not cursor.rowcount:
                raise AccountError(f"compte « {login} » inconnu")
            # a new password ends every session of the account
            con.execute(
                "update sessions set ended_at = ? where login = ? and ended_at is null",
                [now_iso(), login],
            )

    def account(self, login: str) -> Account | None:
        with self.connect() as con:
            row = con.execute("select * from accounts where login = ?", [login]).fetchone()
        return _account(row) if row else None

    def accounts(self) -> list[Account]:
        with self.connect() as con:
            return [_account(r) for r in con.execute("select * from accounts order by login")]

    def authenticate(self, login: str, password: str) -> Account | None:
        with self.connect() as con:
            row = con.execute("select * from accounts where login = ?", [login]).fetchone()
        if row is None or row["disabled"]:
            check_password(password, _dummy_hash())
            return None
        return _account(row) if check_password(password, row["password_hash"]) else None

    # --- login rate limit -----------------------------------------------------------------

    def login_blocked(self, login: str, client: str) -> int:
        """Seconds before another attempt is allowed (0: allowed)."""
        since = time.time() - LOGIN_WINDOW_SECONDS
        with self.connect() as con:
            con.execute("delete from login_failures where at < ?", [since])
            for column, value, limit in (
                ("login", login, MAX_FAILURES_PER_LOGIN),
                ("client", client, MAX_FAILURES_PER_CLIENT),
            ):
                rows = con.execute(
                    f"select at from login_failures where {column} = ? order by at desc",  # noqa: S608
                    [value],
                ).fetchall()
                if len(rows) >= limit:
                    oldest = rows[limit - 1]["at"]
                    return max(1, int(oldest + LOGIN_WINDOW_SECONDS - time.time()) + 1)
        return 0

    def record_failure(self, login: str, client: str) -> None:
        with self.connect() as con:
            con.execute("insert into login_failures values (?, ?, ?)", [time.time(), login, client])

    def clear_failures(self, login: str) -> None:
        with self.connect() as con:
            con.execute("delete from login_failures where login = ?", [login])

    # --- sessions ---------------------------------------------------------------------------

    def open_session(self, login: str, seconds: int = SESSION_SECONDS) -> tuple[str, str, float]:
        """(session id, CSRF token, expiry); only the id's hash is stored."""
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = time.time() + seconds
        with self.connect() as con:
            con.execute(
                "insert into sessions values (?, ?, ?, ?, ?, null)",
                [sha256_hex(session_id), login, csrf, now_iso(), expires],
            )
        return session_id, csrf, expires

    def session(self, session_id: str) -> tuple[Account, str, float] | None:
        with self.connect() as con:
            row = con.execute(
                "select s.csrf, s.expires_at, a.* from sessions s join accounts a using (login) "
                "where s.session_hash = ? and s.ended_at is null and s.expires_at > ? "
                "and not a.disabled",
                [sha256_hex(session_id), time.time()],
            ).fetchone()
        return (_account(row), row["csrf"], row["expires_at"]) if row else None

    def end_session(self, session_id: str) -> None:
        with self.connect() as con:
            con.execute(
                "update sessions set ended_at = ? where session_hash = ?",
                [now_iso(), sha256_hex(session_id)],
            )

    # --- API tokens -------------------------------------------------------------------------

    def create_token(self, login: str, label: str = "") -> str:
        """A new token for ``login``, shown once: ``kpi_<id>_<secret>``."""
        if self.account(login) is None:
            raise AccountError(f"compte « {login} » inconnu")
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with self.connect() as con:
            con.execute(
                "insert into tokens values (?, ?, ?, ?, ?, null)",
                [token_id, login, sha256_hex(secret), label, now_iso()],
            )
        return f"kpi_{token_id}_{secret}"

    def revoke_token(self, token_id: str) -> str:
        token_id = token_id.removeprefix("kpi_").split("_")[0]
        with self.connect() as con:
            row = con.execute(
                "select login from tokens where token_id = ? and revoked_at is null", [token_id]
            ).fetchone()
            if row is None:
                raise AccountError(f"jeton « {token_id} » inconnu ou déjà révoqué")
            con.execute(
                "update tokens set revoked_at = ? where token_id = ?", [now_iso(), token_id]
            )
        return row["login"]

    def tokens(self) -> list[dict]:
        with self.connect() as con:
            return [
                dict(r)
                for r in con.execute(
                    "select token_id, login, label, created_at, revoked_at from tokens "
                    "order by created_at"
                )
            ]

    def token_account(self, token: str) -> Account | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "kpi":
            return None
        with self.connect() as con:
            row = con.execute(
                "select t.token_hash, a.* from tokens t join accounts a using (login) "
                "where t.token_id = ? and t.revoked_at is null and not a.disabled",
                [parts[1]],
            ).fetchone()
        if row is None or not hmac.compare_digest(row["token_hash"], sha256_hex(parts[2])):
            return None
        return _account(row)

    # --- uploads and journal ----------------------------------------------------------------

    def record_upload(self, row: dict) -> None:
        with self.connect() as con:
            names = list(row)
            con.execute(
                f"insert into uploads ({', '.join(names)}) values ({', '.join('?' * len(names))})",  # noqa: S608
                [row[n] for n in names],
            )

    def uploads(
        self, *, year: int | None = None, department: str | None = None, limit: int = 200
    ) -> list[dict]:
        where, params = [], []
        if year is not None:
            where.append("year = ?")
            params.append(year)
        if department is not None:
            where.append("department = ?")
            params.append(department)
        sql = "select * from uploads"
        if where:
            sql += " where " + " and ".join(where)
        sql += " order by received_at desc, rowid desc limit ?"
        with self.connect() as con:
            return [dict(r) for r in con.execute(sql, [*params, limit])]

    def upload(self, upload_id: str) -> dict | None:
        with self.connect() as con:
            row = con.execute("select * from uploads where upload_id = ?", [upload_id]).fetchone()
        return dict(row) if row else None

    def log(
        self,
        account: Account | None,
        action: str,
        *,
        year: int | None = None,
        department: str | None = None,
        source_id: str | None = None,
        detail: str = "",
        client: str = "",
        login: str | None = None,
    ) -> None:
        with self.connect() as con:
            con.execute(
                "insert into journal (at, login, role, action, year, department, source_id, "
                "detail, client) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    now_iso(),
                    account.login if account else (login or ""),
                    account.role if account else "",
                    action,
                    year,
                    department,
                    source_id,
                    detail,
                    client,
                ],
            )

    def journal(self, limit: int = 500, action: str | None = None) -> list[dict]:
        sql = "select * from journal"
        params: list = []
        if action:
            sql += " where action = ?"
            params.append(action)
        sql += " order by id desc limit ?"
        with self.connect() as con:
            return [dict(r) for r in con.execute(sql, [*params, limit])]
