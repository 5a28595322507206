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

import base64
import hashlib
import hmac
import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Final, Literal

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    Connection,
    Index,
    Table,
    Text,
    and_,
    distinct,
    false,
    func,
    or_,
    select,
    true,
)

from gateway.auth.audit import DISTRICT, AuditTrail
from gateway.config.auth import AuthSettings, Role, Scope, allows
from gateway.storage.state import METADATA, StateDatabase


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
# A name with something in it: a character that is not blank as `str.strip` has it, spelled
# out for the API's schema, whose regular expressions (JavaScript's, Rust's) do not count the
# information separators U+001C-U+001F as space where Python does.
NOT_BLANK: Final = r"[^\x09-\x0d\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
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


MAX_DISPLAY_NAME_LENGTH = 50
# No control or direction-changing characters: a name must read as it is stored.
_NAME_CHARS = r"[^\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069]"
DISPLAY_NAME_PATTERN = f"^{_NAME_CHARS}*$"
_DISPLAY_NAME = re.compile(DISPLAY_NAME_PATTERN)


def clean_display_name(display: str) -> str:
    """How a person is shown (王师傅, 李主任, Ms Li): any script, at most 50 characters, no
    control or direction-changing characters, surrounding spaces dropped. Empty means none:
    the roster's name, else the login id, is shown."""
    cleaned = display.strip()
    if len(cleaned) > MAX_DISPLAY_NAME_LENGTH or not _DISPLAY_NAME.fullmatch(cleaned):
        raise InvalidInput(f"a display name has at most {MAX_DISPLAY_NAME_LENGTH} printable characters")
    return cleaned


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a user (with a role), an API key (with scopes, named `key:<id>`) or,
    when public reads are on, the anonymous viewer. `district`: the account or key is the
    district's (site NULL), not a school's."""

    name: str
    kind: Literal["user", "api_key", "anonymous"]
    role: Role | None
    scopes: frozenset[Scope]
    district: bool = False

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
    district: bool  # the district's account, which signs in at every school


@dataclass(frozen=True, slots=True)
class User:
    name: str  # the login id
    role: Role
    created_ms: int
    disabled: bool
    display_name: str = ""  # how people read it; "" until set (the roster's name, else the login, is shown)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    scopes: frozenset[Scope]
    created_ms: int
    created_by: str
    revoked_ms: int | None
    last_used_ms: int | None


USERS = Table(
    "users", METADATA,
    Column("name", Text, primary_key=True),
    Column("role", Text, nullable=False),           # viewer, staff or admin
    Column("password_hash", Text, nullable=False),  # scrypt$n$r$p$salt$hash (base64)
    Column("created_ms", BigInteger, nullable=False),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("display_name", Text, nullable=False, server_default=""),  # added after the first release
    # The school the account belongs to; NULL: the district's, which may sign in at every school.
    # An account from before sites were recorded ("") is the school's that first opens the store.
    Column("site", Text, server_default=""),
)
SESSIONS = Table(
    "sessions", METADATA,
    Column("token_hash", Text, primary_key=True),  # SHA-256 (hex) of the token, which is never stored
    Column("user", Text, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Index("sessions_user", "user"),
)
API_KEYS = Table(
    "api_keys", METADATA,
    Column("id", Text, primary_key=True),            # the <id> in fgk_<id>_<secret>
    Column("name", Text, nullable=False),
    Column("scopes", Text, nullable=False),          # comma-separated
    Column("secret_hash", Text, nullable=False),     # SHA-256 (hex) of <secret>, which is never stored
    Column("created_ms", BigInteger, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("revoked_ms", BigInteger),
    Column("last_used_ms", BigInteger),              # to the minute: tells which keys are still in use
    Column("site", Text, server_default=""),         # as for users
)
LOGIN_FAILURES = Table(
    "login_failures", METADATA,
    Column("username", Text, nullable=False),        # as typed: failures for unknown names count too
    Column("client", Text, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Index("login_failures_username", "username", "at_ms"),
    Index("login_failures_client", "client", "at_ms"),
    Index("login_failures_pair", "username", "client", "at_ms"),
)
_LAST_USED_RESOLUTION_MS = 60_000


class AuthStore:
    """Users, sessions, API keys and login failures in the state store, shared by every site of
    the database. Thread-safe. Every method that depends on time takes `now_ms` (Unix
    milliseconds).

    Audit entries are recorded after a write transaction, never inside it: on SQLite the
    audit trail's write would wait for this transaction's write lock."""

    def __init__(self, db: StateDatabase, settings: AuthSettings, audit: AuditTrail) -> None:
        self.settings = settings
        self.audit = audit
        self._db = db
        # The accounts of the audit trail's school: its own (which it lists and changes) and the
        # district's (which may sign in here too). Another school's are unknown here.
        # With the district's trail (`DISTRICT`): its own are the district's (site NULL), and every
        # account signs in, a school's too, so that the district's routes can refuse it in words
        # (`Principal.district`) instead of as an unknown credential.
        site = None if audit.site == DISTRICT else audit.site
        self._site = site
        self.district = site is None  # the district's store: its callers refuse a school's principal
        self._own_users: ColumnElement[bool]
        self._own_keys: ColumnElement[bool]
        self._users_here: ColumnElement[bool]
        self._keys_here: ColumnElement[bool]
        if site is None:
            self._own_users, self._own_keys = USERS.c.site.is_(None), API_KEYS.c.site.is_(None)
            self._users_here, self._keys_here = true(), true()
        else:
            self._own_users, self._own_keys = USERS.c.site == site, API_KEYS.c.site == site
            self._users_here = or_(self._own_users, USERS.c.site.is_(None))
            self._keys_here = or_(self._own_keys, API_KEYS.c.site.is_(None))
        # Who keeps the accounts manageable: this school's admins and the district's.
        self._admins_here = or_(self._own_users, USERS.c.site.is_(None))
        db.create(USERS, SESSIONS, API_KEYS, LOGIN_FAILURES, site=site)

    # Users

    def add_user(self, name: str, role: Role, password: str, actor: str, now_ms: int,
                 display_name: str = "", *, district: bool = False) -> User:
        """An account of this school, or with `district` (or in the district's store), of the
        district (every school's). Login ids are unique across the district."""
        check_user_name(name)
        display = clean_display_name(display_name)
        password_hash = hash_password(password)
        with self._db.write() as conn:
            added = conn.execute(self._db.insert(USERS).values(
                name=name, role=role.value, password_hash=password_hash, created_ms=now_ms, disabled=False,
                display_name=display, site=None if district else self._site,
            ).on_conflict_do_nothing().returning(USERS.c.name)).first()
        if added is None:
            raise Conflict(f"user {name!r} exists")
        self.audit.record(now_ms, actor, "user.add", name,
                          {"role": role.value} | ({"display_name": display} if display else {}))
        return User(name, role, now_ms, disabled=False, display_name=display)

    def user(self, name: str) -> User:
        """This school's account or the district's."""
        with self._db.read() as conn:
            return self._user(conn, name, self._users_here)

    def list_users(self) -> list[User]:
        """This school's accounts (not the district's, which the district manages)."""
        with self._db.read() as conn:
            rows = conn.execute(select(*_USER_COLUMNS).where(self._own_users).order_by(USERS.c.name)).all()
        return [_user(row) for row in rows]

    def set_display_name(self, name: str, display_name: str, actor: str, now_ms: int) -> User:
        display = clean_display_name(display_name)
        with self._db.write() as conn:
            user = self._user(conn, name, self._own_users)
            if user.display_name == display:
                return user
            conn.execute(USERS.update().where(USERS.c.name == name).values(display_name=display))
        self.audit.record(now_ms, actor, "user.display_name", name, {"from": user.display_name, "to": display})
        return replace(user, display_name=display)

    def set_role(self, name: str, role: Role, actor: str, now_ms: int) -> User:
        with self._db.write() as conn:
            self._db.lock(conn, USERS)
            user = self._user(conn, name, self._own_users)
            if user.role is role:
                return user
            if user.role is Role.ADMIN and not user.disabled:
                self._keep_an_admin(conn, name)
            conn.execute(USERS.update().where(USERS.c.name == name).values(role=role.value))
        self.audit.record(now_ms, actor, "user.role", name, {"from": user.role.value, "to": role.value})
        return replace(user, role=role)

    def set_password(self, name: str, password: str, actor: str, now_ms: int) -> User:
        """Also ends the user's sessions: a new password is often the answer to a leaked one."""
        password_hash = hash_password(password)
        with self._db.write() as conn:
            user = self._user(conn, name, self._own_users)
            conn.execute(USERS.update().where(USERS.c.name == name).values(password_hash=password_hash))
            conn.execute(SESSIONS.delete().where(SESSIONS.c.user == name))
        self.audit.record(now_ms, actor, "user.password", name, {})
        return user

    def disable_user(self, name: str, actor: str, now_ms: int) -> User:
        """Refuses the user's logins and ends their sessions. Their API keys stay valid:
        keys are revoked one by one."""
        return self._set_disabled(name, True, actor, now_ms)

    def enable_user(self, name: str, actor: str, now_ms: int) -> User:
        return self._set_disabled(name, False, actor, now_ms)

    def _set_disabled(self, name: str, disabled: bool, actor: str, now_ms: int) -> User:
        with self._db.write() as conn:
            self._db.lock(conn, USERS)
            user = self._user(conn, name, self._own_users)
            if user.disabled is disabled:
                return user
            if disabled and user.role is Role.ADMIN:
                self._keep_an_admin(conn, name)
            conn.execute(USERS.update().where(USERS.c.name == name).values(disabled=disabled))
            if disabled:
                conn.execute(SESSIONS.delete().where(SESSIONS.c.user == name))
        self.audit.record(now_ms, actor, "user.disable" if disabled else "user.enable", name, {})
        return replace(user, disabled=disabled)

    @staticmethod
    def _user(conn: Connection, name: str, scope: ColumnElement[bool]) -> User:
        row = conn.execute(select(*_USER_COLUMNS).where(USERS.c.name == name, scope)).first()
        if row is None:
            raise NotFound(f"no user {name!r}")
        return _user(row)

    def _keep_an_admin(self, conn: Connection, name: str) -> None:
        """Refuses to demote or disable the last enabled admin: nobody could manage users after.
        The callers change roles one at a time (two admins demoting each other at once would
        each see the other still there)."""
        others = conn.execute(select(func.count()).select_from(USERS).where(
            USERS.c.role == Role.ADMIN.value, USERS.c.disabled.is_(False), USERS.c.name != name,
            self._admins_here)).scalar_one()
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
        with self._db.write() as conn:
            self._db.lock(conn, LOGIN_FAILURES)  # concurrent guesses are counted one after the other
            conn.execute(LOGIN_FAILURES.delete().where(LOGIN_FAILURES.c.at_ms <= now_ms - window_ms))
            locked = self._locked_until(conn, name, client, now_ms)
            if locked is not None:
                until, by = locked
                raise LoginLocked(math.ceil((until - now_ms) / 1000), by)
            # The attempt counts as a failure until the password checks out: the hash is
            # computed outside the transaction, and concurrent guesses must not all slip in
            # under the limit meanwhile.
            conn.execute(LOGIN_FAILURES.insert().values(username=name, client=client, at_ms=now_ms))
            row = conn.execute(select(USERS.c.role, USERS.c.password_hash, USERS.c.disabled, USERS.c.site)
                               .where(USERS.c.name == name, self._users_here)).first()
        if row is None:
            verify_password(password, _dummy_hash())
            self._after_failure(name, client, now_ms)
            raise LoginRefused
        if not verify_password(password, row.password_hash) or row.disabled:
            self._after_failure(name, client, now_ms)
            raise LoginRefused
        token = secrets.token_urlsafe(32)
        expires_ms = now_ms + round(self.settings.session_ttl_h * 3_600_000)
        with self._db.write() as conn:
            # This address's failures for this name only: a success elsewhere must not give
            # a guessing address its attempts back.
            conn.execute(LOGIN_FAILURES.delete().where(LOGIN_FAILURES.c.username == name,
                                                       LOGIN_FAILURES.c.client == client))
            conn.execute(SESSIONS.delete().where(SESSIONS.c.expires_ms <= now_ms))
            conn.execute(SESSIONS.insert().values(token_hash=_sha256(token), user=name, expires_ms=expires_ms))
        return Session(token, name, Role(row.role), expires_ms, district=row.site is None)

    def login_delay_s(self, name: str, now_ms: int) -> float:
        """How long to wait before answering a login for `name`: 0 unless many addresses
        have failed for it lately (see `AuthSettings`). The wait is the caller's to take,
        without holding a thread."""
        with self._db.read() as conn:
            failures = conn.execute(select(func.count()).select_from(LOGIN_FAILURES).where(
                LOGIN_FAILURES.c.username == name, LOGIN_FAILURES.c.at_ms > now_ms - self._window_ms)).scalar_one()
        return self.settings.slow_delay_s(failures)

    @property
    def _window_ms(self) -> int:
        return round(self.settings.login_lockout_min * 60_000)

    def _locked_until(self, conn: Connection, name: str, client: str, now_ms: int) -> tuple[int, LockedBy] | None:
        """When the lock on this client for this name, or on this client for all names, ends
        and which it is (the later one), or None if neither is locked. A lock holds while
        its number of failures is inside the window, that is until the n-th newest of them
        leaves it."""
        since, s, f = now_ms - self._window_ms, self.settings, LOGIN_FAILURES.c
        ends: list[tuple[int, LockedBy]] = []
        pair = _nth_newest(conn, s.login_max_failures, f.username == name, f.client == client, f.at_ms > since)
        if pair is not None:
            ends.append((pair + self._window_ms, "username_and_client"))
        alone = _nth_newest(conn, s.login_max_failures_per_client, f.client == client, f.at_ms > since)
        if alone is not None:
            ends.append((alone + self._window_ms, "client"))
        return max(ends, default=None)

    def _after_failure(self, name: str, client: str, now_ms: int) -> None:
        """Audits the failure that starts a lock (and only that one: locked attempts are
        refused before they count), and the one from which the name's logins are slowed."""
        since, s, f = now_ms - self._window_ms, self.settings, LOGIN_FAILURES.c
        by_name = f.username == name
        with self._db.read() as conn:
            by_pair, by_client, named, clients = conn.execute(
                select(func.count().filter(and_(by_name, f.client == client)),
                       func.count().filter(f.client == client), func.count().filter(by_name),
                       func.count(distinct(f.client)).filter(by_name))
                .where(or_(by_name, f.client == client), f.at_ms > since)
            ).one()
            locked_until = self._locked_until(conn, name, client, now_ms)
        locked: list[LockedBy] = []
        if by_pair == s.login_max_failures:
            locked.append("username_and_client")
        if by_client == s.login_max_failures_per_client:
            locked.append("client")
        if locked and locked_until is not None:
            self.audit.record(now_ms, f"client:{client}", "login.locked", name,
                              {"by": locked, "retry_after_s": math.ceil((locked_until[0] - now_ms) / 1000)})
        if named == s.login_slow_after_failures:
            self.audit.record(now_ms, f"client:{client}", "login.slowed", name,
                              {"failures": named, "clients": clients, "delay_s": s.slow_delay_s(named)})

    def logout(self, token: str) -> None:
        with self._db.write() as conn:
            conn.execute(SESSIONS.delete().where(SESSIONS.c.token_hash == _sha256(token)))

    def principal_for_token(self, token: str, now_ms: int) -> Principal | None:
        """The user of an unexpired session, unless disabled since."""
        with self._db.read() as conn:
            row = conn.execute(
                select(USERS.c.name, USERS.c.role, USERS.c.site)
                .join_from(SESSIONS, USERS, USERS.c.name == SESSIONS.c.user)
                .where(SESSIONS.c.token_hash == _sha256(token), SESSIONS.c.expires_ms > now_ms,
                       USERS.c.disabled.is_(False), self._users_here)
            ).first()
        return None if row is None else Principal(row.name, "user", Role(row.role), frozenset(),
                                                  district=row.site is None)

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
        with self._db.write() as conn:
            conn.execute(API_KEYS.insert().values(id=key_id, name=name, scopes=_join_scopes(scope_set),
                                                  secret_hash=_sha256(secret), created_ms=now_ms, created_by=actor,
                                                  site=self._site))
        self.audit.record(now_ms, actor, "api_key.create", key_id,
                          {"name": name, "scopes": sorted(s.value for s in scope_set)})
        return f"{API_KEY_PREFIX}{key_id}_{secret}"

    def api_key(self, key_id: str) -> ApiKey:
        with self._db.read() as conn:
            return self._api_key(conn, key_id, self._own_keys)

    def list_api_keys(self) -> list[ApiKey]:
        with self._db.read() as conn:
            rows = conn.execute(select(*_API_KEY_COLUMNS).where(self._own_keys)
                                .order_by(API_KEYS.c.created_ms, API_KEYS.c.id)).all()
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, actor: str, now_ms: int) -> ApiKey:
        """Revoking a revoked key changes nothing."""
        with self._db.write() as conn:
            key = self._api_key(conn, key_id, self._own_keys)
            if key.revoked_ms is not None:
                return key
            conn.execute(API_KEYS.update().where(API_KEYS.c.id == key_id).values(revoked_ms=now_ms))
        self.audit.record(now_ms, actor, "api_key.revoke", key_id, {"name": key.name})
        return replace(key, revoked_ms=now_ms)

    @staticmethod
    def _api_key(conn: Connection, key_id: str, scope: ColumnElement[bool]) -> ApiKey:
        row = conn.execute(select(*_API_KEY_COLUMNS).where(API_KEYS.c.id == key_id, scope)).first()
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(row)

    def principal_for_api_key(self, key: str, now_ms: int) -> Principal | None:
        """The principal `key:<id>` of an unrevoked key; notes when it was used."""
        if not key.startswith(API_KEY_PREFIX):
            return None
        key_id, _, secret = key.removeprefix(API_KEY_PREFIX).partition("_")
        with self._db.read() as conn:
            row = conn.execute(select(API_KEYS.c.scopes, API_KEYS.c.secret_hash, API_KEYS.c.last_used_ms,
                                      API_KEYS.c.site)
                               .where(API_KEYS.c.id == key_id, API_KEYS.c.revoked_ms.is_(None),
                                      self._keys_here)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _sha256(secret)):
            return None
        # Once a minute at most: an ingest client calling every few seconds should not turn
        # every request into a write (nor wait for the writers).
        if row.last_used_ms is None or now_ms - row.last_used_ms >= _LAST_USED_RESOLUTION_MS:
            stale = or_(API_KEYS.c.last_used_ms.is_(None),
                        API_KEYS.c.last_used_ms <= now_ms - _LAST_USED_RESOLUTION_MS)
            with self._db.write() as conn:
                conn.execute(API_KEYS.update().where(API_KEYS.c.id == key_id, stale).values(last_used_ms=now_ms))
        return Principal(f"key:{key_id}", "api_key", None, _split_scopes(row.scopes), district=row.site is None)

    def authenticate(self, credential: str, now_ms: int) -> Principal | None:
        """The principal for a session token or an API key, or None."""
        if credential.startswith(API_KEY_PREFIX):
            principal = self.principal_for_api_key(credential, now_ms)
            if principal is not None:
                return principal
        # A session token is random text and may itself begin with the key prefix.
        return self.principal_for_token(credential, now_ms)


def _nth_newest(conn: Connection, n: int, *conditions: ColumnElement[bool]) -> int | None:
    """The time of the n-th newest login failure that meets the conditions: what locks."""
    found: int | None = conn.execute(select(LOGIN_FAILURES.c.at_ms).where(*conditions)
                                     .order_by(LOGIN_FAILURES.c.at_ms.desc()).limit(1).offset(n - 1)).scalar()
    return found


_USER_COLUMNS = (USERS.c.name, USERS.c.role, USERS.c.created_ms, USERS.c.disabled, USERS.c.display_name)
_API_KEY_COLUMNS = (API_KEYS.c.id, API_KEYS.c.name, API_KEYS.c.scopes, API_KEYS.c.created_ms, API_KEYS.c.created_by,
                    API_KEYS.c.revoked_ms, API_KEYS.c.last_used_ms)


def _user(row: Any) -> User:
    return User(row.name, Role(row.role), row.created_ms, bool(row.disabled), row.display_name)


def _api_key(row: Any) -> ApiKey:
    return ApiKey(row.id, row.name, _split_scopes(row.scopes), row.created_ms, row.created_by, row.revoked_ms,
                  row.last_used_ms)


def _join_scopes(scopes: frozenset[Scope]) -> str:
    return ",".join(sorted(s.value for s in scopes))


def _split_scopes(text: str) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in text.split(","))
