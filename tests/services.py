"""Real services for integration tests, each a subprocess on a free loopback port with its
own temporary directory: Mosquitto (the production broker), VictoriaMetrics (a server
that speaks the InfluxDB v2 write API) and PostgreSQL, all from Debian's packages.

A missing binary skips the test, or fails it when `CI=true`, with the package to install.
Readiness is polled for at most `READY_TIMEOUT_S`; a service that does not come up fails
the test with the tail of its log.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NoReturn, Protocol

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

HOST: Final = "127.0.0.1"
READY_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 10.0
LOG_TAIL_LINES: Final = 30
MQTT_TIMEOUT_S: Final = 5.0
# Debian installs the broker in /usr/sbin, which is not on every user's PATH.
_SEARCH_PATH: Final = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin"])


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Polls `check` until it holds; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


async def until(check: Callable[[], bool], within_s: float = 15.0) -> None:
    """`wait_for` without blocking the event loop."""
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A TCP port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def require_binary(name: str, package: str) -> str:
    """The path of an installed program; skips the test without it (fails it on CI)."""
    path = shutil.which(name, path=_SEARCH_PATH)
    if path is not None:
        return path
    message = f"{name} is not installed; install it with `apt-get install {package}`"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def log_tail(log_path: Path) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-LOG_TAIL_LINES:]) or "(log is empty)"


@dataclass
class ServiceProcess:
    """One service subprocess; its stdout and stderr are appended to `log_path`."""

    name: str
    argv: list[str]
    log_path: Path
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def start(self, ready: Callable[[], bool]) -> None:
        """Starts the process and polls `ready` until it returns true."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            code = self._popen.poll()
            if code is not None:
                self._popen = None
                self._fail(f"exited with status {code} while starting")
            if ready():
                return
            if time.monotonic() > deadline:
                self.stop()
                self._fail(f"was not ready after {READY_TIMEOUT_S:g} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminates the process (SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`)."""
        if self._popen is None:
            return
        self._popen.terminate()
        try:
            self._popen.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        self._popen = None

    def send_signal(self, sig: signal.Signals) -> None:
        assert self._popen is not None, f"{self.name} is not running"
        self._popen.send_signal(sig)

    def _fail(self, what: str) -> NoReturn:
        pytest.fail(
            f"{self.name} {what}: {' '.join(self.argv)}\n"
            f"last lines of {self.log_path}:\n{log_tail(self.log_path)}",
            pytrace=False,
        )


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.2):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- Mosquitto

# Mosquitto 2 drops QoS 0 messages for a subscriber that is slower than the publishers as
# soon as more than `max_queued_messages` (default 1000) wait for it; a test that floods the
# broker must not lose any, so the queue is made large enough never to fill. The gateway
# acknowledges a message only once it is spooled, so the broker's window of unacknowledged
# messages per client (`max_inflight_messages`, default 20) bounds its rate: it gets the
# same window as in deploy/mosquitto/mosquitto.conf.
MOSQUITTO_DEFAULTS: Final[dict[str, str | int | bool | Path]] = {
    "allow_anonymous": True,
    "persistence": False,
    "max_queued_messages": 1_000_000,
    "max_inflight_messages": 1000,
}


def mosquitto_conf(options: dict[str, str | int | bool | Path]) -> str:
    """Config lines from options; true/false for booleans, paths as written."""
    rendered = {k: ("true" if v else "false") if isinstance(v, bool) else str(v) for k, v in options.items()}
    return "".join(f"{k} {v}\n" for k, v in rendered.items())


@dataclass
class Mosquitto:
    """A Mosquitto broker on `host:port`, configured by the file at `conf_path`. It can be
    stopped and started again on the same port (clients reconnect to the same URL)."""

    port: int
    conf_path: Path
    log_path: Path
    host: str = HOST
    _process: ServiceProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        binary = require_binary("mosquitto", "mosquitto")
        self._process = ServiceProcess("mosquitto", [binary, "-c", str(self.conf_path)], self.log_path)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self) -> None:
        self._process.start(lambda: _accepts_connections(self.port))

    def stop(self) -> None:
        self._process.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: connections stay open and nothing is answered, as a hung broker."""
        self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, paused or not: the broker vanishes mid-conversation and its clients see
        their connections close. `start()` brings it back."""
        self._process.send_signal(signal.SIGKILL)
        self._process.stop()


