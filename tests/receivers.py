"""Real receivers for what the gateway sends out: an HTTP/1.1 server on a free loopback port
that records every request and answers as the test scripts it (webhooks, the WeCom and
DingTalk robots), and an SMTP server (aiosmtpd) that keeps every message.

Both run in threads of their own, so synchronous and async tests can use them alike.

    with HttpReceiver() as hook:
        hook.respond(503, times=2)          # the next two requests get 503, then the default
        ...                                 # point the code under test at hook.url
        await hook.wait_for(3)              # or hook.wait(3) from synchronous code
        assert hook.requests[2].json()["site"] == "kg"
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.services import HOST, free_port

WAIT_TIMEOUT_S: Final = 5.0


@dataclass(frozen=True)
class Received:
    """One request as it arrived. `headers` have lower-case names; `query` one value per key."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """An answer: a status with a body (a dict or list is sent as JSON), or `hang`: never
    answer (until the receiver closes)."""

    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    hang: bool = False

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body, ensure_ascii=False).encode(), "application/json; charset=utf-8"


Responder = Callable[[Received], Reply | None]
"""Answers a request itself (e.g. checks a signature); None: the scripted or default reply."""


class HttpReceiver:
    """An HTTP/1.1 server on `url` (127.0.0.1, a free port). Each request is recorded, then
    answered by `responder` if it gives a reply, else by the next `respond()`ed reply, else
    by `default`."""

    def __init__(self, default: Reply | None = None, responder: Responder | None = None) -> None:
        self.default = default or Reply(200, {"errcode": 0, "errmsg": "ok"})
        self.responder = responder
        self._lock = threading.Condition()
        self._requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._release = threading.Event()  # lets hanging handlers go on close
        self._connections: set[socket.socket] = set()
        self._server = _Server((HOST, free_port()), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="http-receiver", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def requests(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def respond(self, status: int = 200, body: bytes | str | dict[str, Any] | list[Any] = b"", *,
                times: int = 1, hang: bool = False) -> None:
        """Queues the answer to the next `times` requests (after those queued already)."""
        with self._lock:
            self._script.extend([Reply(status, body, hang)] * times)

    def wait(self, n: int, timeout: float = WAIT_TIMEOUT_S) -> list[Received]:
        """Blocks until at least `n` requests arrived; AssertionError after `timeout`."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= n, timeout):
                raise AssertionError(f"{len(self._requests)} requests arrived at {self.url}, expected {n}")
            return list(self._requests)

    async def wait_for(self, n: int, within_s: float = WAIT_TIMEOUT_S) -> list[Received]:
        """As `wait`, without blocking the event loop."""
        deadline = time.monotonic() + within_s
        while len(have := self.requests) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(have)} requests arrived at {self.url}, expected {n}")
            await asyncio.sleep(0.01)
        return have

    def close(self) -> None:
        self._release.set()
        self._server.shutdown()
        with self._lock:
            open_connections = list(self._connections)
        for conn in open_connections:  # idle keep-alive connections: end their handler threads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()  # joins the handler threads
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # Called from the handler threads.

    def _record(self, request: Received) -> Reply:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            scripted = self._script.popleft() if self._script else None
        answer = self.responder(request) if self.responder else None
        return answer or scripted or self.default

    def _track(self, conn: socket.socket, is_open: bool) -> None:
        with self._lock:
            if is_open:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    receiver: HttpReceiver

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that went away mid-answer (a cancelled test) is not an error here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real services and httpx's pool use it
    server: _Server

    def setup(self) -> None:
        super().setup()
        # The answer goes out as two writes (head, body): with Nagle's algorithm the body
        # waits for the client's delayed ACK, 40 ms, which a web server would not add.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.receiver._track(self.connection, is_open=True)

    def finish(self) -> None:
        self.server.receiver._track(self.connection, is_open=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        receiver = self.server.receiver
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = Received(
            method=self.command,
            path=parts.path,
            query={k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            at=time.monotonic(),
        )
        reply = receiver._record(request)
        if reply.hang:
            receiver._release.wait()
            self.close_connection = True
            return
        content, content_type = reply.encoded()
        self.send_response(reply.status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any


# ------------------------------------------------------------------------ SMTP


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]  # RCPT TO, as the server accepted them
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["subject"])

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert isinstance(body, EmailMessage)
        return str(body.get_content()).replace("\r\n", "\n")  # as sent over SMTP: CRLF line ends


@dataclass
class _MailHandler:
    refuse: set[str]
    mails: list[Mail] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""  # the bytes as sent
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message))
            self.lock.notify_all()
        return "250 OK"


class SmtpReceiver:
    """An SMTP server (aiosmtpd) on `host:port` that keeps every message; addresses in
    `refuse` are refused with 550."""

    def __init__(self, refuse: set[str] | None = None) -> None:
        self._handler = _MailHandler(refuse or set())
        self.host = HOST
        self.port = free_port()
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self._controller.start()

    @property
    def mails(self) -> list[Mail]:
        with self._handler.lock:
            return list(self._handler.mails)

    async def wait_for(self, n: int, within_s: float = WAIT_TIMEOUT_S) -> list[Mail]:
        """Waits until at least `n` mails arrived; AssertionError after `within_s`."""
        deadline = time.monotonic() + within_s
        while len(have := self.mails) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(have)} mails arrived, expected {n}")
            await asyncio.sleep(0.01)
        return have

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
