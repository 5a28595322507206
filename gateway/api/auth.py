"""Logging in and out, users, API keys and the audit trail."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from gateway.api.access import (
    Admin,
    AuthStoreDep,
    Credential,
    NowMs,
    PeopleDep,
    Staff,
    _authenticate,
    _http_errors,
    _now_ms,
    _unauthorized,
)
from gateway.api.problems import problems
from gateway.auth.people import Actor, People
from gateway.auth.store import (
    API_KEY_PREFIX,
    DISPLAY_NAME_PATTERN,
    MAX_DISPLAY_NAME_LENGTH,
    MAX_KEY_NAME_LENGTH,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    NOT_BLANK,
    USER_NAME_PATTERN,
    ApiKey,
    LoginLocked,
    LoginRefused,
    User,
    check_password,
    clean_display_name,
)
from gateway.clock import from_ms
from gateway.config.auth import Role, Scope
from gateway.config.work_orders import Trade


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
    display_name: str = Field(description="how the dashboard greets them: 王师傅")
    role: Role
    district: bool = Field(description="an account of the district, which signs in at every school")


class PrincipalOut(BaseModel):
    name: str
    who: Actor
    kind: Literal["user", "api_key", "anonymous"]
    role: Role | None
    scopes: list[Scope]


class UserOut(BaseModel):
    name: str = Field(description="the login id")
    display_name: str = Field(description="as people read it, in any script: 李主任")
    role: Role
    created: datetime
    disabled: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=USER_NAME_PATTERN, description="the login id: a-z, 0-9 and . _ @ -")
    display_name: str = Field("", max_length=MAX_DISPLAY_NAME_LENGTH, pattern=DISPLAY_NAME_PATTERN,
                              description="any script: 李主任; empty: the roster's name, else the login")
    role: Role
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)


class UserPatch(BaseModel):
    """Fields left out (or null) stay as they are."""

    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    display_name: str | None = Field(None, max_length=MAX_DISPLAY_NAME_LENGTH, pattern=DISPLAY_NAME_PATTERN,
                                     description="empty: the roster's name, else the login")
    password: str | None = Field(None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH)
    disabled: bool | None = None


class ApiKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_KEY_NAME_LENGTH, pattern=NOT_BLANK)
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
    who: Actor
    action: str
    target: str
    detail: dict[str, Any]


def _user_out(user: User, people: People) -> UserOut:
    return UserOut(name=user.name, display_name=people.directory().display(user.name), role=user.role,
                   created=from_ms(user.created_ms), disabled=user.disabled)


def _key_out(key: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=key.id, name=key.name, scopes=sorted(key.scopes), created=from_ms(key.created_ms), created_by=key.created_by,
        revoked=None if key.revoked_ms is None else from_ms(key.revoked_ms),
        last_used=None if key.last_used_ms is None else from_ms(key.last_used_ms),
    )


router = APIRouter(tags=["auth"], responses=problems(400, 401, 403, 404, 409, 422, 429))

# Endpoints are plain `def`: FastAPI runs them in its thread pool, so SQLite and scrypt
# never block the event loop. Login is the exception, for its wait.


@router.post(
    "/api/v1/auth/login",
    responses={401: {"description": "wrong user name or password"},
               429: {"description": "too many failed logins from this address; see Retry-After"}},
)
async def login(body: LoginIn, request: Request, store: AuthStoreDep, people: PeopleDep) -> LoginOut:
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
    display = await run_in_threadpool(lambda: people.directory().display(session.user))
    return LoginOut(token=session.token, expires=from_ms(session.expires_ms), user=session.user,
                    display_name=display, role=session.role, district=session.district)


@router.post("/api/v1/auth/logout", status_code=204)
def logout(store: AuthStoreDep, credential: Credential) -> None:
    """Ends the session of the bearer token. Ending an unknown or ended session is no error."""
    if credential is None:
        raise _unauthorized("no session to end")
    store.logout(credential)


@router.get("/api/v1/auth/me")
def me(store: AuthStoreDep, people: PeopleDep, now_ms: NowMs, credential: Credential) -> PrincipalOut:
    """Who the caller is; any valid credential will do, whatever its role or scopes."""
    principal = _authenticate(store, now_ms, credential, store.settings.public_read)
    return PrincipalOut(name=principal.name, who=people.name(principal.name), kind=principal.kind,
                        role=principal.role, scopes=sorted(principal.scopes))


@router.get("/api/v1/users")
def list_users(_admin: Admin, store: AuthStoreDep, people: PeopleDep) -> list[UserOut]:
    return [_user_out(u, people) for u in store.list_users()]


@router.post("/api/v1/users", status_code=201,
             responses={409: {"description": "the user exists"}})
def add_user(body: UserIn, admin: Admin, store: AuthStoreDep, people: PeopleDep, now_ms: NowMs) -> UserOut:
    with _http_errors():
        return _user_out(store.add_user(body.name, body.role, body.password, admin.name, now_ms,
                                        display_name=body.display_name), people)


@router.patch("/api/v1/users/{name}",
              responses={404: {"description": "no such user"}, 409: {"description": "the last enabled admin"}})
def update_user(name: str, body: UserPatch, admin: Admin, store: AuthStoreDep, people: PeopleDep,
                now_ms: NowMs) -> UserOut:
    with _http_errors():
        user = store.user(name)
        # First, so that a bad password or name leaves everything unchanged.
        if body.password is not None:
            check_password(body.password)
        if body.display_name is not None:
            clean_display_name(body.display_name)
            user = store.set_display_name(name, body.display_name, admin.name, now_ms)
        if body.role is not None:
            user = store.set_role(name, body.role, admin.name, now_ms)
        if body.disabled is True:
            user = store.disable_user(name, admin.name, now_ms)
        elif body.disabled is False:
            user = store.enable_user(name, admin.name, now_ms)
        if body.password is not None:
            user = store.set_password(name, body.password, admin.name, now_ms)
    return _user_out(user, people)


@router.get("/api/v1/api-keys")
def list_api_keys(_admin: Admin, store: AuthStoreDep) -> list[ApiKeyOut]:
    return [_key_out(k) for k in store.list_api_keys()]


@router.post("/api/v1/api-keys", status_code=201)
def create_api_key(body: ApiKeyIn, admin: Admin, store: AuthStoreDep, now_ms: NowMs) -> ApiKeyCreated:
    with _http_errors():
        key = store.create_api_key(body.name, body.scopes, admin.name, now_ms)
    key_id = key.removeprefix(API_KEY_PREFIX).partition("_")[0]
    return ApiKeyCreated(**_key_out(store.api_key(key_id)).model_dump(), key=key)


@router.delete("/api/v1/api-keys/{key_id}", status_code=204,
               responses={404: {"description": "no such key"}})
def revoke_api_key(key_id: str, admin: Admin, store: AuthStoreDep, now_ms: NowMs) -> None:
    with _http_errors():
        store.revoke_api_key(key_id, admin.name, now_ms)


@router.get("/api/v1/audit")
def list_audit(
    _admin: Admin,
    store: AuthStoreDep,
    people: PeopleDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=64, description="e.g. user.add, api_key.revoke")] = None,
) -> list[AuditOut]:
    """The audit trail, newest first."""
    names = people.directory()
    return [AuditOut(id=e.id, at=from_ms(e.at_ms), actor=e.actor, who=names.actor(e.actor), action=e.action,
                     target=e.target, detail=dict(e.detail))
            for e in store.audit.newest(limit, action)]


class PersonOut(BaseModel):
    id: str = Field(description="the login id")
    name: str
    role: Role
    duty_role: str = Field(description="the duty roster's word for what they do (门卫, 水工), or empty")
    trades: list[Trade] = Field(description="the work-order trades they repair, from the duty roster")


@router.get("/api/v1/people")
def list_people(_staff: Staff, store: AuthStoreDep, people: PeopleDep) -> list[PersonOut]:
    """The people who can be given a task (a work order, a patrol): every enabled account,
    with its display name and what the duty roster says they do."""
    names = people.directory()
    roster = people.roster()
    out = []
    for u in store.list_users():
        if u.disabled:
            continue
        entry = roster.get(u.name)
        out.append(PersonOut(id=u.name, name=names.display(u.name), role=u.role,
                             duty_role=entry.role if entry else "", trades=list(entry.trades) if entry else []))
    return out
