"""Polled meters: Modbus (through pymodbus, gateway/ingest/modbus.py) and DL/T 645, one task per bus.

Meters that share a URL share a bus: an RS-485 line behind one serial server answers one
request at a time, so a bus's meters are read in turn, each every `interval_s` of its device.
A transport only moves bytes: it reads what the meter's source plans (Modbus registers, DL/T
645 answer frames) and hands the raw bytes to the ingestor, where the source decodes them
like any other payload; a bad answer becomes a rejection with its reason and a preview.

A meter that cannot be read (no connection, no answer, a Modbus exception) is not a message:
it is counted in `facility_poll_errors_total` by device and reason, shown in `/health` as its
bus's state, and logged once when it starts failing and once when it recovers; the rule
`device_offline` raises an alert once it has been silent for its intervals. The connection is
closed after a failure, so that a late answer cannot be taken for the next one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from prometheus_client import Counter

from devices.base import DecodeError
from devices.vendors import BusUrl
from devices.vendors.dlt645 import Dlt645Source, frame_length
from devices.vendors.modbus import PART as MODBUS_PART
from devices.vendors.modbus import ModbusSource
from gateway.clock import Clock, to_ms
from gateway.config import Device, SiteConfig
from gateway.ingest.bus import BusClient, PolledSource, PollError
from gateway.ingest.pipeline import Ingestor

log = logging.getLogger(__name__)

# How long a poll's readings may wait for room in a full ingest buffer before the poll is dropped.
INGEST_WAIT_S: Final = 5.0
DLT645_PART: Final = "frames"


class Dlt645Bus(BusClient):
    """DL/T 645 over a transparent TCP serial server: each request frame written, its answer
    read until the codec says a frame is complete."""

    def __init__(self, bus: BusUrl, where: str) -> None:
        super().__init__(bus, where)
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def read(self, device_id: str, source: PolledSource) -> bytes:
        assert isinstance(source, Dlt645Source)
        timeout = source.timeout_s
        if self._streams is None:
            try:
                async with asyncio.timeout(timeout):
                    self._streams = await asyncio.open_connection(self.bus.host, self.bus.port)
            except (OSError, TimeoutError) as exc:
                raise PollError("connection", f"cannot connect to {self.where}: {exc or 'timed out'}") from None
        reader, writer = self._streams
        answers = []
        for quantity, request in zip(source.read_plan(), source.requests(), strict=True):
            try:
                writer.write(request)
                async with asyncio.timeout(timeout):
                    await writer.drain()
                    answer, complete = await _one_frame(device_id, reader)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                await self.close()
                # (TimeoutError is an OSError: asked first.)
                why = f"no complete answer within {timeout:g} s" if isinstance(exc, TimeoutError) \
                    else "the connection closed"
                raise PollError("timeout", f"meter {source.address} on {self.where}, {quantity.name}: {why}") \
                    from None
            answers.append(answer)
            if not complete:  # garbage on the line: let the codec reject what came, and start afresh
                await self.close()
                break
        return b"".join(answers)

    async def close(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):  # the peer had gone already: closed either way
                await writer.wait_closed()


async def _one_frame(device_id: str, reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """Reads until the bytes are one whole frame (True) or cannot be one (False)."""
    buf = b""
    while True:
        try:
            size = frame_length(device_id, buf)
        except DecodeError:
            return buf, False
        if size is not None:
            return buf[:size], True
        chunk = await reader.read(256)
        if not chunk:
            raise asyncio.IncompleteReadError(buf, None)
        buf += chunk


@dataclass(slots=True)
class _Meter:
    device: Device
    source: PolledSource
    due: float = 0.0  # loop time of its next poll
    failing: str | None = None  # the last error while it fails


class BusPoller:
    """Polls the meters of one bus in turn, each on its device's interval."""

    def __init__(self, url: str, meters: Sequence[tuple[Device, PolledSource]], ingestor: Ingestor, clock: Clock,
                 errors: Counter) -> None:
        first = meters[0][1]
        self.url = url
        self.protocol = first.protocol
        self._meters = [_Meter(device, source) for device, source in meters]
        self._given = list(meters)
        self._ingestor = ingestor
        self._clock = clock
        self._errors = errors
        if isinstance(first, ModbusSource):
            from gateway.ingest.modbus import ModbusBus  # pymodbus: 3 MB, for a site with Modbus meters only

            self._client: BusClient = ModbusBus(first.bus(), url, max(s.timeout_s for _, s in meters))
        else:
            self._client = Dlt645Bus(first.bus(), url)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for meter in self._meters:
            meter.due = now
        try:
            while True:
                meter = min(self._meters, key=lambda m: m.due)
                await asyncio.sleep(max(0.0, meter.due - loop.time()))
                await self._poll(meter)
                # On schedule when it can be; a bus too slow for its intervals polls as fast as it can.
                meter.due = max(meter.due + meter.device.interval_s, loop.time())
        finally:
            await self._client.close()

    async def _poll(self, meter: _Meter) -> None:
        device_id = meter.device.id
        try:
            payload = await self._client.read(device_id, meter.source)
        except PollError as exc:
            self._errors.labels(device_id, exc.reason).inc()
            if meter.failing is None:
                log.warning("%s %s: %s", self.protocol, device_id, exc.detail)
            meter.failing = exc.detail
            return
        if meter.failing is not None:
            log.info("%s %s: read again after failing (%s)", self.protocol, device_id, meter.failing)
            meter.failing = None
        received_ms = to_ms(self._clock.now())
        part = MODBUS_PART if isinstance(meter.source, ModbusSource) else DLT645_PART
        await asyncio.to_thread(self._ingestor.accept_polled, self.protocol, device_id, meter.source, part, payload,
                                received_ms, INGEST_WAIT_S)

    def health(self) -> dict[str, str]:
        failing = [f"{m.device.id}: {m.failing}" for m in self._meters if m.failing is not None]
        return {"state": "down", "detail": "; ".join(failing)} if failing else {"state": "ok"}


    def same_meters(self, other: BusPoller) -> bool:
        """Whether `other` polls the same meters the same way."""
        return self._given == other._given


def pollers(site: SiteConfig, ingestor: Ingestor, clock: Clock, errors: Counter) -> list[BusPoller]:
    """One poller per bus URL of the site's polled meters."""
    buses: dict[str, list[tuple[Device, PolledSource]]] = {}
    for device in site.devices:
        if isinstance(device.source, ModbusSource | Dlt645Source):
            buses.setdefault(device.source.url, []).append((device, device.source))
    return [BusPoller(url, meters, ingestor, clock, errors) for url, meters in buses.items()]
