"""Access control for the HTTP API.

People are users with a role (viewer < staff < admin) who log in for a session token;
machines (ingest clients, wall displays) use API keys with scopes. Both are presented as
`Authorization: Bearer <token or key>` (or `X-API-Key: <key>`). Every change to users and
keys, and every login lockout, goes to the audit trail.

Secrets at rest: passwords are scrypt hashes; session tokens and API key secrets are stored
only as SHA-256 hashes, so a copy of the database lets nobody log in or call the API.

Wiring: `app.state.auth` holds the `AuthStore`, `app.state.clock` the `Clock`. Routes take
`Viewer`, `Staff`, `Admin` or `Ingester` as a parameter type; `router` serves login, users,
API keys and the audit trail.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.audit import AuditTrail
from gateway.clock import Clock
from gateway.problems import problems
from gateway.storage.sqlite import connect


class Role(StrEnum):
    VIEWER = "viewer"
    STAFF = "staff"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.STAFF: 1, Role.ADMIN: 2}


def allows(have: Role, need: Role) -> bool:
    """Whether a user with role `have` may do what needs role `need`."""
    return _RANK[have] >= _RANK[need]


class Scope(StrEnum):
    """What an API key may do. `admin` includes all the others."""

    READ = "read"
    INGEST = "ingest"
    ACK = "ack"
    ADMIN = "admin"


class AuthSettings(BaseModel):
    """Failed logins are counted over a sliding window of `login_lockout_min`. A user name is
    never locked for everyone: that would let anyone outside lock the head of logistics out.
    What is locked is a client address, for one user name (`login_max_failures`) or for all
    of them (`login_max_failures_per_client`, a client guessing across names). Failures
    against one name from many addresses slow that name's logins down instead: each answer
    waits `login_slow_delay_s`, doubled for every further `login_max_failures` failures, at
    most `login_slow_max_delay_s`; the right password still gets in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_ttl_h: float = Field(12, gt=0)
    login_max_failures: int = Field(5, ge=1, description="per user name and client address")
    login_max_failures_per_client: int = Field(20, ge=1, description="per client address, over all user names")
    login_lockout_min: float = Field(15, gt=0)
    login_slow_after_failures: int = Field(10, ge=2, description="per user name, from all addresses")
    login_slow_delay_s: float = Field(1.0, ge=0)
    login_slow_max_delay_s: float = Field(8.0, ge=0)
    # Reads without login, e.g. a wall display on the intranet. Writes always need a login.
    public_read: bool = False

    @model_validator(mode="after")
    def _limits_in_order(self) -> Self:
        # One address can add at most `login_max_failures` failures to a name within the
        # window (it is locked after): above that, only many addresses slow a name down.
        if self.login_slow_after_failures <= self.login_max_failures:
            raise ValueError(f"login_slow_after_failures ({self.login_slow_after_failures}) must be more than "
                             f"login_max_failures ({self.login_max_failures}): one address alone must not slow "
                             "a user's logins down for everyone")
        if self.login_max_failures_per_client < self.login_max_failures:
            raise ValueError(f"login_max_failures_per_client ({self.login_max_failures_per_client}) must be at "
                             f"least login_max_failures ({self.login_max_failures})")
        if self.login_slow_max_delay_s < self.login_slow_delay_s:
            raise ValueError("login_slow_max_delay_s must be at least login_slow_delay_s")
        return self

    def slow_delay_s(self, failures: int) -> float:
        """How long a login for a name waits, given the name's failures in the window."""
        if failures < self.login_slow_after_failures:
            return 0.0
        doublings = min(32, (failures - self.login_slow_after_failures) // self.login_max_failures)
        return min(self.login_slow_max_delay_s, math.ldexp(self.login_slow_delay_s, doublings))


class AuthError(Exception):
    """A refusal by the `AuthStore`."""


class LoginRefused(AuthError):
    def __init__(self) -> None:
        # One message for an unknown name and a wrong password: it must not tell which.
        super().__init__("wrong user name or password")


LockedBy = Literal["username_and_client", "client"]


class LoginLocked(AuthError):
    def __init__(self, retry_after_s: int, by: LockedBy) -> None:
        where = "for this user name from this address" if by == "username_and_client" else "from this address"
        super().__init__(f"too many failed logins {where}: try again in {retry_after_s} s")
        self.retry_after_s = retry_after_s
        self.by = by


class NotFound(AuthError):
    pass


class Conflict(AuthError):
    pass


class InvalidInput(ValueError):
    """A user name, password, key name or scope list that breaks the rules below."""


MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USER_NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
_USER_NAME = re.compile(USER_NAME_PATTERN)
MAX_KEY_NAME_LENGTH = 100
API_KEY_PREFIX = "fgk_"

# scrypt at n=2**14, r=8, p=1 takes about 40 ms and 16 MiB per hash, which is what makes
# guessing from a stolen hash slow. The parameters are stored with each hash, so raising
# them later leaves existing hashes verifiable.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # OpenSSL's default cap (32 MiB) leaves no room for raising n


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=length)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters, this one has "
                           f"{len(password)}")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password has at most {MAX_PASSWORD_LENGTH} characters")


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (base64) for a password that passes `check_password`."""
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P, 32)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    _, n, r, p, salt, expected = stored.split("$")
    want = base64.b64decode(expected)
    got = _scrypt(password, base64.b64decode(salt), int(n), int(r), int(p), len(want))
    return hmac.compare_digest(got, want)


@cache
def _dummy_hash() -> str:
    """A hash to verify against when the user name is unknown, so that answering takes
    as long as for a known name and timing does not reveal which names exist."""
    return hash_password(secrets.token_urlsafe(16))


def _sha256(secret: str) -> str:
    # Session tokens and key secrets are 256 random bits: nobody can find one from its hash,
    # so a fast hash is enough, and a slow one would cost every API request.
    return hashlib.sha256(secret.encode()).hexdigest()


def check_user_name(name: str) -> None:
    if not _USER_NAME.fullmatch(name):
        raise InvalidInput(f"user name {name!r}: 1 to 64 of a-z, 0-9 and . _ @ -, starting with a letter or digit")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with a role), an API key (with scopes, named `key:<id>`) or,
    when public reads are on, the anonymous viewer."""

    name: str
    kind: Literal["user", "api_key", "anonymous"]
    role: Role | None
    scopes: frozenset[Scope]

    def can(self, need: Role, scope: Scope) -> bool:
        """A user (or the anonymous viewer) by role, an API key by scope."""
        if self.role is not None:
            return allows(self.role, need)
        return scope in self.scopes or Scope.ADMIN in self.scopes


