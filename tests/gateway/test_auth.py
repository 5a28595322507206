"""Access control through the real HTTP stack: logins and lockouts, sessions, API keys and
their scopes, roles, public reads, the audit trail and what is stored at rest."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import BigInteger, Boolean, Column, MetaData, Table, Text, select

from gateway.api.access import Admin, Ingester, Staff, Viewer
from gateway.api.auth import router
from gateway.app import invalid_request
from gateway.auth.audit import AUDIT, DISTRICT, AuditTrail
from gateway.auth.people import People
from gateway.auth.store import (
    SESSIONS,
    USERS,
    AuthStore,
    Conflict,
    InvalidInput,
    LoginLocked,
    LoginRefused,
    NotFound,
    Principal,
    hash_password,
    verify_password,
)
from gateway.clock import ManualClock
from gateway.config.auth import AuthSettings, Role, Scope, allows
from gateway.storage.state import StateDatabase, sqlite_url

T0 = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)
SITE_ID = "kg"
PASSWORDS = {"ada": "ada-admin-passphrase", "sam": "sam-staff-passphrase", "vic": "vic-viewer-passphrase"}
ROLES = {"ada": Role.ADMIN, "sam": Role.STAFF, "vic": Role.VIEWER}
MAX_FAILURES = 3
MAX_CLIENT_FAILURES = 6
SLOW_AFTER = 6
SLOW_DELAY = timedelta(seconds=0.1)
SLOW_MAX_DELAY = timedelta(seconds=0.4)
LOCKOUT = timedelta(minutes=15)
OTHER_CLIENT = ("192.0.2.7", 50000)


def build_app(store: AuthStore, clock: ManualClock) -> FastAPI:
    app = FastAPI()
    app.state.auth = store
    app.state.people = People(store, [])
    app.state.clock = clock
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, invalid_request)  # as create_app does

    @app.get("/viewer")
    def for_viewers(who: Viewer) -> dict[str, str]:
        return {"name": who.name}

    @app.get("/staff")
    def for_staff(who: Staff) -> dict[str, str]:
        return {"name": who.name}

    @app.get("/admin")
    def for_admins(who: Admin) -> dict[str, str]:
        return {"name": who.name}

    @app.post("/ingest")
    def for_ingesters(who: Ingester) -> dict[str, str]:
        return {"name": who.name}

    return app


@dataclass(frozen=True)
class Seed:
    rows: dict[Table, list[dict[str, Any]]]  # what each table holds, in the order written
    sessions: dict[str, str]  # user → token, valid until T0 + 12 h

    def copy_to(self, db: StateDatabase) -> None:
        """The seeded rows in `db` (its tables made), keys counted afresh."""
        with db.write() as conn:
            for table, rows in self.rows.items():
                counted = table.autoincrement_column
                if rows:
                    conn.execute(table.insert(), [{k: v for k, v in r.items()
                                                   if counted is None or k != counted.name} for r in rows])


@dataclass
class Env:
    client: TestClient  # connects from "testclient"
    other: TestClient  # the same app, from another address
    clock: ManualClock
    store: AuthStore
    db: StateDatabase
    sessions: dict[str, str]  # a logged-in session per seeded user
    app: FastAPI
    _more: list[TestClient]

    def from_address(self, host: str) -> TestClient:
        """A client of the same app that connects from `host`."""
        client = TestClient(self.app, client=(host, 50000))
        self._more.append(client)
        return client

    def login(self, name: str, password: str | None = None, via: TestClient | None = None) -> Response:
        return (via or self.client).post(
            "/api/v1/auth/login", json={"username": name, "password": password or PASSWORDS[name]}
        )

    def token(self, name: str, password: str | None = None) -> str:
        response = self.login(name, password, via=self.other)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def new_key(self, admin_token: str, *scopes: str, name: str = "a key") -> str:
        response = self.client.post("/api/v1/api-keys", json={"name": name, "scopes": list(scopes)},
                                    headers=bearer(admin_token))
        assert response.status_code == 201, response.text
        key: str = response.json()["key"]
        return key

    def audit(self, admin_token: str, **query: str | int) -> list[dict[str, Any]]:
        response = self.client.get("/api/v1/audit", params=query, headers=bearer(admin_token))
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json()
        return entries


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def ms(dt: datetime) -> int:
    return int(dt.timestamp() * 1000)


@pytest.fixture(scope="session")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    """One user per role, each logged in, made once: scrypt is slow on purpose."""
    db = StateDatabase(sqlite_url(tmp_path_factory.mktemp("seed") / "state.db"))
    try:
        store = AuthStore(db, AuthSettings(), AuditTrail(db, SITE_ID))
        for name, password in PASSWORDS.items():
            store.add_user(name, ROLES[name], password, "setup", ms(T0))
        sessions = {name: store.login(name, password, "setup", ms(T0)).token for name, password in PASSWORDS.items()}
        with db.read() as conn:
            rows = {table: [dict(r._mapping) for r in conn.execute(table.select().order_by(*table.primary_key))]
                    for table in (USERS, SESSIONS, AUDIT)}
    finally:
        db.close()
    return Seed(rows, sessions)


@pytest.fixture
def make_env(seed: Seed, state_db: StateDatabase) -> Iterator[Callable[..., Env]]:
    made: list[Env] = []

    def make(**settings: Any) -> Env:
        assert not made, "one environment a test: they would share the state database"
        clock = ManualClock(T0)
        audit = AuditTrail(state_db, SITE_ID)
        store = AuthStore(state_db, AuthSettings.model_validate({
            "login_max_failures": MAX_FAILURES, "login_max_failures_per_client": MAX_CLIENT_FAILURES,
            "login_slow_after_failures": SLOW_AFTER, "login_slow_delay_s": SLOW_DELAY.total_seconds(),
            "login_slow_max_delay_s": SLOW_MAX_DELAY.total_seconds(),
            "login_lockout_min": LOCKOUT.total_seconds() / 60, **settings,
        }), audit)
        seed.copy_to(state_db)
        app = build_app(store, clock)
        env = Env(TestClient(app), TestClient(app, client=OTHER_CLIENT), clock, store, state_db, seed.sessions, app,
                  [])
        made.append(env)
        return env

    yield make
    for env in made:
        for client in (env.client, env.other, *env._more):
            client.close()


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()


# Logins and sessions


def test_login_gives_a_session_for_the_users_role(env: Env) -> None:
    response = env.login("sam")
    assert response.status_code == 200
    body = response.json()
    assert body["user"] == "sam"
    assert body["role"] == "staff"
    assert datetime.fromisoformat(body["expires"]) == T0 + timedelta(hours=12)
    assert env.client.get("/staff", headers=bearer(body["token"])).json() == {"name": "sam"}
    me = env.client.get("/api/v1/auth/me", headers=bearer(body["token"])).json()
    assert me == {"name": "sam", "who": {"id": "sam", "name_zh": "sam", "name_en": "sam", "person": True},
                  "kind": "user", "role": "staff", "scopes": []}


def test_wrong_password_and_unknown_user_are_refused_alike(env: Env) -> None:
    wrong = env.login("sam", "not-sams-password")
    unknown = env.login("nobody", "not-sams-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong user name or password"}
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


def test_lockout_after_n_failures_answers_429_with_retry_after(env: Env) -> None:
    for _ in range(MAX_FAILURES):
        assert env.login("vic", "wrong-password-1").status_code == 401
    locked = env.login("vic")  # the right password no longer helps
    assert locked.status_code == 429
    assert locked.headers["Retry-After"] == str(int(LOCKOUT.total_seconds()))
    assert locked.json() == {"detail": "too many failed logins for this user name from this address: try again "
                                       "in 900 s"}

    env.clock.advance(timedelta(minutes=10))
    assert env.login("vic").headers["Retry-After"] == str(5 * 60)
    env.clock.advance(timedelta(minutes=5))  # the failures leave the window
    assert env.login("vic").status_code == 200


def test_the_window_slides(env: Env) -> None:
    assert env.login("vic", "wrong-password-1").status_code == 401
    env.clock.advance(timedelta(minutes=10))
    for _ in range(MAX_FAILURES - 1):
        assert env.login("vic", "wrong-password-1").status_code == 401
    # Locked until the first of the three leaves the window, 5 min from now
    assert env.login("vic").headers["Retry-After"] == str(5 * 60)


def test_failures_for_unknown_names_count(env: Env) -> None:
    for _ in range(MAX_FAILURES):
        assert env.login("nobody", "some-password", via=env.other).status_code == 401
    assert env.login("nobody", "some-password", via=env.other).status_code == 429


def test_a_client_address_is_locked_across_names(env: Env) -> None:
    names = ["amy", "bob", "cat", "dan", "eve", "fay"]
    assert len(names) == MAX_CLIENT_FAILURES
    for name in names:
        assert env.login(name, "guess-password").status_code == 401
    locked = env.login("vic")  # from the guessing address, for a name it never tried
    assert locked.status_code == 429
    assert locked.json()["detail"].startswith("too many failed logins from this address:")
    assert env.login("vic", via=env.other).status_code == 200  # from elsewhere


def test_one_address_guessing_a_name_locks_only_itself_for_that_name(make_env: Callable[..., Env]) -> None:
    """Nobody outside can lock the head of logistics out by guessing at her password."""
    env = make_env(login_max_failures=5, login_max_failures_per_client=10, login_slow_after_failures=10,
                   login_slow_delay_s=2, login_slow_max_delay_s=2)
    env.store.add_user("head", Role.ADMIN, "head-of-logistics-passphrase", "setup", ms(T0))
    outside = env.from_address("198.51.100.66")
    for _ in range(5):
        assert env.login("head", "guess-password", via=outside).status_code == 401
    assert env.login("head", "head-of-logistics-passphrase", via=outside).status_code == 429

    started = time.monotonic()
    assert env.login("head", "head-of-logistics-passphrase", via=env.other).status_code == 200
    assert time.monotonic() - started < 1.5  # at once: one address's failures slow nobody else down
    # The guessing address may still log into a name it did not guess at ...
    assert env.login("vic", via=outside).status_code == 200
    # ... and the success elsewhere gave it no attempts back for head
    assert env.login("head", "head-of-logistics-passphrase", via=outside).status_code == 429
    # ... until it has failed across many names: then it is locked for all of them
    for name in ("amy", "bob", "cat", "dan", "eve"):
        assert env.login(name, "guess-password", via=outside).status_code == 401
    assert env.login("sam", via=outside).status_code == 429
    assert env.login("sam", via=env.other).status_code == 200

    entries = env.audit(env.sessions["ada"], action="login.locked")
    assert [(e["actor"], e["target"], e["detail"]["by"]) for e in reversed(entries)] == [
        ("client:198.51.100.66", "head", ["username_and_client"]),
        ("client:198.51.100.66", "eve", ["client"]),
    ]


def test_many_addresses_guessing_a_name_slow_it_down_but_never_lock_it(env: Env) -> None:
    guessers = [env.from_address(f"203.0.113.{i}") for i in range(1, 5)]
    for guesser in guessers[:2]:
        for _ in range(MAX_FAILURES):
            assert env.login("vic", "guess-password", via=guesser).status_code == 401
    # SLOW_AFTER failures from two addresses: every answer for vic now waits
    started = time.monotonic()
    assert env.login("vic", "guess-password", via=guessers[2]).status_code == 401
    assert time.monotonic() - started >= SLOW_DELAY.total_seconds()
    for _ in range(MAX_FAILURES - 1):
        env.login("vic", "guess-password", via=guessers[2])
    for _ in range(MAX_FAILURES):
        env.login("vic", "guess-password", via=guessers[3])
    # 12 failures: the wait has doubled twice, up to its bound

    started = time.monotonic()
    assert env.login("vic").status_code == 200  # the right password, from an address that has not failed
    took = time.monotonic() - started
    assert SLOW_MAX_DELAY.total_seconds() <= took < SLOW_MAX_DELAY.total_seconds() + 1.0
    for guesser in guessers:
        assert env.login("vic", via=guesser).status_code == 429  # each guessing address is locked for vic
    assert env.login("sam", via=guessers[0]).status_code == 200  # and for vic only
    assert env.login("sam").status_code == 200  # other names are not slowed

    [slowed] = env.audit(env.sessions["ada"], action="login.slowed")
    assert (slowed["actor"], slowed["target"]) == ("client:203.0.113.2", "vic")  # the failure that began it
    assert slowed["detail"] == {"failures": SLOW_AFTER, "clients": 2, "delay_s": SLOW_DELAY.total_seconds()}


def test_login_waits_grow_with_the_failures() -> None:
    settings = AuthSettings(login_max_failures=5, login_slow_after_failures=10, login_slow_delay_s=1,
                            login_slow_max_delay_s=8)
    assert [settings.slow_delay_s(n) for n in (0, 9, 10, 14, 15, 20, 25, 30, 10**6)] == [
        0, 0, 1, 1, 2, 4, 8, 8, 8]


def test_a_success_clears_the_counter(env: Env) -> None:
    for _ in range(2):
        for _ in range(MAX_FAILURES - 1):
            assert env.login("vic", "wrong-password-1").status_code == 401
        assert env.login("vic").status_code == 200


def test_concurrent_guesses_cannot_exceed_the_limit(env: Env) -> None:
    def guess(_: int) -> str:
        try:
            env.store.login("vic", "wrong-password-1", "203.0.113.9", ms(T0))
        except LoginRefused:
            return "refused"
        except LoginLocked:
            return "locked"
        return "in"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(guess, range(10)))
    assert sorted(outcomes) == ["locked"] * (10 - MAX_FAILURES) + ["refused"] * MAX_FAILURES


def test_a_lockout_is_audited(env: Env) -> None:
    admin = env.sessions["ada"]
    for _ in range(MAX_FAILURES):
        env.login("vic", "wrong-password-1")
    env.login("vic")  # refused while locked: no second entry
    entries = env.audit(admin, action="login.locked")
    assert len(entries) == 1
    assert entries[0]["actor"] == "client:testclient"
    assert entries[0]["target"] == "vic"
    assert entries[0]["detail"] == {"by": ["username_and_client"], "retry_after_s": 900}


def test_a_session_expires(env: Env) -> None:
    token = env.sessions["vic"]
    env.clock.advance(timedelta(hours=12) - timedelta(milliseconds=1))
    assert env.client.get("/viewer", headers=bearer(token)).status_code == 200
    env.clock.advance(timedelta(milliseconds=1))
    expired = env.client.get("/viewer", headers=bearer(token))
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == "Bearer"


def test_session_lifetime_follows_the_settings(make_env: Callable[..., Env]) -> None:
    env = make_env(session_ttl_h=0.5)
    token = env.token("vic")
    env.clock.advance(timedelta(minutes=30))
    assert env.client.get("/viewer", headers=bearer(token)).status_code == 401


def test_logout_ends_the_session(env: Env) -> None:
    token = env.sessions["vic"]
    assert env.client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert env.client.get("/viewer", headers=bearer(token)).status_code == 401
    assert env.client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert env.client.post("/api/v1/auth/logout").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"username": "vic"},
        {"username": "vic", "password": ""},
        {"username": "Vic Smith", "password": "vic-viewer-passphrase"},
        {"username": "vic", "password": "vic-viewer-passphrase", "remember": True},
        {"username": "vic", "password": 12345678901},
        [],
    ],
)
def test_bad_login_bodies_are_422(env: Env, body: object) -> None:
    assert env.client.post("/api/v1/auth/login", json=body).status_code == 422


def test_a_login_that_is_not_json_is_422(env: Env) -> None:
    response = env.client.post("/api/v1/auth/login", content=b"username=vic",
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_a_lone_surrogate_is_422_not_500(env: Env) -> None:
    # Valid JSON, but not a string UTF-8 can carry
    response = env.client.post("/api/v1/auth/login", content=b'{"username": "vic", "password": "\\ud800-passphrase"}',
                               headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_a_422_does_not_echo_the_password(env: Env) -> None:
    password = "x" * 1025
    response = env.client.post("/api/v1/auth/login", json={"username": "vic", "password": password})
    assert response.status_code == 422
    assert response.json() == {"detail": [{
        "type": "string_too_long", "loc": ["body", "password"], "msg": "String should have at most 1024 characters",
    }]}


# Roles, scopes, 401 and 403


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        ("vic", {"/viewer"}),
        ("sam", {"/viewer", "/staff", "/ingest"}),
        ("ada", {"/viewer", "/staff", "/ingest", "/admin", "/api/v1/users"}),
    ],
)
def test_roles_are_ordered(env: Env, user: str, allowed: set[str]) -> None:
    headers = bearer(env.sessions[user])
    for path in ("/viewer", "/staff", "/ingest", "/admin", "/api/v1/users"):
        method = env.client.post if path == "/ingest" else env.client.get
        response = method(path, headers=headers)
        assert response.status_code == (200 if path in allowed else 403), (user, path)
        if response.status_code == 403:
            assert "WWW-Authenticate" not in response.headers


def test_401_without_or_with_bad_credentials_403_without_the_right(env: Env) -> None:
    missing = env.client.get("/staff")
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert env.client.get("/staff", headers=bearer("no-such-token")).status_code == 401
    forbidden = env.client.get("/staff", headers=bearer(env.sessions["vic"]))
    assert forbidden.status_code == 403
    assert forbidden.json() == {"detail": "vic lacks the role staff"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Basic dmljOnZpYy12aWV3ZXItcGFzc3BocmFzZQ=="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": ""},
        {"Authorization": "Token abc"},
        {"Authorization": "Bearer a b c"},
        {"Authorization": "Bearer fgk_"},
        {"Authorization": "Bearer fgk_abc"},
        {"Authorization": "Bearer fgk__"},
        {"Authorization": "Bearer fgk_0123456789abcdef_"},
        {"Authorization": "Bearer " + "x" * 8000},
        {b"Authorization": b"Bearer \xff\xfe\x00"},
        {"X-API-Key": ""},
        {"X-API-Key": "fgk_zz"},
        {b"X-API-Key": b"\xc3\x28"},
    ],
)
def test_malformed_credentials_are_401(make_env: Callable[..., Env], headers: dict[str, str] | dict[bytes, bytes]) -> None:
    # Even where anonymous reads are allowed: a broken credential must not pass as none.
    env = make_env(public_read=True)
    for path in ("/viewer", "/staff", "/api/v1/auth/me"):
        response = env.client.get(path, headers=headers)
        assert response.status_code == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_public_read_lets_anonymous_read_only(make_env: Callable[..., Env]) -> None:
    env = make_env(public_read=True)
    assert env.client.get("/viewer").json() == {"name": "anonymous"}
    me = env.client.get("/api/v1/auth/me").json()
    assert (me["name"], me["kind"], me["role"], me["scopes"]) == ("anonymous", "anonymous", "viewer", ["read"])
    assert (me["who"]["name_zh"], me["who"]["person"]) == ("未登录的访客", False)
    for path in ("/staff", "/admin", "/api/v1/users"):
        assert env.client.get(path).status_code == 401
    assert env.client.post("/ingest").status_code == 401
    assert env.client.get("/staff", headers=bearer(env.sessions["sam"])).status_code == 200


def test_without_public_read_anonymous_reads_are_401(env: Env) -> None:
    assert env.client.get("/viewer").status_code == 401
    assert env.client.get("/api/v1/auth/me").status_code == 401


# API keys


def test_api_key_scopes(env: Env) -> None:
    admin = env.sessions["ada"]
    ingest_key = env.new_key(admin, "ingest")
    read_key = env.new_key(admin, "read")
    admin_key = env.new_key(admin, "admin")
    assert ingest_key.startswith("fgk_")

    assert env.client.post("/ingest", headers=bearer(ingest_key)).status_code == 200
    assert env.client.post("/ingest", headers={"X-API-Key": ingest_key}).status_code == 200
    for path in ("/viewer", "/staff", "/admin", "/api/v1/users", "/api/v1/api-keys"):
        assert env.client.get(path, headers=bearer(ingest_key)).status_code == 403, path
    refused = env.client.post("/api/v1/users", headers=bearer(ingest_key),
                              json={"name": "eve", "role": "admin", "password": "eve-wants-in-now"})
    assert refused.status_code == 403
    assert refused.json()["detail"].endswith("lacks the scope admin")

    assert env.client.get("/viewer", headers={"X-API-Key": read_key}).status_code == 200
    assert env.client.post("/ingest", headers=bearer(read_key)).status_code == 403

    for path in ("/viewer", "/staff", "/admin", "/api/v1/users"):
        assert env.client.get(path, headers=bearer(admin_key)).status_code == 200, path

    key_id = read_key.split("_")[1]
    me = env.client.get("/api/v1/auth/me", headers=bearer(read_key)).json()
    assert me == {"name": f"key:{key_id}", "kind": "api_key", "role": None, "scopes": ["read"],
                  "who": {"id": f"key:{key_id}", "name_zh": "接口密钥「a key」", "name_en": "API key “a key”",
                          "person": False}}


def test_a_key_with_a_wrong_secret_is_401(env: Env) -> None:
    key = env.new_key(env.sessions["ada"], "read")
    assert env.client.get("/viewer", headers=bearer(key[:-1] + ("A" if key[-1] != "A" else "B"))).status_code == 401


def test_a_revoked_key_is_refused(env: Env) -> None:
    admin = env.sessions["ada"]
    key = env.new_key(admin, "read", name="wall display")
    key_id = key.split("_")[1]
    assert env.client.get("/viewer", headers=bearer(key)).status_code == 200
    env.clock.advance(timedelta(minutes=1))
    assert env.client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(admin)).status_code == 204
    assert env.client.get("/viewer", headers=bearer(key)).status_code == 401
    assert env.client.delete(f"/api/v1/api-keys/{key_id}", headers=bearer(admin)).status_code == 204
    assert env.client.delete("/api/v1/api-keys/nope", headers=bearer(admin)).status_code == 404

    (listed,) = env.client.get("/api/v1/api-keys", headers=bearer(admin)).json()
    assert listed == {
        "id": key_id, "name": "wall display", "scopes": ["read"], "created": "2026-11-23T07:30:00Z",
        "created_by": "ada", "revoked": "2026-11-23T07:31:00Z", "last_used": "2026-11-23T07:30:00Z",
    }


def test_the_key_list_never_shows_a_secret(env: Env) -> None:
    admin = env.sessions["ada"]
    key = env.new_key(admin, "ingest", "ack")
    listing = env.client.get("/api/v1/api-keys", headers=bearer(admin))
    assert key.split("_", 2)[2] not in listing.text
    assert listing.json()[0]["scopes"] == ["ack", "ingest"]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["write"]},
        {"name": "", "scopes": ["read"]},
        {"name": "   ", "scopes": ["read"]},
        {"name": "x" * 101, "scopes": ["read"]},
        {"name": "x", "scopes": ["read"], "expires": "never"},
    ],
)
def test_bad_key_requests_are_422(env: Env, body: dict[str, object]) -> None:
    response = env.client.post("/api/v1/api-keys", json=body, headers=bearer(env.sessions["ada"]))
    assert response.status_code == 422


# Secrets at rest


def test_passwords_tokens_and_keys_are_not_stored_in_clear(env: Env) -> None:
    admin = env.sessions["ada"]
    new_password = "a-fresh-passphrase-for-zoe"
    created = env.client.post("/api/v1/users", json={"name": "zoe", "role": "viewer", "password": new_password},
                              headers=bearer(admin))
    assert created.status_code == 201
    token = env.token("zoe", new_password)
    key = env.new_key(admin, "read")
    secret = key.split("_", 2)[2]

    with env.db.read() as conn:
        everything = MetaData()
        everything.reflect(conn)
        dump = "\n".join(repr(row) for table in everything.sorted_tables for row in conn.execute(table.select()))
        stored = conn.execute(select(USERS.c.password_hash).where(USERS.c.name == "zoe")).scalar_one()
    assert "zoe" in dump  # the dump holds the tables' rows
    # On SQLite, the files too: what a dump does not show (free pages, the write-ahead log).
    path = env.db.engine.url.database
    raw = b"".join(p.read_bytes() for p in Path(path).parent.glob(Path(path).name + "*")) if path else b""
    for clear in (new_password, PASSWORDS["ada"], admin, token, secret):
        assert clear.encode() not in raw
        assert clear not in dump
    assert stored.startswith("scrypt$16384$8$1$")
    assert verify_password(new_password, stored)


def test_password_hashes_are_salted() -> None:
    first, second = hash_password("same-password-twice"), hash_password("same-password-twice")
    assert first != second
    assert not verify_password("same-password-twicE", first)


def test_short_passwords_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(InvalidInput, match="at least 10 characters"):
        hash_password("short")
    assert issubclass(InvalidInput, ValueError)


# Users


def test_user_management_and_its_audit_trail(env: Env) -> None:
    admin = env.sessions["ada"]
    headers = bearer(admin)
    created = env.client.post("/api/v1/users", json={"name": "zoe", "role": "viewer",
                                                      "password": "zoe-first-passphrase"}, headers=headers)
    assert created.json() == {"name": "zoe", "display_name": "zoe", "role": "viewer", "created": "2026-11-23T07:30:00Z",
                              "disabled": False}
    zoe = env.token("zoe", "zoe-first-passphrase")

    patched = env.client.patch("/api/v1/users/zoe", json={"role": "staff"}, headers=headers)
    assert patched.json()["role"] == "staff"
    assert env.client.get("/staff", headers=bearer(zoe)).status_code == 200  # roles apply at once

    env.client.patch("/api/v1/users/zoe", json={"password": "zoe-second-passphrase"}, headers=headers)
    assert env.client.get("/viewer", headers=bearer(zoe)).status_code == 401  # a new password ends sessions
    assert env.login("zoe", "zoe-first-passphrase").status_code == 401
    zoe = env.token("zoe", "zoe-second-passphrase")

    assert env.client.patch("/api/v1/users/zoe", json={"disabled": True}, headers=headers).json()["disabled"]
    assert env.client.get("/viewer", headers=bearer(zoe)).status_code == 401
    assert env.login("zoe", "zoe-second-passphrase", via=env.other).status_code == 401
    assert not env.client.patch("/api/v1/users/zoe", json={"disabled": False}, headers=headers).json()["disabled"]
    assert env.login("zoe", "zoe-second-passphrase", via=env.other).status_code == 200

    key = env.new_key(admin, "admin", name="provisioning")
    key_id = key.split("_")[1]
    env.client.post("/api/v1/users", json={"name": "kim", "role": "viewer", "password": "kim-first-passphrase"},
                    headers=bearer(key))
    env.client.delete(f"/api/v1/api-keys/{key_id}", headers=headers)

    entries = [(e["actor"], e["action"], e["target"], e["detail"]) for e in reversed(env.audit(admin))]
    assert entries == [
        ("setup", "user.add", "ada", {"role": "admin"}),
        ("setup", "user.add", "sam", {"role": "staff"}),
        ("setup", "user.add", "vic", {"role": "viewer"}),
        ("ada", "user.add", "zoe", {"role": "viewer"}),
        ("ada", "user.role", "zoe", {"from": "viewer", "to": "staff"}),
        ("ada", "user.password", "zoe", {}),
        ("ada", "user.disable", "zoe", {}),
        ("ada", "user.enable", "zoe", {}),
        ("ada", "api_key.create", key_id, {"name": "provisioning", "scopes": ["admin"]}),
        (f"key:{key_id}", "user.add", "kim", {"role": "viewer"}),
        ("ada", "api_key.revoke", key_id, {"name": "provisioning"}),
    ]
    assert [e["target"] for e in env.audit(admin, action="user.add", limit=2)] == ["kim", "zoe"]
    listed = env.client.get("/api/v1/users", headers=headers).json()
    assert [u["name"] for u in listed] == ["ada", "kim", "sam", "vic", "zoe"]


@pytest.mark.parametrize(
    ("request_", "status", "detail"),
    [
        (("POST", "/api/v1/users", {"name": "sam", "role": "staff", "password": "another-passphrase"}),
         409, "user 'sam' exists"),
        (("POST", "/api/v1/users", {"name": "zoe", "role": "staff", "password": "short"}),
         422, None),  # the schema states the length; the store checks it again for the CLI
        (("POST", "/api/v1/users", {"name": "Zoë", "role": "staff", "password": "zoe-first-passphrase"}),
         422, None),
        (("POST", "/api/v1/users", {"name": "zoe", "role": "owner", "password": "zoe-first-passphrase"}),
         422, None),
        (("POST", "/api/v1/users", {"name": "zoe", "role": "staff", "password": "zoe-first-passphrase", "x": 1}),
         422, None),
        (("PATCH", "/api/v1/users/nobody", {"role": "staff"}), 404, "no user 'nobody'"),
        (("PATCH", "/api/v1/users/ada", {"role": "staff"}), 409, "'ada' is the last enabled admin"),
        (("PATCH", "/api/v1/users/ada", {"disabled": True}), 409, "'ada' is the last enabled admin"),
        (("PATCH", "/api/v1/users/sam", {"role": "admin", "password": "short"}), 422, None),
        (("PATCH", "/api/v1/users/sam", {"role": "superuser"}), 422, None),
        (("GET", "/api/v1/audit?limit=0", None), 422, None),
        (("GET", "/api/v1/audit?limit=lots", None), 422, None),
    ],
)
def test_refused_user_requests(
    env: Env, request_: tuple[str, str, dict[str, object] | None], status: int, detail: str | None
) -> None:
    admin = env.sessions["ada"]
    method, path, body = request_
    response = env.client.request(method, path, json=body, headers=bearer(admin))
    assert response.status_code == status
    if detail is not None:
        assert response.json() == {"detail": detail}
    # Nothing changed: sam is still staff, ada still an enabled admin
    users = {u["name"]: u for u in env.client.get("/api/v1/users", headers=bearer(admin)).json()}
    assert users["sam"]["role"] == "staff"
    assert (users["ada"]["role"], users["ada"]["disabled"]) == ("admin", False)


def test_people_have_display_names_in_any_script(env: Env) -> None:
    """The login id stays ASCII; the name people read is anything printable, shown for the
    actor in the audit trail and at login, and renaming is audited."""
    admin = bearer(env.sessions["ada"])
    created = env.client.post("/api/v1/users", json={"name": "logistics-li", "display_name": " 李主任 ", "role": "staff",
                                                      "password": "li-first-passphrase"}, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "李主任"
    login = env.login("logistics-li", "li-first-passphrase").json()
    assert (login["user"], login["display_name"]) == ("logistics-li", "李主任")
    renamed = env.client.patch("/api/v1/users/logistics-li", json={"display_name": "李 Li"}, headers=admin)
    assert renamed.json()["display_name"] == "李 Li"
    for bad in ("a\u202eb", "x" * 51, "tab\there", "nul\x00"):
        response = env.client.patch("/api/v1/users/logistics-li", json={"display_name": bad}, headers=admin)
        assert response.status_code == 422, bad
    assert env.client.post("/api/v1/users", json={"name": "李主任", "role": "staff", "password": "li-first-passphrase"},
                           headers=admin).status_code == 422  # the login id is not the display name
    cleared = env.client.patch("/api/v1/users/logistics-li", json={"display_name": "  "}, headers=admin)
    assert cleared.json()["display_name"] == "logistics-li"  # none of its own, on no roster: the login
    [entry, _] = env.audit(env.sessions["ada"], action="user.display_name")
    assert (entry["who"]["name_zh"], entry["target"], entry["detail"]) == ("ada", "logistics-li",
                                                                             {"from": "李 Li", "to": ""})
    people = env.client.get("/api/v1/people", headers=admin).json()
    assert {"id": "logistics-li", "name": "logistics-li", "role": "staff", "duty_role": "", "trades": []} in people
    assert env.client.get("/api/v1/people", headers=bearer(env.sessions["vic"])).status_code == 403


def test_an_older_state_database_gains_display_names(state_db: StateDatabase) -> None:
    old = Table("users", MetaData(), Column("name", Text, primary_key=True), Column("role", Text, nullable=False),
                Column("password_hash", Text, nullable=False), Column("created_ms", BigInteger, nullable=False),
                Column("disabled", Boolean, nullable=False))
    old.create(state_db.engine)
    with state_db.write() as conn:
        conn.execute(old.insert().values(name="old", role="staff", password_hash="x", created_ms=0, disabled=False))
    store = AuthStore(state_db, AuthSettings(), AuditTrail(state_db, SITE_ID))
    assert store.user("old").display_name == ""
    assert store.set_display_name("old", "老王", "setup", 1).display_name == "老王"


def test_an_admin_can_step_down_once_there_is_another(env: Env) -> None:
    admin = env.sessions["ada"]
    env.client.patch("/api/v1/users/sam", json={"role": "admin"}, headers=bearer(admin))
    response = env.client.patch("/api/v1/users/ada", json={"role": "viewer"}, headers=bearer(admin))
    assert response.status_code == 200
    assert env.client.get("/api/v1/users", headers=bearer(admin)).status_code == 403


# The rules themselves


def test_role_order() -> None:
    assert allows(Role.ADMIN, Role.STAFF)
    assert allows(Role.STAFF, Role.STAFF)
    assert not allows(Role.VIEWER, Role.STAFF)
    assert not allows(Role.STAFF, Role.ADMIN)


def test_a_principal_passes_by_role_or_by_scope() -> None:
    user = Principal("sam", "user", Role.STAFF, frozenset())
    ingest_key = Principal("key:1", "api_key", None, frozenset({Scope.INGEST}))
    admin_key = Principal("key:2", "api_key", None, frozenset({Scope.ADMIN}))
    assert user.can(Role.STAFF, Scope.ACK)
    assert not user.can(Role.ADMIN, Scope.ADMIN)
    assert ingest_key.can(Role.STAFF, Scope.INGEST)
    assert not ingest_key.can(Role.VIEWER, Scope.READ)
    assert admin_key.can(Role.ADMIN, Scope.ADMIN)
    assert admin_key.can(Role.STAFF, Scope.INGEST)


def test_settings_are_strict() -> None:
    with pytest.raises(ValueError, match="session_ttl_h"):
        AuthSettings(session_ttl_h=0)
    with pytest.raises(ValueError, match="public_reads"):
        AuthSettings.model_validate({"public_reads": True})
    with pytest.raises(ValueError, match="one address alone must not slow"):
        AuthSettings(login_max_failures=10, login_slow_after_failures=10)
    with pytest.raises(ValueError, match="login_max_failures_per_client"):
        AuthSettings(login_max_failures=5, login_max_failures_per_client=4)


def test_the_districts_store_manages_its_own_accounts_and_knows_a_schools_for_what_it_is(
        state_db: StateDatabase) -> None:
    """The district's view (gateway/api/district.py) signs in every account so that it can refuse
    a school's in words; it lists and changes the district's only, and never claims a school's
    rows from before sites were recorded."""
    now = ms(T0)
    state_db.create(AUDIT)  # the trail's table as a release before sites had it
    with state_db.write() as conn:  # an entry from before sites were recorded: the next school's
        conn.execute(AUDIT.insert().values(at=now, actor="cli", action="user.add", target="old", detail="{}",
                                           site=""))
    district = AuthStore(state_db, AuthSettings(), AuditTrail(state_db, DISTRICT))
    school = AuthStore(state_db, AuthSettings(), AuditTrail(state_db, "school-a"))
    district.add_user("zhou", Role.VIEWER, PASSWORDS["vic"], "setup", now)
    school.add_user("li-a", Role.ADMIN, PASSWORDS["ada"], "setup", now)
    assert [u.name for u in district.list_users()] == ["zhou"]
    assert [u.name for u in school.list_users()] == ["li-a"]
    assert school.user("zhou").role is Role.VIEWER  # a district account, as `district=True` makes it
    with pytest.raises(NotFound):
        district.set_role("li-a", Role.VIEWER, "zhou", now)
    district.add_user("chief", Role.ADMIN, PASSWORDS["ada"], "setup", now)
    with pytest.raises(Conflict):  # a school's admin does not manage the district's accounts
        district.set_role("chief", Role.STAFF, "chief", now)
    ours = district.principal_for_token(district.login("zhou", PASSWORDS["vic"], "client", now).token, now)
    theirs = district.principal_for_token(district.login("li-a", PASSWORDS["ada"], "client", now).token, now)
    assert ours is not None
    assert ours.district
    assert theirs is not None
    assert not theirs.district
    at_school = school.principal_for_token(school.login("zhou", PASSWORDS["vic"], "client", now).token, now)
    assert at_school is not None
    assert at_school.district
    key = district.create_api_key("看板", [Scope.READ], "zhou", now)
    found = district.principal_for_api_key(key, now)
    assert found is not None
    assert found.district
    assert [e.target for e in AuditTrail(state_db, "school-a").newest(10, "user.add")] == ["li-a", "old"]
    assert [e.target for e in AuditTrail(state_db, DISTRICT).newest(10, "user.add")] == ["chief", "zhou"]


def test_schools_sharing_a_state_store_see_only_their_own_accounts_and_the_districts(state_db: StateDatabase) -> None:
    now = ms(T0)
    a = AuthStore(state_db, AuthSettings(), AuditTrail(state_db, "school-a"))
    b = AuthStore(state_db, AuthSettings(), AuditTrail(state_db, "school-b"))
    a.add_user("li-a", Role.ADMIN, PASSWORDS["ada"], "setup", now, display_name="李主任")
    b.add_user("wang-b", Role.STAFF, PASSWORDS["sam"], "setup", now)
    a.add_user("zhou-district", Role.ADMIN, PASSWORDS["vic"], "setup", now, district=True)
    with pytest.raises(Conflict):  # login ids are the district's: one "wang-b" in all
        a.add_user("wang-b", Role.VIEWER, PASSWORDS["vic"], "setup", now)
    # another school's account is unknown here, as one that does not exist
    with pytest.raises(LoginRefused):
        a.login("wang-b", PASSWORDS["sam"], "client", now)
    session_b = b.login("wang-b", PASSWORDS["sam"], "client", now)
    token_b = session_b.token
    assert not session_b.district
    assert b.principal_for_token(token_b, now) is not None
    assert a.principal_for_token(token_b, now) is None
    for store, other in ((a, "wang-b"), (b, "li-a")):
        with pytest.raises(NotFound):
            store.user(other)
        with pytest.raises(NotFound):
            store.set_role(other, Role.VIEWER, "someone", now)
        with pytest.raises(NotFound):
            store.set_password(other, PASSWORDS["vic"], "someone", now)
        with pytest.raises(NotFound):
            store.disable_user(other, "someone", now)
    assert [u.name for u in a.list_users()] == ["li-a"]
    assert [u.name for u in b.list_users()] == ["wang-b"]
    # the district's account signs in at every school, and is listed by none
    for store in (a, b):
        session = store.login("zhou-district", PASSWORDS["vic"], "client", now)
        assert session.district  # the dashboard offers the way back to the district's page
        assert store.principal_for_token(session.token, now) is not None
        assert store.user("zhou-district").role is Role.ADMIN
    # keys: a school's key works at that school only
    key_a = a.create_api_key("电表网关", [Scope.INGEST], "li-a", now)
    key_id = key_a.removeprefix("fgk_").partition("_")[0]
    assert a.principal_for_api_key(key_a, now) is not None
    assert b.principal_for_api_key(key_a, now) is None
    assert b.list_api_keys() == []
    with pytest.raises(NotFound):
        b.revoke_api_key(key_id, "wang-b", now)
