"""Upload to an energy-monitoring platform (能耗监测平台) under the 2008 transmission guideline
(《…分项能耗数据传输技术导则》): TCP frames carrying AES-encrypted XML, a login by MD5 identity
check, heartbeats, and the meters' data, each message acknowledged (docs/platform.md).

The spool feeds this sink like any other, so store-and-forward (断点续传) is the spool's: a
batch whose messages the platform has not acknowledged stays there and is offered again, in
order, when the platform is back. What was acknowledged is remembered in `platform.json` in
the data folder (the last period sent for each meter), so a batch offered again sends only
what is missing, and a restart sends nothing twice.

From the readings: every `raw_every_min` minutes (15), each meter's cumulative reading —
the first one at or after the period's start, stamped with that start — and every
`statistics_every_min` (60) its use over the period just ended (the difference of the two
readings at its ends; a period without a reading at both ends has none).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import Counter

from devices import kinds
from devices.base import Event, Sample
from gateway.clock import Clock, to_ms
from gateway.config import SiteConfig
from gateway.config.platform import PlatformMeter, PlatformSettings
from gateway.counters import Counters
from gateway.sinks import TransientSinkError

log = logging.getLogger(__name__)

HEAD = b"\x55\xaa\x55\xaa"
TAIL = b"\x68\x16\x68\x16"
MAX_FRAME = 1 << 20  # a platform's answer is a few hundred bytes: more is garbage
_MINUTE_MS = 60_000
KEEP_H = 30 * 24  # what the guideline asks a gateway to keep for a platform that is away


class PlatformProtocolError(Exception):
    """What the platform sent is not a frame, not decryptable, or not the expected answer."""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (polynomial 0xA001 reflected, initial 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


class Crypto:
    """AES-128 with the variant's mode (CBC or ECB) and padding (PKCS#7 or zeros)."""

    def __init__(self, settings: PlatformSettings) -> None:
        # Imported by a site that reports to a platform, here: its Rust core is 6 MB of every
        # gateway's memory otherwise.
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        key = settings.aes_key.get_secret_value().encode()
        iv = (settings.aes_iv or settings.aes_key).get_secret_value().encode()
        # ECB where a province's variant says so: the platform chooses the mode, not the gateway.
        self._cipher = Cipher(algorithms.AES(key), modes.CBC(iv) if settings.cipher == "cbc" else modes.ECB())  # noqa: S305
        self._zero = settings.padding == "zero"

    def encrypt(self, plain: bytes) -> bytes:
        missing = 16 - len(plain) % 16
        padded = plain + (b"\0" * (missing % 16) if self._zero else bytes([missing]) * missing)
        encryptor = self._cipher.encryptor()
        return encryptor.update(padded) + encryptor.finalize()

    def decrypt(self, data: bytes) -> bytes:
        if not data or len(data) % 16:
            raise PlatformProtocolError(f"an encrypted body of {len(data)} bytes is not whole AES blocks")
        decryptor = self._cipher.decryptor()
        padded = decryptor.update(data) + decryptor.finalize()
        if self._zero:
            return padded.rstrip(b"\0")
        n = padded[-1]
        if not 1 <= n <= 16 or padded[-n:] != bytes([n]) * n:
            raise PlatformProtocolError("bad PKCS#7 padding: wrong key or IV?")
        return padded[:-n]


@dataclass(frozen=True, slots=True)
class Record:
    """One value for the platform: a meter's reading (`parser` no) or its use over a period
    (`parser` yes), for the period starting at `start_ms`."""

    device_id: str
    statistic: bool
    start_ms: int
    value: float
    # What the sink remembers once the platform has acknowledged it.
    remember: tuple[int, float]


@dataclass(slots=True)
class Progress:
    """Per meter: the start of the last raw period sent, and the last statistics boundary
    with the reading there."""

    raw: dict[str, int] = field(default_factory=dict)
    stat: dict[str, tuple[int, float]] = field(default_factory=dict)

    def copy(self) -> Progress:
        return Progress(dict(self.raw), dict(self.stat))

    def learn(self, r: Record) -> None:
        if r.statistic:
            self.stat[r.device_id] = r.remember
        else:
            self.raw[r.device_id] = r.remember[0]


