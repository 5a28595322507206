"""What the gateway's HTTP server refuses before a route sees it, through `facility-gateway
run` as its own process and raw sockets: bodies over the limit (declared or chunked), requests
that do not arrive whole in time, forged client addresses, redirects built from the Host
header; and the headers every answer carries, and the API docs served without a CDN."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.browser import chromium, open_page
from tests.services import HOST, GatewayProcess, Mosquitto, accounting, free_port

pytestmark = pytest.mark.integration

LIMIT = 100_000  # api.max_body_bytes
TIMEOUT_S = 1.0  # api.request_timeout_s
ADMIN_PASSWORD = "后勤-long-enough"
SITE = """\
id: guard
name: 测试幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms:
      - {{id: kitchen, name: 厨房, type: kitchen}}
devices:
  - {{id: meter, kind: electricity_meter, room: kitchen}}
mqtt: {{url: "{url}", client_id: "{client_id}"}}
storage: {{data_dir: "{data_dir}"}}
api: {{port: {port}, max_body_bytes: {limit}, request_timeout_s: {timeout}, trusted_proxies: {proxies}}}
auth: {{login_max_failures: 1}}
"""


@dataclass
class Served:
    client: httpx.Client
    port: int
    log: Path
    token: str  # an admin's: it may ingest, read and see the audit trail

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@contextmanager
def serve(directory: Path, broker: Mosquitto, proxies: list[str]) -> Iterator[Served]:
    """The gateway with a small body limit and a short request deadline, and an admin."""
    directory.mkdir()
    port = free_port()
    site = directory / "site.yaml"
    site.write_text(SITE.format(url=broker.url, client_id=f"gw-{directory.name}", data_dir=directory / "data",
                                port=port, limit=LIMIT, timeout=TIMEOUT_S, proxies=json.dumps(proxies)),
                    encoding="utf-8")
    cli = [str(Path(sys.executable).parent / "facility-gateway"), "user", "--config", str(site), "head",
           "--role", "admin"]
    done = subprocess.run(cli, env=os.environ | {"FACILITY_NEW_PASSWORD": ADMIN_PASSWORD},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    gateway = GatewayProcess(site, port, directory / "gateway.log")
    gateway.start()
    try:
        login = gateway.client.post("/api/v1/auth/login", json={"username": "head", "password": ADMIN_PASSWORD})
        yield Served(gateway.client, port, gateway.log_path, login.json()["token"])
    finally:
        gateway.client.close()
        gateway.stop()


@pytest.fixture(scope="module")
def gateway(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """As configured by default, but for the limit and the deadline: no trusted proxy."""
    with serve(tmp_path_factory.mktemp("guard") / "default", mosquitto, []) as served:
        yield served


def refused(served: Served, reason: str) -> float:
    return accounting(served.client).total("facility_http_refused_total", reason=reason)


def connect(served: Served) -> socket.socket:
    sock = socket.create_connection((HOST, served.port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def until_closed(sock: socket.socket, timeout: float = 5) -> bytes:
    """All the server sends until it closes the connection; fails if it does not in time."""
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def answer(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def post_head(served: Served, framing: str) -> bytes:
    return (f"POST /api/v1/readings HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {served.token}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n").encode()


# ------------------------------------------------------------------------------- body limit


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(gateway: Served) -> None:
    before = refused(gateway, "too_large")
    with connect(gateway) as sock:
        sock.sendall(post_head(gateway, "Content-Length: 50000000"))  # and not one byte of it
        status, headers, body = answer(until_closed(sock))
    assert status == 413
    assert headers["connection"] == "close"
    assert "content-security-policy" in headers
    detail = json.loads(body)["detail"]
    assert f"larger than {LIMIT} bytes" in detail
    assert "api.max_body_bytes" in detail
    assert refused(gateway, "too_large") == before + 1


def test_a_chunked_body_is_cut_off_as_it_passes_the_limit(gateway: Served) -> None:
    before = refused(gateway, "too_large")
    chunk = b"[" + b" " * 16_382 + b"]"
    sent = 0
    with connect(gateway) as sock:
        sock.sendall(post_head(gateway, "Transfer-Encoding: chunked"))
        while sent < 10 * LIMIT and not select.select([sock], [], [], 0.05)[0]:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        status, _, body = answer(until_closed(sock))
    assert status == 413, f"no answer after {sent} bytes"
    assert sent < 2 * LIMIT
    assert "api.max_body_bytes" in json.loads(body)["detail"]
    assert refused(gateway, "too_large") == before + 1


def test_a_body_under_the_limit_is_taken(gateway: Served) -> None:
    readings = [{"device_id": "meter", "energy_kwh": 1.0 + i} for i in range(LIMIT // 60)]
    body = json.dumps(readings).encode()
    assert LIMIT / 2 < len(body) <= LIMIT
    response = gateway.client.post("/api/v1/readings", content=body, headers=gateway.auth)
    assert response.status_code == 200
    assert response.json()["accepted"] == len(readings)


# ----------------------------------------------------------------------------- the deadline


def test_a_request_that_does_not_arrive_whole_in_time_is_cut_off(gateway: Served) -> None:
    before = refused(gateway, "timeout")
    # A live stream outlasts the deadline: it applies to receiving a request, not to answering.
    live = connect(gateway)
    live.sendall(f"GET /api/v1/live HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {gateway.token}"
                 "\r\n\r\n".encode())
    silent = connect(gateway)  # sends nothing at all
    trickle = connect(gateway)  # half the headers, then a byte now and then: a deadline, not an idle timer
    trickle.sendall(b"GET /health HTTP/1.1\r\nHost: gateway\r\n")
    half_body = connect(gateway)  # the route waits for a body that stops halfway
    half_body.sendall(post_head(gateway, "Content-Length: 1000") + b'[{"device_id": "meter", ')
    started = time.monotonic()
    stalled = {"silent": silent, "trickle": trickle, "half body": half_body}
    answers: dict[str, bytes] = dict.fromkeys(stalled, b"")
    open_ones = dict(stalled)
    try:
        while open_ones and time.monotonic() - started < TIMEOUT_S + 3:
            # Meanwhile everybody else is served.
            assert gateway.client.get("/health").status_code == 200
            if "trickle" in open_ones:
                with suppress(OSError):  # closed meanwhile: seen below
                    trickle.sendall(b"X")
            for name, sock in list(open_ones.items()):
                if select.select([sock], [], [], 0.1)[0]:
                    try:
                        data = sock.recv(65536)
                    except ConnectionResetError:  # the trickle's last byte may arrive after the close
                        data = b""
                    answers[name] += data
                    if not data:
                        del open_ones[name]
        elapsed = time.monotonic() - started
        assert not open_ones, f"still open after {elapsed:.1f} s: {sorted(open_ones)}"
        assert elapsed < TIMEOUT_S + 1.5
        for name, raw in answers.items():
            assert raw.startswith(b"HTTP/1.1 408 "), (name, answers)
        live.settimeout(0.3)
        assert live.recv(65536).startswith(b"HTTP/1.1 200 ")  # and still open
    finally:
        for sock in (live, *stalled.values()):
            sock.close()
    assert refused(gateway, "timeout") == before + 3
    # A client gone before its body arrived is no error of the gateway's.
    assert "Exception in ASGI application" not in gateway.log.read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ the client


def locked_out_as(served: Served) -> str:
    """Fails a login from a forged address, which locks (login_max_failures: 1); who the
    audit trail says was locked out."""
    forged = {"X-Forwarded-For": "203.0.113.9"}
    failed = served.client.post("/api/v1/auth/login", json={"username": "mallory", "password": "wrong-one"},
                                headers=forged)
    assert failed.status_code == 401
    audit = served.client.get("/api/v1/audit", params={"action": "login.locked"}, headers=served.auth).json()
    actor: str = audit[0]["actor"]
    return actor


def test_forwarded_for_is_ignored_without_a_trusted_proxy(gateway: Served) -> None:
    assert locked_out_as(gateway) == "client:127.0.0.1"


def test_forwarded_for_is_believed_from_a_trusted_proxy(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with serve(tmp_path / "proxied", mosquitto, ["127.0.0.0/8"]) as served:
        assert locked_out_as(served) == "client:203.0.113.9"


# ------------------------------------------------------------------------- what pages carry


def test_every_answer_carries_the_security_headers(gateway: Served) -> None:
    page = gateway.client.get("/")
    static = re.search(r'src="(/static/[^"]+/app\.js)"', page.text)
    assert static is not None
    for response in (page, gateway.client.get(static[1]), gateway.client.get("/health"),
                     gateway.client.get("/api/v1/devices"), gateway.client.get("/nowhere")):
        headers = response.headers
        policy = headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "script-src 'self';" in policy  # no inline script, no other origin
        assert "frame-ancestors 'none'" in policy
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"


# ------------------------------------------------------------- redirects and the API docs


def test_no_redirect_carries_the_host_header(gateway: Served) -> None:
    response = gateway.client.get("/api/v1/devices/", headers=gateway.auth | {"Host": "evil.example"})
    assert response.status_code == 404
    assert "location" not in response.headers


def test_the_api_docs_come_from_the_gateway(gateway: Served) -> None:
    docs = gateway.client.get("/docs")
    assert docs.status_code == 200
    assert not re.search(r"https?://", docs.text)
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert len(assets) == 3  # script, style sheet, icon
    for asset in assets:
        served = gateway.client.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 0
    # The page's one inline script is allowed by its hash, and nothing else inline is.
    inline = re.findall(r"<script>(.*?)</script>", docs.text, re.S)
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in docs.headers["content-security-policy"]
    assert gateway.client.get("/redoc").status_code == 404
    assert "/api/v1/readings" in gateway.client.get("/openapi.json").json()["paths"]


def test_the_api_docs_work_in_a_browser_under_the_policy(gateway: Served) -> None:
    base = f"http://{HOST}:{gateway.port}"
    with chromium() as browser, open_page(browser) as (page, console):
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{base}/docs")
        page.locator(".swagger-ui .info .title").filter(has_text="Facility gateway").wait_for()
        page.locator(".opblock-summary-path", has_text="/api/v1/readings").first.wait_for()
        assert console.problems() == []
        assert all(url.startswith((base, "data:")) for url in requested), requested