ANONYMOUS = Principal("anonymous", "anonymous", Role.VIEWER, frozenset({Scope.READ}))


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the only time the token exists outside the client
    user: str
    role: Role
    expires_ms: int


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created_ms: int
    disabled: bool


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[Scope]
    created_ms: int
    created_by: str
    revoked_ms: int | None
    last_used_ms: int | None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,              -- viewer, staff or admin
    password_hash TEXT NOT NULL,     -- scrypt$n$r$p$salt$hash (base64)
    created_ms INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,     -- SHA-256 (hex) of the token, which is never stored
    user TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,             -- the <id> in fgk_<id>_<secret>
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,            -- comma-separated
    secret_hash TEXT NOT NULL,       -- SHA-256 (hex) of <secret>, which is never stored
    created_ms INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    revoked_ms INTEGER,
    last_used_ms INTEGER             -- to the minute: tells which keys are still in use
);
CREATE TABLE IF NOT EXISTS login_failures (
    username TEXT NOT NULL,          -- as typed: failures for unknown names count too
    client TEXT NOT NULL,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_username ON login_failures (username, at_ms);
CREATE INDEX IF NOT EXISTS login_failures_client ON login_failures (client, at_ms);
CREATE INDEX IF NOT EXISTS login_failures_pair ON login_failures (username, client, at_ms);
"""

# The n-th newest failure inside the window, by user name and client address together, and
# by client address alone: what locks.
_NTH_FAILURE_BY_PAIR = (
    "SELECT at_ms FROM login_failures WHERE username = ? AND client = ? AND at_ms > ? "
    "ORDER BY at_ms DESC LIMIT 1 OFFSET ?"
)
_NTH_FAILURE_BY_CLIENT = (
    "SELECT at_ms FROM login_failures WHERE client = ? AND at_ms > ? ORDER BY at_ms DESC LIMIT 1 OFFSET ?"
)
_LAST_USED_RESOLUTION_MS = 60_000


class AuthStore:
    """Users, sessions, API keys and login failures in SQLite. Thread-safe. Every method
    that depends on time takes `now_ms` (Unix milliseconds)."""

    def __init__(self, path: Path, settings: AuthSettings, audit: AuditTrail) -> None:
        self.path = path
        self.settings = settings
        self.audit = audit
        self._conn = connect(path, _SCHEMA)
        self._lock = threading.Lock()  # one connection, used by one thread at a time

    def close(self) -> None:
        """Closes this store's connection; the audit trail belongs to the caller."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The block runs under the lock in one transaction. IMMEDIATE takes the write lock
        up front: a read-then-write transaction that upgrades later can fail at once with
        SQLITE_BUSY when another connection (the data writer) wrote in between.

        Audit entries are recorded after the block: the audit trail has its own connection,
        which would wait for this transaction's write lock."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # Users

    def add_user(self, name: str, role: Role, password: str, actor: str, now_ms: int) -> User:
        check_user_name(name)
        password_hash = hash_password(password)
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"user {name!r} exists")
            conn.execute(
                "INSERT INTO users (name, role, password_hash, created_ms, disabled) VALUES (?, ?, ?, ?, 0)",
                (name, role.value, password_hash, now_ms),
            )
        self.audit.record(now_ms, actor, "user.add", name, {"role": role.value})
        return User(name, role, now_ms, disabled=False)

    def user(self, name: str) -> User:
        with self._lock:
            return self._user(self._conn, name)

    def list_users(self) -> list[User]:
        with self._lock:
            rows = self._conn.execute("SELECT name, role, created_ms, disabled FROM users ORDER BY name").fetchall()
        return [User(name, Role(role), created, bool(disabled)) for name, role, created, disabled in rows]

    def set_role(self, name: str, role: Role, actor: str, now_ms: int) -> User:
        with self._transaction() as conn:
            user = self._user(conn, name)
            if user.role is role:
                return user
            if user.role is Role.ADMIN and not user.disabled:
                self._keep_an_admin(conn, name)
            conn.execute("UPDATE users SET role = ? WHERE name = ?", (role.value, name))
        self.audit.record(now_ms, actor, "user.role", name, {"from": user.role.value, "to": role.value})
        return replace(user, role=role)

    def set_password(self, name: str, password: str, actor: str, now_ms: int) -> User:
        """Also ends the user's sessions: a new password is often the answer to a leaked one."""
        password_hash = hash_password(password)
        with self._transaction() as conn:
            user = self._user(conn, name)
            conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))
            conn.execute("DELETE FROM sessions WHERE user = ?", (name,))
        self.audit.record(now_ms, actor, "user.password", name, {})
        return user

    def disable_user(self, name: str, actor: str, now_ms: int) -> User:
        """Refuses the user's logins and ends their sessions. Their API keys stay valid:
        keys are revoked one by one."""
        return self._set_disabled(name, True, actor, now_ms)

    def enable_user(self, name: str, actor: str, now_ms: int) -> User:
        return self._set_disabled(name, False, actor, now_ms)

    def _set_disabled(self, name: str, disabled: bool, actor: str, now_ms: int) -> User:
        with self._transaction() as conn:
            user = self._user(conn, name)
            if user.disabled is disabled:
                return user
            if disabled and user.role is Role.ADMIN:
                self._keep_an_admin(conn, name)
            conn.execute("UPDATE users SET disabled = ? WHERE name = ?", (int(disabled), name))
            if disabled:
                conn.execute("DELETE FROM sessions WHERE user = ?", (name,))
        self.audit.record(now_ms, actor, "user.disable" if disabled else "user.enable", name, {})
        return replace(user, disabled=disabled)

    @staticmethod
    def _user(conn: sqlite3.Connection, name: str) -> User:
        row = conn.execute("SELECT role, created_ms, disabled FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise NotFound(f"no user {name!r}")
        return User(name, Role(row[0]), row[1], bool(row[2]))

    @staticmethod
    def _keep_an_admin(conn: sqlite3.Connection, name: str) -> None:
        """Refuses to demote or disable the last enabled admin: nobody could manage users after."""
        (others,) = conn.execute(
            "SELECT count(*) FROM users WHERE role = ? AND NOT disabled AND name != ?", (Role.ADMIN.value, name)
        ).fetchone()
        if others == 0:
            raise Conflict(f"{name!r} is the last enabled admin")

    # Sessions

    def login(self, name: str, password: str, client: str, now_ms: int) -> Session:
        """A new session, or `LoginRefused` (unknown name, wrong password or disabled user,
        not saying which), or `LoginLocked` when this client address has had
        `login_max_failures` failures for this name, or `login_max_failures_per_client` for
        any names, within `login_lockout_min`. The name itself is never locked: see
        `login_delay_s` for what many addresses' failures do."""
        window_ms = self._window_ms
        with self._transaction() as conn:
            conn.execute("DELETE FROM login_failures WHERE at_ms <= ?", (now_ms - window_ms,))
            locked = self._locked_until(conn, name, client, now_ms)
            if locked is not None:
                until, by = locked
                raise LoginLocked(math.ceil((until - now_ms) / 1000), by)
            # The attempt counts as a failure until the password checks out: the hash is
            # computed outside the lock, and concurrent guesses must not all slip in under
            # the limit meanwhile.
            conn.execute("INSERT INTO login_failures (username, client, at_ms) VALUES (?, ?, ?)",
                         (name, client, now_ms))
            row = conn.execute("SELECT role, password_hash, disabled FROM users WHERE name = ?", (name,)).fetchone()
        if row is None:
            verify_password(password, _dummy_hash())
            self._after_failure(name, client, now_ms)
            raise LoginRefused
        role, password_hash, disabled = row
        if not verify_password(password, password_hash) or disabled:
            self._after_failure(name, client, now_ms)
            raise LoginRefused
        token = secrets.token_urlsafe(32)
        expires_ms = now_ms + round(self.settings.session_ttl_h * 3_600_000)
        with self._transaction() as conn:
            # This address's failures for this name only: a success elsewhere must not give
            # a guessing address its attempts back.
            conn.execute("DELETE FROM login_failures WHERE username = ? AND client = ?", (name, client))
            conn.execute("DELETE FROM sessions WHERE expires_ms <= ?", (now_ms,))
            conn.execute("INSERT INTO sessions (token_hash, user, expires_ms) VALUES (?, ?, ?)",
                         (_sha256(token), name, expires_ms))
        return Session(token, name, Role(role), expires_ms)

    def login_delay_s(self, name: str, now_ms: int) -> float:
        """How long to wait before answering a login for `name`: 0 unless many addresses
        have failed for it lately (see `AuthSettings`). The wait is the caller's to take,
        without holding a thread."""
        with self._lock:
            (failures,) = self._conn.execute(
                "SELECT count(*) FROM login_failures WHERE username = ? AND at_ms > ?", (name, now_ms - self._window_ms)
            ).fetchone()
        return self.settings.slow_delay_s(failures)

    @property
    def _window_ms(self) -> int:
        return round(self.settings.login_lockout_min * 60_000)

    def _locked_until(
        self, conn: sqlite3.Connection, name: str, client: str, now_ms: int
    ) -> tuple[int, LockedBy] | None:
        """When the lock on this client for this name, or on this client for all names, ends
        and which it is (the later one), or None if neither is locked. A lock holds while
        its number of failures is inside the window, that is until the n-th newest of them
        leaves it."""
        since, s = now_ms - self._window_ms, self.settings
        ends: list[tuple[int, LockedBy]] = []
        pair = conn.execute(_NTH_FAILURE_BY_PAIR, (name, client, since, s.login_max_failures - 1)).fetchone()
        if pair is not None:
            ends.append((pair[0] + self._window_ms, "username_and_client"))
        alone = conn.execute(_NTH_FAILURE_BY_CLIENT, (client, since, s.login_max_failures_per_client - 1)).fetchone()
        if alone is not None:
            ends.append((alone[0] + self._window_ms, "client"))
        return max(ends, default=None)

    def _after_failure(self, name: str, client: str, now_ms: int) -> None:
        """Audits the failure that starts a lock (and only that one: locked attempts are
        refused before they count), and the one from which the name's logins are slowed."""
        since, s = now_ms - self._window_ms, self.settings
        with self._lock:
            by_pair, by_client, by_name, clients = self._conn.execute(
                "SELECT count(*) FILTER (WHERE username = :name AND client = :client), "
                "count(*) FILTER (WHERE client = :client), count(*) FILTER (WHERE username = :name), "
                "count(DISTINCT client) FILTER (WHERE username = :name) "
                "FROM login_failures WHERE (username = :name OR client = :client) AND at_ms > :since",
                {"name": name, "client": client, "since": since},
            ).fetchone()
            locked_until = self._locked_until(self._conn, name, client, now_ms)
        locked: list[LockedBy] = []
        if by_pair == s.login_max_failures:
            locked.append("username_and_client")
        if by_client == s.login_max_failures_per_client:
            locked.append("client")
        if locked and locked_until is not None:
            self.audit.record(now_ms, f"client:{client}", "login.locked", name,
                              {"by": locked, "retry_after_s": math.ceil((locked_until[0] - now_ms) / 1000)})
        if by_name == s.login_slow_after_failures:
            self.audit.record(now_ms, f"client:{client}", "login.slowed", name,
                              {"failures": by_name, "clients": clients, "delay_s": s.slow_delay_s(by_name)})

    def logout(self, token: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_sha256(token),))

    def principal_for_token(self, token: str, now_ms: int) -> Principal | None:
        """The user of an unexpired session, unless disabled since."""
        with self._lock:
            row = self._conn.execute(
                "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user "
                "WHERE s.token_hash = ? AND s.expires_ms > ? AND NOT u.disabled",
                (_sha256(token), now_ms),
            ).fetchone()
        return None if row is None else Principal(row[0], "user", Role(row[1]), frozenset())

    # API keys

    def create_api_key(self, name: str, scopes: Iterable[Scope], actor: str, now_ms: int) -> str:
        """The full key `fgk_<id>_<secret>`: shown once, only its hash is kept."""
        if not name.strip() or len(name) > MAX_KEY_NAME_LENGTH:
            raise InvalidInput(f"an API key's name has 1 to {MAX_KEY_NAME_LENGTH} characters, not all blank")
        scope_set = frozenset(scopes)
        if not scope_set:
            raise InvalidInput("an API key needs at least one scope")
        key_id = secrets.token_hex(8)  # hex never holds the "_" that separates the key's parts
        secret = secrets.token_urlsafe(32)
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, name, scopes, secret_hash, created_ms, created_by) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (key_id, name, _join_scopes(scope_set), _sha256(secret), now_ms, actor),
            )
        self.audit.record(now_ms, actor, "api_key.create", key_id,
                          {"name": name, "scopes": sorted(s.value for s in scope_set)})
        return f"{API_KEY_PREFIX}{key_id}_{secret}"

    def api_key(self, key_id: str) -> ApiKey:
        with self._lock:
            row = self._conn.execute(_SELECT_API_KEYS + " WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(row)

    def list_api_keys(self) -> list[ApiKey]:
        with self._lock:
            rows = self._conn.execute(_SELECT_API_KEYS + " ORDER BY created_ms, id").fetchall()
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, actor: str, now_ms: int) -> ApiKey:
        """Revoking a revoked key changes nothing."""
        with self._transaction() as conn:
            row = conn.execute(_SELECT_API_KEYS + " WHERE id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"no API key {key_id!r}")
            key = _api_key(row)
            if key.revoked_ms is not None:
                return key
            conn.execute("UPDATE api_keys SET revoked_ms = ? WHERE id = ?", (now_ms, key_id))
        self.audit.record(now_ms, actor, "api_key.revoke", key_id, {"name": key.name})
        return replace(key, revoked_ms=now_ms)

    def principal_for_api_key(self, key: str, now_ms: int) -> Principal | None:
        """The principal `key:<id>` of an unrevoked key; notes when it was used."""
        if not key.startswith(API_KEY_PREFIX):
            return None
        key_id, _, secret = key.removeprefix(API_KEY_PREFIX).partition("_")
        with self._lock:
            row = self._conn.execute(
                "SELECT scopes, secret_hash, last_used_ms FROM api_keys WHERE id = ? AND revoked_ms IS NULL",
                (key_id,),
            ).fetchone()
            if row is None or not hmac.compare_digest(row[1], _sha256(secret)):
                return None
            # Once a minute at most: an ingest client calling every few seconds should not
            # turn every request into a write.
            if row[2] is None or now_ms - row[2] >= _LAST_USED_RESOLUTION_MS:
                self._conn.execute("UPDATE api_keys SET last_used_ms = ? WHERE id = ?", (now_ms, key_id))
        return Principal(f"key:{key_id}", "api_key", None, _split_scopes(row[0]))

    def authenticate(self, credential: str, now_ms: int) -> Principal | None:
        """The principal for a session token or an API key, or None."""
        if credential.startswith(API_KEY_PREFIX):
            principal = self.principal_for_api_key(credential, now_ms)
            if principal is not None:
                return principal
        # A session token is random text and may itself begin with the key prefix.
        return self.principal_for_token(credential, now_ms)


_SELECT_API_KEYS = "SELECT id, name, scopes, created_ms, created_by, revoked_ms, last_used_ms FROM api_keys"


def _api_key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, scopes, created_ms, created_by, revoked_ms, last_used_ms = row
    return ApiKey(key_id, name, _split_scopes(scopes), created_ms, created_by, revoked_ms, last_used_ms)


def _join_scopes(scopes: frozenset[Scope]) -> str:
    return ",".join(sorted(s.value for s in scopes))


def _split_scopes(text: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in text.split(","))


# FastAPI

# Declared as security schemes so that /docs offers to log in; parsed leniently here and
# strictly in `_credential`.
_bearer = HTTPBearer(auto_error=False, description="a session token from /api/v1/auth/login, or an API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def _store(request: Request) -> AuthStore:
    store: AuthStore = request.app.state.auth
    return store


def _now_ms(request: Request) -> int:
    clock: Clock = request.app.state.clock
    return int(clock.now().timestamp() * 1000)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def _credential(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key_header)],
) -> str | None:
    """The token or key presented, None when there is none. A header that is there but
    malformed is refused: it must never fall back to anonymous access."""
    if bearer is not None:
        return bearer.credentials
    if "authorization" in request.headers:
        raise _unauthorized("the Authorization header must be 'Bearer <token or API key>'")
    if api_key is not None:
        return api_key
    if "x-api-key" in request.headers:
        raise _unauthorized("the X-API-Key header is empty")
    return None