class ProgressFile:
    """`Progress` on disk, replaced whole (written aside, then renamed)."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def load(self) -> Progress:
        """What was sent; nothing for a file that is missing or unreadable (then periods already
        sent may go again, as re-sent data, rather than the gateway not starting)."""
        try:
            saved = json.loads(self._path.read_text())
            return Progress({k: int(v) for k, v in saved["raw"].items()},
                            {k: (int(v[0]), float(v[1])) for k, v in saved["stat"].items()})
        except FileNotFoundError:
            return Progress()
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.error("energy platform: cannot read %s (%s: %s); starting as if nothing had been sent",
                      self._path, type(exc).__name__, exc)
            return Progress()

    def save(self, progress: Progress) -> None:
        aside = self._path.with_suffix(".tmp")
        aside.write_text(json.dumps({"raw": progress.raw, "stat": {k: list(v) for k, v in progress.stat.items()}}))
        os.replace(aside, self._path)


class Periods:
    """Turns readings into records. Pure: the progress is passed in and moved on."""

    def __init__(self, settings: PlatformSettings, site: SiteConfig) -> None:
        self._raw_ms = settings.raw_every_min * _MINUTE_MS
        self._stat_ms = settings.statistics_every_min * _MINUTE_MS
        self._tz = ZoneInfo(site.timezone)
        self._metric: dict[str, str] = {}
        for device_id in settings.meters:
            device = site.device(device_id)
            assert device is not None, "the site file's check names every meter"
            self._metric[device_id] = next(m.key for m in kinds()[device.kind].metrics if m.utility is not None)

    def _start(self, ts_ms: int, every_ms: int) -> int:
        """The local-time period `ts_ms` lies in (a day starts at local midnight)."""
        offset = datetime.fromtimestamp(ts_ms / 1000, self._tz).utcoffset()
        shift = int(offset.total_seconds() * 1000) if offset is not None else 0
        return (ts_ms + shift) // every_ms * every_ms - shift

    def records(self, samples: Sequence[Sample], progress: Progress) -> list[Record]:
        out: list[Record] = []
        for s in sorted(samples, key=lambda s: s.ts_ms):
            metric = self._metric.get(s.device_id)
            if metric is None or metric not in s.values:
                continue
            value = s.values[metric]
            raw = self._start(s.ts_ms, self._raw_ms)
            if raw > progress.raw.get(s.device_id, -1):
                r = Record(s.device_id, False, raw, value, (raw, value))
                out.append(r)
                progress.learn(r)
            stat = self._start(s.ts_ms, self._stat_ms)
            last = progress.stat.get(s.device_id)
            if last is None or stat > last[0]:
                if last is not None and last[0] == stat - self._stat_ms:
                    r = Record(s.device_id, True, last[0], value - last[1], (stat, value))
                    out.append(r)
                    progress.learn(r)
                else:  # the first reading, or none at the last boundary: the next period's start
                    progress.stat[s.device_id] = (stat, value)
        return out

    def local(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self._tz).strftime("%Y%m%d%H%M%S")


class Connection:
    """One logged-in TCP connection to the platform: frames out, frames in."""

    def __init__(self, settings: PlatformSettings, crypto: Crypto, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self._s = settings
        self._crypto = crypto
        self._reader = reader
        self._writer = writer

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # already reset by the platform: closed either way
            await self._writer.wait_closed()

    def _root(self, operation: str) -> tuple[ET.Element, ET.Element]:
        root = ET.Element("root")
        common = ET.SubElement(root, "common")
        ET.SubElement(common, "building_id").text = self._s.building_id
        ET.SubElement(common, "gateway_id").text = self._s.gateway_id
        ET.SubElement(common, "type").text = operation
        return root, common

    def message(self, element: str, operation: str, children: dict[str, str]) -> ET.Element:
        root, _ = self._root(operation)
        body = ET.SubElement(root, element, operation=operation)
        for tag, text in children.items():
            ET.SubElement(body, tag).text = text
        return root

    async def send(self, root: ET.Element) -> None:
        body = self._crypto.encrypt(ET.tostring(root, encoding="utf-8", xml_declaration=True))
        order = self._s.length_order
        frame = HEAD + len(body).to_bytes(4, order) + body + crc16(body).to_bytes(2, order) + TAIL
        self._writer.write(frame)
        await self._writer.drain()

    async def _frame(self) -> bytes:
        head = await self._reader.readexactly(8)
        if head[:4] != HEAD:
            raise PlatformProtocolError(f"not a frame: starts {head[:4].hex()}")
        length = int.from_bytes(head[4:], self._s.length_order)
        if length > MAX_FRAME:
            raise PlatformProtocolError(f"a frame of {length} bytes")
        rest = await self._reader.readexactly(length + 6)
        body, crc, tail = rest[:length], rest[length:length + 2], rest[length + 2:]
        if tail != TAIL or int.from_bytes(crc, self._s.length_order) != crc16(body):
            raise PlatformProtocolError("a frame with a wrong checksum or end")
        return body

    async def answer(self, element: str, operation: str, match: dict[str, str] | None = None) -> ET.Element:
        """The next message that is `element` with `operation` (and the children in `match`);
        other well-formed messages (a time sync, a query this gateway does not serve) are
        passed over."""
        async with asyncio.timeout(self._s.answer_timeout_s):
            while True:
                try:
                    # The logged-in platform's answer, at most MAX_FRAME bytes: expat refuses
                    # entity expansion bombs and ElementTree fetches no external entity.
                    root = ET.fromstring(self._crypto.decrypt(await self._frame()))  # noqa: S314
                except ET.ParseError as exc:
                    raise PlatformProtocolError(f"not XML: {exc}") from exc
                body = root.find(element)
                if body is None or body.get("operation") != operation:
                    continue
                if all(body.findtext(tag) == text for tag, text in (match or {}).items()):
                    return body


class PlatformSink:
    """Sends the meters' data to the platform; each message waits for its acknowledgement."""

    name = "platform"

    def __init__(self, settings: PlatformSettings, site: SiteConfig, counters: Counters, clock: Clock) -> None:
        self._s = settings
        self._clock = clock
        self._crypto = Crypto(settings)
        self._periods = Periods(settings, site)
        self._file = ProgressFile(site.storage.data_dir / "platform.json")
        self._progress = self._file.load()
        self._meters: dict[str, PlatformMeter] = dict(settings.meters)
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()  # one exchange at a time: data and heartbeats share the connection
        self._sequence = 0
        if site.spool.max_age_h < KEEP_H:
            log.warning("energy platform: the spool keeps %g hours (spool.max_age_h); an outage of the platform "
                        "longer than that loses readings for it, where the guideline asks for 30 days (%d)",
                        site.spool.max_age_h, KEEP_H)
        r = counters.registry
        self._refused = Counter("facility_platform_logins_refused",
                                "Logins the energy platform refused (wrong key or gateway id)", registry=r)
        self._failures = Counter("facility_platform_failures", "Exchanges with the energy platform that failed, "
                                 "by reason (unreachable, closed, timeout, garbage)", ["reason"], registry=r)
        self._sent = Counter("facility_platform_messages", "Data messages the energy platform acknowledged, by "
                             "kind (report, continuous)", ["kind"], registry=r)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def _login(self) -> Connection:
        s, n = self._s, self._s.names
        try:
            async with asyncio.timeout(s.answer_timeout_s):
                reader, writer = await asyncio.open_connection(s.host, s.port)
        except (OSError, TimeoutError) as exc:
            self._failures.labels("unreachable").inc()
            raise TransientSinkError(f"platform {s.host}:{s.port} unreachable: {exc or type(exc).__name__}") from exc
        conn = Connection(s, self._crypto, reader, writer)
        try:
            await conn.send(conn.message(n.id_validate, n.request, {}))
            sequence = (await conn.answer(n.id_validate, n.sequence)).findtext(n.sequence) or ""
            # MD5 is the guideline's identity check, not this gateway's choice.
            digest = hashlib.md5((sequence + s.auth_key.get_secret_value()).encode()).hexdigest()  # noqa: S324
            await conn.send(conn.message(n.id_validate, n.md5, {n.md5: digest}))
            result = (await conn.answer(n.id_validate, n.result)).findtext(n.result)
        except BaseException:
            await conn.close()
            raise
        if result != n.passed:
            await conn.close()
            self._refused.inc()
            raise TransientSinkError(f"platform refused the login of gateway {s.gateway_id} (answer {result!r}): "
                                     f"check platform.auth_key and gateway_id")
        log.info("logged in to the energy platform %s:%d as gateway %s", s.host, s.port, s.gateway_id)
        return conn

    async def _exchange(self, step: Callable[[Connection], Awaitable[None]]) -> None:
        """Runs `step` on a logged-in connection; a failure drops the connection."""
        try:
            if self._conn is None:
                self._conn = await self._login()
            await step(self._conn)
        except (PlatformProtocolError, ET.ParseError, TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
            reason = ("garbage" if isinstance(exc, PlatformProtocolError | ET.ParseError)
                      else "timeout" if isinstance(exc, TimeoutError) else "closed")
            self._failures.labels(reason).inc()
            await self._drop()
            raise TransientSinkError(f"platform {reason}: {exc or type(exc).__name__}") from exc

    async def write(self, samples: Sequence[Sample], events: Sequence[Event]) -> None:
        """Sends the records these readings complete, oldest first, each acknowledged before
        the next; raises TransientSinkError on the first one that is not (the spool offers the
        batch again and only what was not acknowledged goes)."""
        working = self._progress.copy()
        records = self._periods.records(samples, working)
        if working == self._progress:
            return
        async with self._lock:
            try:
                for message in self._messages(records):
                    await self._exchange(partial(self._send_data, message))
                    for r in message:
                        self._progress.learn(r)
                self._progress = working  # with the periods' starts that sent nothing
            finally:
                await asyncio.to_thread(self._file.save, self._progress)

    def _messages(self, records: list[Record]) -> list[list[Record]]:
        """Records of one kind and period go in one message, in the order they came."""
        grouped: dict[tuple[int, bool], list[Record]] = {}
        for r in records:
            grouped.setdefault((r.start_ms, r.statistic), []).append(r)
        return list(grouped.values())

    async def _send_data(self, records: list[Record], conn: Connection) -> None:
        s, n = self._s, self._s.names
        first = records[0]
        every_min = s.statistics_every_min if first.statistic else s.raw_every_min
        every_ms = every_min * _MINUTE_MS
        late = to_ms(self._clock.now()) - (first.start_ms + every_ms) > s.late_periods * every_ms
        operation = n.continuous if late else n.report
        self._sequence += 1
        sequence = str(self._sequence)
        root = conn.message(n.data, operation, {
            n.sequence: sequence, "parser": "yes" if first.statistic else "no",
            "time": self._periods.local(first.start_ms), "period": str(every_min),
        })
        body = root.find(n.data)
        assert body is not None
        for r in records:
            meter = self._meters[r.device_id]
            m = ET.SubElement(body, "meter", id=meter.id, conn="conn")
            ET.SubElement(m, "function", id=meter.function, coding=meter.coding, error="0").text = f"{r.value:.3f}"
        await conn.send(root)
        await conn.answer(n.data, n.continuous_ack if late else n.report_ack, {n.sequence: sequence})
        self._sent.labels("continuous" if late else "report").inc()

    async def heartbeat(self) -> None:
        """Tells the platform every `heartbeat_s` that the gateway is alive, while logged in;
        a heartbeat not answered drops the connection (the next data logs in again)."""
        n = self._s.names
        while True:
            await asyncio.sleep(self._s.heartbeat_s)
            async with self._lock:
                if self._conn is None:
                    continue

                async def beat(conn: Connection) -> None:
                    await conn.send(conn.message(n.heart_beat, n.notify, {}))
                    await conn.answer(n.heart_beat, n.time)

                try:
                    await self._exchange(beat)
                except TransientSinkError as exc:
                    log.warning("energy platform heartbeat: %s", exc)

