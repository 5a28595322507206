"""What stands between the network and the routes: a bound on request bodies, a deadline for
receiving a request, and the security headers of every answer.

`BodyLimit` and `SecurityHeaders` are pure ASGI middlewares (a `BaseHTTPMiddleware` would
read the body itself and break the live stream). The deadline lives in the HTTP protocol,
`TimedH11Protocol`, because only the server sees a request that never arrives whole: uvicorn
times out idle keep-alive connections but has no limit on the time a request may take to
arrive, so a client that sends half of one could hold a connection for ever (slowloris).

What is refused is counted in `facility_http_refused_total{reason}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Sequence
from typing import ClassVar, Final, NamedTuple

import h11
from prometheus_client import Counter
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

TOO_LARGE: Final = "too_large"
TIMEOUT: Final = "timeout"
_MAX_LENGTH_DIGITS: Final = 18


def refusal_counter() -> Counter:
    """The counter of refused requests; the gateway registers it with its own registry."""
    counter = Counter("facility_http_refused", "HTTP requests refused before they reached a route, by reason "
                      "(too_large: body over api.max_body_bytes; timeout: not received whole within "
                      "api.request_timeout_s)", ["reason"], registry=None)
    for reason in (TOO_LARGE, TIMEOUT):  # both show, at zero, before the first refusal
        counter.labels(reason)
    return counter


class _TooLarge(Exception):
    """The body passed the limit while the application was reading it (already answered)."""


class Allowance(NamedTuple):
    """A route whose bodies may be larger than the limit (a photo upload): the paths it
    matches in full, its own limit and the setting that sets it."""

    path: re.Pattern[str]
    max_bytes: int
    setting: str


class BodyLimit:
    """Refuses a request whose body is larger than `max_bytes` (or its route's allowance)
    with 413: at once when its Content-Length says so, without reading it; otherwise
    (chunked, or a Content-Length that lies) as soon as the bytes read pass the limit. The
    answer closes the connection, since the rest of the body is left unread."""

    def __init__(self, app: ASGIApp, max_bytes: int, refused: Counter, allowances: Sequence[Allowance] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._allowances = allowances
        self._refused = refused.labels(TOO_LARGE)

    def _limit(self, path: str) -> tuple[int, str]:
        for allowance in self._allowances:
            if allowance.path.fullmatch(path):
                return max(allowance.max_bytes, self.max_bytes), allowance.setting
        return self.max_bytes, "api.max_body_bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes, setting = self._limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > max_bytes:
            await self._refuse(send, max_bytes, setting)
            return
        read = 0
        started = answered = False

        async def limited_receive() -> Message:
            nonlocal read, answered
            message = await receive()
            if message["type"] == "http.request":
                read += len(message.get("body", b""))
                if read > max_bytes:
                    # Answered here rather than where the exception lands: FastAPI turns an
                    # error while it reads a body into its own 400.
                    if not started:
                        await self._refuse(send, max_bytes, setting)
                        answered = True
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the application's answer to a body it could not read
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _TooLarge:
            if not answered:
                raise
        except ClientDisconnect:
            # The client went away (or was cut off by the request deadline) before its body
            # arrived: nobody is left to answer, and it is no fault of the gateway's.
            if started:
                raise

    async def _refuse(self, send: Send, max_bytes: int, setting: str) -> None:
        self._refused.inc()
        detail = (f"the request body is larger than {max_bytes} bytes ({setting}); "
                  "send less at a time, e.g. fewer readings per request")
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]})
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            # h11 has checked that it is digits; a long one is not converted, only judged large.
            return int(value) if len(value) <= _MAX_LENGTH_DIGITS else 10**_MAX_LENGTH_DIGITS
    return None


def content_security_policy(*script_src: str) -> str:
    """The policy of every page: scripts, styles, images and connections from the gateway
    itself only (no CDN), no plugins, no framing. Styles may be inline: the dashboard sets
    bar widths in style attributes and ECharts writes its tooltips' styles, and an inline
    style cannot run code. `script_src` adds sources, e.g. the hash of one inline script."""
    return "; ".join([
        "default-src 'self'",
        " ".join(["script-src 'self'", *script_src]),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",  # blob: a photo fetched with the login (work orders)
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SecurityHeaders:
    """Adds a Content-Security-Policy, X-Frame-Options, X-Content-Type-Options and
    Referrer-Policy to every answer that does not set its own (the API docs page sets a
    policy that names its inline script)."""

    HEADERS: ClassVar[tuple[tuple[bytes, bytes], ...]] = (
        (b"content-security-policy", content_security_policy().encode()),
        (b"x-frame-options", b"DENY"),  # frame-ancestors, for browsers that predate it
        (b"x-content-type-options", b"nosniff"),
        # Dashboard URLs carry device and room names; no other site needs them.
        (b"referrer-policy", b"no-referrer"),
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in self.HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


_TIMEOUT_BODY: Final = b"the request did not arrive whole in time (api.request_timeout_s)\n"
# Written straight to the socket: no request may have been parsed yet, so h11 cannot frame it.
_TIMEOUT_ANSWER: Final = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
    + f"content-length: {len(_TIMEOUT_BODY)}\r\n\r\n".encode() + _TIMEOUT_BODY
)


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for receiving each request whole: from a
    connection's start, and from the first byte of each later request, to the end of the
    request's body. It is a deadline, not an idle timer, so a client that trickles a byte now
    and then is cut off as well. Past it the client gets 408 (if nothing was answered yet)
    and the connection is closed; an application still waiting for the body sees the client
    disconnect. Between requests uvicorn's keep-alive timeout applies as before."""

    request_timeout_s: ClassVar[float] = 30.0
    refused: ClassVar[Counter | None] = None
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A connection that never sends a byte is half a request too.
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()  # a pipelined request may have started meanwhile

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Keeps the deadline running while a request is on its way, and only then."""
        state = self.conn.their_state
        arriving = state is h11.SEND_BODY or (state is h11.IDLE and bool(self.conn.trailing_data[0]))
        if not arriving:
            self._disarm()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.refused is not None:
            self.refused.labels(TIMEOUT).inc()
        log.debug("%s: request not received whole within %g s; closing", self.client, self.request_timeout_s)
        if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):  # no answer begun: there is room for one
            self.transport.write(_TIMEOUT_ANSWER)
        self.transport.close()


def timed_h11(request_timeout_s: float, refused: Counter) -> type[TimedH11Protocol]:
    """The protocol class for uvicorn's `http`, with this deadline (uvicorn makes the
    protocol objects itself, so the settings go into the class)."""

    class Timed(TimedH11Protocol):
        pass

    Timed.request_timeout_s = request_timeout_s
    Timed.refused = refused
    return Timed