StoreDep = Annotated[AuthStore, Depends(_store)]
NowMs = Annotated[int, Depends(_now_ms)]
Credential = Annotated[str | None, Depends(_credential)]


def _authenticate(store: AuthStore, now_ms: int, credential: str | None, anonymous_ok: bool) -> Principal:
    if credential is None:
        if anonymous_ok:
            return ANONYMOUS
        raise _unauthorized("log in, or present an API key")
    principal = store.authenticate(credential, now_ms)
    if principal is None:
        raise _unauthorized("the token or API key is unknown, expired or revoked")
    return principal


def _anonymous_ok(settings: AuthSettings, need: Role, scope: Scope) -> bool:
    return settings.public_read and need is Role.VIEWER and scope is Scope.READ


def require(need: Role, scope: Scope) -> Callable[[AuthStore, int, str | None], Principal]:
    """A dependency that answers 401 without valid credentials and 403 when the caller's
    role (users) or scopes (API keys) do not cover `need`/`scope`. With `public_read`,
    anonymous callers pass where a viewer with the read scope would."""

    def dependency(store: StoreDep, now_ms: NowMs, credential: Credential) -> Principal:
        principal = _authenticate(store, now_ms, credential, _anonymous_ok(store.settings, need, scope))
        if not principal.can(need, scope):
            lacking = f"the role {need}" if principal.role is not None else f"the scope {scope}"
            raise HTTPException(403, f"{principal.name} lacks {lacking}")
        return principal

    return dependency