MosquittoFactory = Callable[..., Mosquitto]
"""The `mosquitto_factory` fixture: `mosquitto_factory(**options)` starts a broker."""


def broker_user() -> str:
    """The user Mosquitto must run as: started by root it switches to the `mosquitto` user,
    which could not read or write the test's files."""
    return pwd.getpwuid(os.getuid()).pw_name


def start_mosquitto(directory: Path, **options: str | int | bool | Path) -> Mosquitto:
    """Starts a broker on a free loopback port, with its config, log and any data in
    `directory`. `options` are mosquitto.conf options that replace or add to
    `MOSQUITTO_DEFAULTS`, e.g. `allow_anonymous=False, password_file=path`."""
    port = free_port()
    log_path = directory / "mosquitto.log"
    conf_path = directory / "mosquitto.conf"
    conf_path.write_text(
        f"listener {port} {HOST}\n"
        + mosquitto_conf(
            {"user": broker_user(), "log_dest": f"file {log_path}"} | MOSQUITTO_DEFAULTS | options
        ),
        encoding="utf-8",
    )
    broker = Mosquitto(port, conf_path, log_path)
    broker.start()
    return broker


def mosquitto_passwd(password_file: Path, users: dict[str, str]) -> None:
    """Writes a Mosquitto password file with `mosquitto_passwd -b` (created if missing)."""
    binary = require_binary("mosquitto_passwd", "mosquitto")
    for user, password in users.items():
        create = [] if password_file.exists() else ["-c"]
        subprocess.run([binary, *create, "-b", str(password_file), user, password], check=True)


DEPLOY_MOSQUITTO: Final = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto"
# What a test must change in the shipped broker config: where it listens and where its files
# are (the shipped paths are inside the container). Every other directive is kept as shipped.
_SHIPPED_RELOCATED: Final = ("listener", "password_file", "acl_file", "persistence_location", "log_dest")


def start_shipped_mosquitto(directory: Path, users: dict[str, str], acl_file: Path | None = None) -> Mosquitto:
    """Starts Mosquitto with `deploy/mosquitto/mosquitto.conf` as it ships, rewritten only
    where it must be: a free loopback port, a password file with `users` (user → password),
    the shipped ACL (or `acl_file`), and persistence, log and the broker's user in
    `directory`. Fails when the shipped config no longer has a directive that is rewritten,
    so that a change of its shape updates this helper instead of slipping past it."""
    shipped = (DEPLOY_MOSQUITTO / "mosquitto.conf").read_text(encoding="utf-8").splitlines()
    directives = {line.split()[0] for line in shipped if line.strip() and not line.lstrip().startswith("#")}
    missing = set(_SHIPPED_RELOCATED) - directives
    assert not missing, f"deploy/mosquitto/mosquitto.conf has no {', '.join(sorted(missing))}: update this helper"
    password_file = directory / "passwd"
    mosquitto_passwd(password_file, users)
    port = free_port()
    log_path = directory / "mosquitto.log"
    relocated = {
        "listener": f"{port} {HOST}",
        "password_file": str(password_file),
        "acl_file": str(acl_file or DEPLOY_MOSQUITTO / "acl"),
        "persistence_location": f"{directory}/",
        "log_dest": f"file {log_path}",
        "user": broker_user(),
    }
    lines = []
    for line in shipped:
        key = line.split()[0] if line.strip() and not line.lstrip().startswith("#") else None
        if key in relocated:  # in place: `listener` opens the section that `protocol` belongs to
            lines.append(f"{key} {relocated.pop(key)}")
        elif key not in _SHIPPED_RELOCATED:  # a repeated directive (two log_dest) was replaced
            lines.append(line)
    lines += [f"{k} {v}" for k, v in relocated.items()]
    conf_path = directory / "mosquitto.conf"
    conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    broker = Mosquitto(port, conf_path, log_path)
    broker.start()
    return broker


