"""Who may call a route: credentials, roles and scopes as FastAPI dependencies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.problems import refusal
from gateway.auth.people import People
from gateway.auth.store import ANONYMOUS, AuthStore, Conflict, InvalidInput, NotFound, Principal
from gateway.clock import Clock, to_ms
from gateway.config.auth import AuthSettings, Role, Scope

# FastAPI

# Declared as security schemes so that /docs offers to log in; parsed leniently here and
# strictly in `_credential`.
_bearer = HTTPBearer(auto_error=False, description="a session token from /api/v1/auth/login, or an API key")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


def _store(request: Request) -> AuthStore:
    store: AuthStore = request.app.state.auth
    return store


def _people(request: Request) -> People:
    people: People = request.app.state.people
    return people


def _now_ms(request: Request) -> int:
    clock: Clock = request.app.state.clock
    return to_ms(clock.now())


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


AuthStoreDep = Annotated[AuthStore, Depends(_store)]
PeopleDep = Annotated[People, Depends(_people)]
NowMs = Annotated[int, Depends(_now_ms)]
Credential = Annotated[str | None, Depends(_credential)]


def _authenticate(store: AuthStore, now_ms: int, credential: str | None, anonymous_ok: bool) -> Principal:
    """The caller, or 401. In the district's app (`store.district`) nobody is anonymous, and a
    school's account or key, which signs in there, passes no check: 403, saying why."""
    if credential is None:
        if anonymous_ok and not store.district:
            return ANONYMOUS
        raise _unauthorized("log in, or present an API key")
    principal = store.authenticate(credential, now_ms)
    if principal is None:
        raise _unauthorized("the token or API key is unknown, expired or revoked")
    if store.district and not principal.district:
        raise _school_account()
    return principal


def _school_account() -> HTTPException:
    return refusal(403, "这是学校的账号，只能查看本校。全区总览请用区级账号登录。",
                   "This is a school's account: it sees its own school only. Log in with a district account for "
                   "the district's view.")


def _anonymous_ok(settings: AuthSettings, need: Role, scope: Scope) -> bool:
    return settings.public_read and need is Role.VIEWER and scope is Scope.READ


def require(need: Role, scope: Scope) -> Callable[[AuthStore, int, str | None], Principal]:
    """A dependency that answers 401 without valid credentials and 403 when the caller's
    role (users) or scopes (API keys) do not cover `need`/`scope`. With `public_read`,
    anonymous callers pass where a viewer with the read scope would."""

    def dependency(store: AuthStoreDep, now_ms: NowMs, credential: Credential) -> Principal:
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


def _district(store: AuthStoreDep, now_ms: NowMs, credential: Credential) -> Principal:
    """A district's account or key (site NULL): 401 without one, 403 for a school's (whichever
    store signed it in)."""
    principal = _authenticate(store, now_ms, credential, anonymous_ok=False)
    if not principal.district:
        raise _school_account()
    if not principal.can(Role.VIEWER, Scope.READ):
        raise HTTPException(403, f"{principal.name} lacks the scope {Scope.READ}")
    return principal


# The district's view of every school: its accounts (any role) and keys, never a school's.
District = Annotated[Principal, Depends(_district)]


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
        principal = self.store.authenticate(self.credential, to_ms(self.clock.now()))
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