_viewer = require(Role.VIEWER, Scope.READ)
Viewer = Annotated[Principal, Depends(_viewer)]
Staff = Annotated[Principal, Depends(require(Role.STAFF, Scope.ACK))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN, Scope.ADMIN))]
Ingester = Annotated[Principal, Depends(require(Role.STAFF, Scope.INGEST))]


@dataclass(frozen=True, slots=True)
class Grant:
    """Access as it was granted to a request, to be checked again while its answer lasts: a
    live stream must end once the next request with the same credential would be refused
    (the session ended or expired, the user disabled, the key revoked)."""

    principal: Principal
    credential: str | None
    need: Role
    scope: Scope
    store: AuthStore
    clock: Clock

    def holds(self) -> bool:
        """Whether the credential still passes. Reads SQLite: call it off the event loop."""
        if self.credential is None:
            return _anonymous_ok(self.store.settings, self.need, self.scope)
        principal = self.store.authenticate(self.credential, int(self.clock.now().timestamp() * 1000))
        return principal is not None and principal.can(self.need, self.scope)


async def _viewer_grant(request: Request, principal: Viewer, credential: Credential) -> Grant:
    # async: nothing here blocks, and a sync dependency would wait for a pool thread
    clock: Clock = request.app.state.clock
    return Grant(principal, credential, Role.VIEWER, Scope.READ, _store(request), clock)