@contextmanager
def mqtt_client(
    broker: Mosquitto, client_id: str, username: str | None = None, password: str | None = None
) -> Iterator[tuple[mqtt.Client, ReasonCode]]:
    """A connected paho client running its network loop, with the broker's CONNACK reason."""
    connack: queue.Queue[ReasonCode] = queue.Queue()

    def on_connect(
        client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags, reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            client.disconnect()  # no reconnect attempts, which would delay `loop_stop`
        connack.put(reason)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.on_connect = on_connect
    if username is not None:
        client.username_pw_set(username, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        yield client, connack.get(timeout=MQTT_TIMEOUT_S)
    finally:
        client.disconnect()
        client.loop_stop()


# ------------------------------------------------------------------------ VictoriaMetrics


@dataclass
class VictoriaMetrics:
    """A single-node VictoriaMetrics at `url`.

    It accepts InfluxDB line protocol on the v2 write API, `POST /api/v2/write?org=…&bucket=…`
    (what `influxdb-client`'s write API sends), ignores the `Authorization: Token …` header
    and answers 204. Each field of a line becomes its own series named
    `<measurement>_<field>`, labelled with the line's tags; org and bucket add no label.
    So `electricity_meter,site=s,building=b,room=r,device=d energy_kwh=1.5,power_w=300i`
    becomes `electricity_meter_energy_kwh{site="s",building="b",room="r",device="d"}` 1.5
    and `electricity_meter_power_w{…}` 300. Values are stored as floats: integers as is,
    booleans as 1/0. Timestamps are kept to the millisecond.

    String fields (`credential="card-1"`) become series with the value 0, and so do field
    values it cannot parse (`open=nonsense`), without an error: unlike InfluxDB it rejects
    nothing, so a test against it does not prove that InfluxDB would accept a line.

    Newly written rows are buffered for a second or two before searches see them; `export`
    and `query` first call `/internal/force_flush`, which makes them visible at once.
    """

    port: int
    data_dir: Path
    log_path: Path
    _process: ServiceProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        binary = require_binary("victoria-metrics", "victoria-metrics")
        argv = [
            binary,
            "-retentionPeriod=100y",  # test data may be stamped years in the past
            f"-httpListenAddr={HOST}:{self.port}",
            f"-storageDataPath={self.data_dir}",
            # Queries near "now" would otherwise hide the last 30 s of data, and a cached
            # response could hide points written after it.
            "-search.latencyOffset=0s",
            "-search.disableCache",
            # A point written twice (a batch retried after a lost answer) is one point, as
            # in InfluxDB, where a series and a timestamp identify a point.
            "-dedup.minScrapeInterval=1ms",
        ]
        self._process = ServiceProcess("victoria-metrics", argv, self.log_path)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        self._process.start(self._healthy)

    def stop(self) -> None:
        self._process.stop()

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def flush(self) -> None:
        """Makes every row written so far visible to searches."""
        httpx.get(f"{self.url}/internal/force_flush", timeout=10).raise_for_status()

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw points of the series matching a selector (`door_open`, `{site="s1"}`), one
        dict per series: `{"metric": {"__name__": …, labels…}, "values": […],
        "timestamps": [ms…]}`."""
        self.flush()
        response = httpx.post(f"{self.url}/api/v1/export", data={"match[]": match}, timeout=10)
        response.raise_for_status()
        return [json.loads(line) for line in response.content.splitlines() if line]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """The result of an instant query (at Unix time `at`, default now): one dict per
        series, `{"metric": {…}, "value": [ts, "value"]}`."""
        self.flush()
        params = {"query": promql} | ({} if at is None else {"time": str(at)})
        response = httpx.post(f"{self.url}/api/v1/query", data=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


def start_victoria_metrics(directory: Path) -> VictoriaMetrics:
    """Starts VictoriaMetrics on a free loopback port with its data and log in `directory`."""
    server = VictoriaMetrics(free_port(), directory / "data", directory / "victoria-metrics.log")
    server.start()
    return server


@dataclass
class GatewayProcess:
    """`facility-gateway run --config …` as a process of its own (optionally under `wrap`,
    e.g. a profiler), with a client for its API. It can be killed and started again on the
    same data."""

    config: Path
    api_port: int
    log_path: Path
    wrap: Sequence[str] = ()
    _popen: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=f"http://{HOST}:{self.api_port}", timeout=5)

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def start(self) -> None:
        """Starts it and waits until it is connected to the broker."""
        self.spawn()
        self.wait_ready(READY_TIMEOUT_S * 3)

    def command(self) -> list[str]:
        return ["run", "--config", str(self.config)]

    def ready(self) -> bool:
        """Connected to the broker."""
        state: str = self.client.get("/health").json()["components"]["mqtt"]["state"]
        return state == "ok"

    def spawn(self) -> None:
        """Starts it, not waiting (a standby does not answer until it runs its site)."""
        argv = [*self.wrap, str(Path(sys.executable).parent / "facility-gateway"), *self.command()]
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout_s: float) -> None:
        """Waits until its API answers and it is `ready`."""
        assert self._popen is not None
        proc = self._popen
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if self.ready():
                    return
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise RuntimeError(f"the gateway did not come up:\n{log_tail(self.log_path)}")
            time.sleep(0.1)

    def wait(self, timeout: float) -> int:
        """Waits for the process to exit by itself; its exit code."""
        assert self._popen is not None
        proc, self._popen = self._popen, None
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the gateway did not exit:\n{log_tail(self.log_path)}") from None

    def interrupt(self) -> None:
        """SIGINT, not waiting for it to end (`wait` does)."""
        assert self._popen is not None
        self._popen.send_signal(signal.SIGINT)

    def kill(self) -> None:
        """SIGKILL: no shutdown at all, as on a power cut of the process."""
        assert self._popen is not None
        self._popen.kill()
        self._popen.wait()
        self._popen = None

    def stop(self) -> None:
        """SIGINT, checking that it shut down cleanly."""
        if self._popen is None:
            return
        log_text = self.log_path.read_text(encoding="utf-8", errors="replace")
        proc, self._popen = self._popen, None
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=STOP_TIMEOUT_S * 3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the gateway hung on shutdown, killed:\n{log_tail(self.log_path)}") from None
        # uvicorn shuts down gracefully, then re-raises the signal: the CLI exits 130 as for Ctrl-C
        new_lines = self.log_path.read_text(encoding="utf-8", errors="replace")[len(log_text):]
        if code not in (0, 130) or "Application shutdown complete" not in new_lines:
            raise RuntimeError(f"the gateway did not stop cleanly (exit {code}):\n{log_tail(self.log_path)}")


@dataclass
class DistrictReplica(GatewayProcess):
    """`facility-gateway district` as a process of its own: `config` is its data folder; it runs
    the schools of the site files in `sites` whose leases it holds."""

    sites: Path = Path()
    state_url: str = ""
    name: str = ""
    lease_s: float = 30.0

    def command(self) -> list[str]:
        return ["district", "--sites", str(self.sites), "--state-url", self.state_url, "--data-dir",
                str(self.config), "--host", HOST, "--port", str(self.api_port), "--replica-id", self.name,
                "--lease-s", str(self.lease_s)]

    def ready(self) -> bool:
        status: str = self.client.get("/health").json()["status"]
        return status == "ok"

    def owned(self) -> set[str]:
        """The schools it runs now (none while it does not answer)."""
        try:
            schools = self.client.get("/health").json()["schools"]
        except (httpx.TransportError, ValueError):
            return set()
        return {s for s, state in schools.items() if state["state"] == "ok"}


class Steady:
    """Publishes `messages(n)` (topic, payload pairs) at QoS 1 for n = 0, 1, 2… every `every_s`,
    from a thread of its own, until the block ends; `sent` counts the steps done."""

    def __init__(self, broker: Mosquitto, client_id: str, messages: Callable[[int], list[tuple[str, str]]],
                 every_s: float) -> None:
        self._broker = broker
        self._client_id = client_id
        self._messages = messages
        self._every_s = every_s
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Steady:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with mqtt_client(self._broker, self._client_id) as (client, _):
            while not self._stop.is_set():
                for topic, payload in self._messages(self.sent):
                    client.publish(topic, payload, qos=1).wait_for_publish(5)
                self.sent += 1
                self._stop.wait(self._every_s)


@contextmanager
def gateway_process(config: Path, api_port: int, log_path: Path, wrap: Sequence[str] = ()) -> Iterator[httpx.Client]:
    """A started `GatewayProcess`'s API client; stops it cleanly afterwards."""
    gateway = GatewayProcess(config, api_port, log_path, wrap)
    gateway.start()
    try:
        yield gateway.client
    finally:
        gateway.client.close()
        gateway.stop()


_SAMPLE = re.compile(r"^(facility_\w+)(?:\{([^}]*)\})? (\S+)$", re.M)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Accounting:
    """The gateway's counters, from /metrics."""

    samples: list[tuple[str, dict[str, str], float]]

    def total(self, name: str, **labels: str) -> float:
        """The sum of a metric over the samples whose labels include `labels`."""
        return sum(v for n, have, v in self.samples if n == name and labels.items() <= have.items())

    def stored(self, sink: str) -> float:
        return self.total("facility_messages_stored_total", sink=sink)

    def dropped(self, sink: str, reason: str | None = None) -> float:
        return self.total("facility_messages_dropped_total", sink=sink, **({"reason": reason} if reason else {}))

    def pending(self, sink: str) -> float:
        return self.total("facility_messages_pending", sink=sink)

    @property
    def sinks(self) -> list[str]:
        return [labels["sink"] for n, labels, _ in self.samples if n == "facility_messages_pending"]

    def check(self) -> None:
        """received = stored + rejected + dropped + pending, for every sink, summed here
        from the parts (and the gateway's own difference gauge agrees)."""
        assert self.sinks, "no sinks in /metrics"
        received = self.total("facility_messages_received_total")
        rejected = self.total("facility_messages_rejected_total")
        for sink in self.sinks:
            parts = self.stored(sink) + rejected + self.dropped(sink) + self.pending(sink)
            assert received == parts, f"{sink}: received {received} != {parts} (stored + rejected + dropped + pending)"
            assert self.total("facility_messages_unaccounted", sink=sink) == 0


class _Response(Protocol):
    @property
    def text(self) -> str: ...


class _Client(Protocol):  # httpx.Client, and Starlette's TestClient (built on another httpx)
    def get(self, url: str) -> _Response: ...


def accounting(client: _Client) -> Accounting:
    text = client.get("/metrics").text
    return Accounting([(m[1], dict(_LABEL.findall(m[2] or "")), float(m[3])) for m in _SAMPLE.finditer(text)])


# --------------------------------------------------------------------------- PostgreSQL

def postgres_binary(name: str) -> str:
    """A PostgreSQL server program from Debian's packages (`postgresql`), which installs them
    in /usr/lib/postgresql/<version>/bin, off the PATH; the newest version there."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for directory in versions:
        if (directory / name).is_file():
            return str(directory / name)
    return require_binary(name, "postgresql")


def _as_postgres_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, the command runs as Debian's `postgres` user
    (setpriv replaces itself with the program, so signals reach the server)."""
    if os.getuid() != 0:
        return argv
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *argv]


@dataclass
class Postgres:
    """A PostgreSQL server made by `initdb` in a directory of its own, on a free loopback
    port, trusting local connections. Its durability is switched off (fsync, full-page
    writes): a test's database dies with the test."""

    port: int
    directory: Path
    user: str = "gateway"
    host: str = HOST
    _process: ServiceProcess = field(init=False, repr=False)

    def __post_init__(self) -> None:
        data = self.directory / "data"
        subprocess.run(
            _as_postgres_user([postgres_binary("initdb"), "-D", str(data), "-U", self.user, "--auth=trust",
                               "-E", "UTF8", "--no-locale", "--no-sync"]),
            check=True, capture_output=True,
        )
        self._process = ServiceProcess("postgres", _as_postgres_user([
            postgres_binary("postgres"), "-D", str(data), "-p", str(self.port),
            "-c", f"listen_addresses={self.host}", "-c", "unix_socket_directories=",
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off",
            "-c", "max_connections=300",
        ]), self.directory / "postgres.log")

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        """A SQLAlchemy URL (psycopg 3); with `schema`, every connection works in it."""
        options = f"?options=-csearch_path%3D{schema}" if schema else ""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}{options}"

    def new_schema(self) -> str:
        """The URL of a new, empty schema of its own: a state store no one else uses."""
        schema = f"s_{uuid.uuid4().hex[:16]}"
        self.execute(f"CREATE SCHEMA {schema}")
        return self.url(schema=schema)

    def execute(self, sql: str) -> None:
        """Runs one statement as the superuser, outside a transaction (CREATE DATABASE…)."""
        import psycopg
        with psycopg.connect(host=self.host, port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(sql.encode())

    def start(self) -> None:
        self._process.start(lambda: _accepts_connections(self.port))

    def stop(self) -> None:
        """A fast shutdown (SIGINT): SIGTERM would wait for every client to leave."""
        if self._process.running:
            self._process.send_signal(signal.SIGINT)
        self._process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def start_postgres() -> Postgres:
    """initdb and a server in a new temporary directory (pytest's are private to root, where
    the `postgres` user could not go); the directory is removed when the server is stopped."""
    directory = Path(tempfile.mkdtemp(prefix="facility-postgres-"))
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    server = Postgres(free_port(), directory)
    server.start()
    return server