# For answers that last (the live stream): a `Viewer` whose access can be checked again.
ViewerGrant = Annotated[Grant, Depends(_viewer_grant)]


@contextmanager
def _http_errors() -> Iterator[None]:
    """The store's refusals as HTTP answers."""
    try:
        yield
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(409, str(exc)) from None
    except InvalidInput as exc:
        raise HTTPException(422, str(exc)) from None


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(pattern=USER_NAME_PATTERN)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)


class LoginOut(BaseModel):
    token: str
    expires: datetime
    user: str
    role: Role


class PrincipalOut(BaseModel):
    name: str
    kind: Literal["user", "api_key", "anonymous"]
    role: Role | None
    scopes: list[Scope]


class UserOut(BaseModel):
    name: str
    role: Role
    created: datetime
    disabled: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=USER_NAME_PATTERN)
    role: Role
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


class UserPatch(BaseModel):
    """Fields left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    password: str | None = Field(None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    disabled: bool | None = None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH, pattern=r"\S")
    scopes: list[Scope] = Field(min_length=1)


class ApiKeyOut(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created: datetime
    created_by: str
    revoked: datetime | None
    last_used: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown this once, only its hash is kept")


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def _user_out(user: User) -> UserOut:
    return UserOut(name=user.name, role=user.role, created=_dt(user.created_ms), disabled=user.disabled)


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id, name=key.name, scopes=sorted(key.scopes), created=_dt(key.created_ms), created_by=key.created_by,
        revoked=None if key.revoked_ms is None else _dt(key.revoked_ms),
        last_used=None if key.last_used_ms is None else _dt(key.last_used_ms),
    )


router = APIRouter(tags=["auth"], responses=problems(400, 401, 403, 404, 409, 422, 429))

# Endpoints are plain `def`: FastAPI runs them in its thread pool, so SQLite and scrypt
# never block the event loop. Login is the exception, for its wait.


@router.post(
    "/api/v1/auth/login",
    responses={401: {"description": "wrong user name or password"},
               429: {"description": "too many failed logins from this address; see Retry-After"}},
)
async def login(body: LoginIn, request: Request, store: StoreDep) -> LoginOut:
    """Answers later while many addresses are guessing this user's password, but never
    refuses the right password from an address that has not failed."""
    delay_s = await run_in_threadpool(store.login_delay_s, body.username, _now_ms(request))
    if delay_s > 0:
        # On the event loop, not in a thread: guesses in parallel must not tie up the pool.
        await asyncio.sleep(delay_s)
    try:
        session = await run_in_threadpool(store.login, body.username, body.password, _client(request),
                                          _now_ms(request))
    except LoginLocked as exc:
        raise HTTPException(429, str(exc),
                            headers={"Retry-After": str(exc.retry_after_s)}) from None
    except LoginRefused as exc:
        raise _unauthorized(str(exc)) from None
    return LoginOut(token=session.token, expires=_dt(session.expires_ms), user=session.user, role=session.role)


@router.post("/api/v1/auth/logout", status_code=204)
def logout(store: StoreDep, credential: Credential) -> None:
    """Ends the session of the bearer token. Ending an unknown or ended session is no error."""
    if credential is None:
        raise _unauthorized("no session to end")
    store.logout(credential)


@router.get("/api/v1/auth/me")
def me(store: StoreDep, now_ms: NowMs, credential: Credential) -> PrincipalOut:
    """Who the caller is; any valid credential will do, whatever its role or scopes."""
    principal = _authenticate(store, now_ms, credential, store.settings.public_read)
    return PrincipalOut(name=principal.name, kind=principal.kind, role=principal.role,
                        scopes=sorted(principal.scopes))


@router.get("/api/v1/users")
def list_users(_admin: Admin, store: StoreDep) -> list[UserOut]:
    return [_user_out(u) for u in store.list_users()]


@router.post("/api/v1/users", status_code=201,
             responses={409: {"description": "the user exists"}})
def add_user(body: UserIn, admin: Admin, store: StoreDep, now_ms: NowMs) -> UserOut:
    with _http_errors():
        return _user_out(store.add_user(body.name, body.role, body.password, admin.name, now_ms))


@router.patch("/api/v1/users/{name}",
              responses={404: {"description": "no such user"}, 409: {"description": "the last enabled admin"}})
def update_user(name: str, body: UserPatch, admin: Admin, store: StoreDep, now_ms: NowMs) -> UserOut:
    with _http_errors():
        user = store.user(name)
        if body.password is not None:
            check_password(body.password)  # first, so that a bad password leaves everything unchanged
        if body.role is not None:
            user = store.set_role(name, body.role, admin.name, now_ms)
        if body.disabled is True:
            user = store.disable_user(name, admin.name, now_ms)
        elif body.disabled is False:
            user = store.enable_user(name, admin.name, now_ms)
        if body.password is not None:
            user = store.set_password(name, body.password, admin.name, now_ms)
    return _user_out(user)


@router.get("/api/v1/api-keys")
def list_api_keys(_admin: Admin, store: StoreDep) -> list[ApiKeyOut]:
    return [_key_out(k) for k in store.list_api_keys()]


@router.post("/api/v1/api-keys", status_code=201)
def create_api_key(body: ApiKeyIn, admin: Admin, store: StoreDep, now_ms: NowMs) -> ApiKeyCreated:
    with _http_errors():
        key = store.create_api_key(body.name, body.scopes, admin.name, now_ms)
    key_id = key.removeprefix(API_KEY_PREFIX).partition("_")[0]
    return ApiKeyCreated(**_key_out(store.api_key(key_id)).model_dump(), key=key)


@router.delete("/api/v1/api-keys/{key_id}", status_code=204,
               responses={404: {"description": "no such key"}})
def revoke_api_key(key_id: str, admin: Admin, store: StoreDep, now_ms: NowMs) -> None:
    with _http_errors():
        store.revoke_api_key(key_id, admin.name, now_ms)


@router.get("/api/v1/audit")
def list_audit(
    _admin: Admin,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64, description="e.g. user.add, api_key.revoke")] = None,
) -> list[AuditOut]:
    """The audit trail, newest first."""
    return [AuditOut(id=e.id, at=_dt(e.at_ms), actor=e.actor, action=e.action, target=e.target,
                     detail=dict(e.detail))
            for e in store.audit.newest(limit, action)]
