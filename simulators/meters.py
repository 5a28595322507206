"""Simulated polled meters: the Modbus and DL/T 645 meters of a site, served at the host and port
of their source URL, each holding the values of the simulation's latest message for it.

The publisher (simulators/publish.py) owns them: where a native device would publish a reading,
a polled meter's values are updated instead, and the gateway reads them on its own schedule, as
it reads a real meter.

- Modbus: pymodbus's TCP server (Modbus TCP, or RTU frames for `rtu-over-tcp://`) with each
  meter's register map (a preset and/or the site file's registers) in its byte and word order.
- DL/T 645: the TCP port of a transparent serial server with an RS-485 line of meters behind it.
  Each read request is answered by the meter it is addressed to, in the codec's own frames
  (`devices.vendors.dlt645`); garbled frames and frames for no meter on the line get no answer.

A bus starts listening with the first reading of one of its meters, and a meter on a listening
bus stays silent until its own first reading, like a meter not wired yet: made-up zeros would
reach the gateway as a meter that was replaced. Meters on a local serial port are not served
(`serves` says which devices are).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Final, Self

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

from devices.base import DecodeError
from devices.vendors import BusUrl
from devices.vendors.dlt645 import (
    COMBINED_ENERGY,
    DI_SIZE,
    MAX_DATA_SIZE,
    MIN_FRAME_SIZE,
    NO_SUCH_DATA,
    PREAMBLE,
    QUANTITIES,
    READ_ANSWER,
    READ_DATA,
    READ_ERROR,
    Dlt645Source,
    Quantity,
    encode_frame,
    frame_length,
    parse_frame,
)
from devices.vendors.modbus import PRESETS, ModbusSource, Register
from gateway.config import SiteConfig
from simulators.model import SimMessage, number

HOST: Final = "127.0.0.1"
# A transparent serial server lets a few TCP clients share its line; more are hung up on.
MAX_CLIENTS: Final = 4
# Bytes of an incomplete request kept per connection: two of the largest frames.
MAX_PENDING_BYTES: Final = 2 * (len(PREAMBLE) + MIN_FRAME_SIZE + MAX_DATA_SIZE)
READ_BYTES: Final = 256
# Each Modbus register type as a big-endian struct format.
_FORMATS: Final = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f", "uint64": ">Q",
                   "float64": ">d"}
# The data identifiers a simulated DL/T 645 meter answers. It never exports energy, so its
# combined total (forward minus reverse) is its forward total.
_DLT645_READS: Final = {q.di: q for q in (*QUANTITIES.values(), COMBINED_ENERGY)}

PolledSource = ModbusSource | Dlt645Source


def on_free_ports(site: SiteConfig) -> SiteConfig:
    """A copy of `site` whose polled meters are reached on free loopback ports, one per bus, for
    simulated meters that must not collide with another process's (two demos, a stale one)."""
    moved: dict[str, str] = {}
    devices = []
    for device in site.devices:
        source = device.source
        if not isinstance(source, PolledSource) or source.bus().serial:
            devices.append(device)
            continue
        if source.url not in moved:
            moved[source.url] = f"{source.bus().scheme}://{HOST}:{_free_port()}"
        devices.append(device.model_copy(update={"source": source.model_copy(update={"url": moved[source.url]})}))
    return site.model_copy(update={"devices": devices})


def _free_port() -> int:
    """A TCP port that was free on the loopback interface a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class _Bus(ABC):
    """One bus URL's server and the meters on it."""

    def __init__(self, bus: BusUrl, url: str) -> None:
        self.bus = bus
        self.url = url

    @abstractmethod
    def add(self, device_id: str, source: PolledSource) -> None: ...

    @abstractmethod
    def update(self, device_id: str, values: dict[str, float]) -> None:
        """The meter's new readings, in our units; raises ValueError if its format cannot hold one."""

    @property
    @abstractmethod
    def listening(self) -> bool: ...

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...


class SimulatedMeters:
    """Every polled meter of a site that can be served here, as an async context manager: each
    bus listens from its first reading on, and all are stopped (connections closed) on exit."""

    def __init__(self, site: SiteConfig) -> None:
        buses: dict[str, _Bus] = {}
        self._bus_of: dict[str, _Bus] = {}
        self._keys: dict[str, frozenset[str]] = {}
        for device in site.devices:
            source = device.source
            if not isinstance(source, PolledSource) or source.bus().serial:
                continue
            bus = buses.get(source.url)
            if bus is None:
                kind = _ModbusBus if isinstance(source, ModbusSource) else _Dlt645Bus
                bus = buses[source.url] = kind(source.bus(), source.url)
            bus.add(device.id, source)
            self._bus_of[device.id] = bus
            self._keys[device.id] = source.keys()
        self._stack = contextlib.AsyncExitStack()

    def serves(self, device_id: str) -> bool:
        return device_id in self._bus_of

    async def update(self, message: SimMessage) -> None:
        """The meter of `message.device_id` now holds the values of this telemetry message; its
        bus listens from now on. Raises ValueError if the meter's format cannot hold a value,
        OSError or RuntimeError if the bus's port cannot be listened on."""
        payload = message.payload
        values = {key: number(payload, key) for key in self._keys[message.device_id] if key in payload}
        bus = self._bus_of[message.device_id]
        bus.update(message.device_id, values)
        if not bus.listening:
            await bus.start()
            self._stack.push_async_callback(bus.stop)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stack.aclose()


# --- Modbus ------------------------------------------------------------------------------------


class _ModbusBus(_Bus):
    def __init__(self, bus: BusUrl, url: str) -> None:
        super().__init__(bus, url)
        self._meters: dict[str, tuple[ModbusSource, ModbusDeviceContext]] = {}
        # Units join the server's context with their first reading; until then the server
        # ignores requests for them, and the client waits in vain as for a silent meter.
        self._context = ModbusServerContext(devices={}, single=False)  # type: ignore[no-untyped-call]  # pymodbus 3.11
        self._server: ModbusTcpServer | None = None

    def add(self, device_id: str, source: PolledSource) -> None:
        assert isinstance(source, ModbusSource)
        registers = _register_map(source)
        # Blocks at datastore address 1: pymodbus adds 1 to the protocol address before it looks
        # into a block, so that a list index is then the protocol address.
        size = {function: max((r.end for r in registers if r.function == function), default=1)
                for function in ("input", "holding")}
        tables = ModbusDeviceContext(ir=_block([0] * size["input"]), hr=_block([0] * size["holding"]))
        self._meters[device_id] = (source, tables)

    def update(self, device_id: str, values: dict[str, float]) -> None:
        source, tables = self._meters[device_id]
        for register in _register_map(source):
            if register.key in values:
                tables.setValues(register.function_code, register.address, _words(source, register,
                                                                                   values[register.key]))
        if source.unit not in self._context:
            self._context[source.unit] = tables

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        framer = FramerType.RTU if self.bus.scheme == "rtu-over-tcp" else FramerType.SOCKET
        server = ModbusTcpServer(self._context, framer=framer, address=(self.bus.host, self.bus.port),
                                 ignore_missing_devices=True)
        await server.serve_forever(background=True)
        self._server = server

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]  # pymodbus 3.11


def _block(values: list[int]) -> ModbusSequentialDataBlock:
    return ModbusSequentialDataBlock(1, values)  # type: ignore[no-untyped-call]  # pymodbus 3.11


def _register_map(source: ModbusSource) -> list[Register]:
    """The registers a poll reads: the preset's, each replaced by the site file's entry of its key."""
    by_key = {r.key: r for r in PRESETS[source.preset]} if source.preset else {}
    return list((by_key | {r.key: r for r in source.registers}).values())


def _words(source: ModbusSource, register: Register, value: float) -> list[int]:
    """The register words a meter holds for `value`: (value − offset) / scale in the register's
    type, big-endian, then in the source's word and byte order."""
    raw = (value - register.offset) / register.scale
    try:
        data = struct.pack(_FORMATS[register.type], raw if register.type.startswith("float") else round(raw))
    except (struct.error, OverflowError) as exc:
        raise ValueError(f"{register.describe()}: {value} does not fit a {register.type} ({exc})") from None
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if source.word_order == "little":
        words.reverse()
    if source.byte_order == "little":
        words = [word[::-1] for word in words]
    return [int.from_bytes(word, "big") for word in words]


# --- DL/T 645 ----------------------------------------------------------------------------------


class _Dlt645Bus(_Bus):
    def __init__(self, bus: BusUrl, url: str) -> None:
        super().__init__(bus, url)
        self._address_of: dict[str, str] = {}
        # Per meter address, the value bytes of each data identifier it has a reading for.
        self._answers: dict[str, dict[int, bytes]] = {}
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    def add(self, device_id: str, source: PolledSource) -> None:
        assert isinstance(source, Dlt645Source)
        self._address_of[device_id] = source.address
        self._answers[source.address] = {}

    def update(self, device_id: str, values: dict[str, float]) -> None:
        answers = self._answers[self._address_of[device_id]]
        for di, quantity in _DLT645_READS.items():
            if quantity.key in values:
                answers[di] = _bcd(quantity, values[quantity.key])

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.bus.host, self.bus.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.close()  # the handler's read returns, and it ends
        if self._connections:
            await asyncio.wait(self._connections)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= MAX_CLIENTS:
            writer.close()
            return
        self._connections[task] = writer
        try:
            pending = b""
            while chunk := await reader.read(READ_BYTES):
                pending = (pending + chunk)[-MAX_PENDING_BYTES:]
                pending, answers = self._answer(pending)
                writer.writelines(answers)
                await writer.drain()
        except ConnectionError:
            pass  # the client went away; nothing to answer
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, pending: bytes) -> tuple[bytes, list[bytes]]:
        """The answers to the whole requests at the start of `pending`, and what is left of it."""
        answers = []
        while pending:
            try:
                size = frame_length(self.url, pending)
            except DecodeError:
                pending = pending[1:]  # noise on the line: look for the next frame start
                continue
            if size is None:
                break
            answer = self._answer_frame(pending[:size])
            if answer is not None:
                answers.append(answer)
            pending = pending[size:]
        return pending, answers

    def _answer_frame(self, frame: bytes) -> bytes | None:
        try:
            request = parse_frame(self.url, frame)
        except DecodeError:
            return None  # a garbled frame: no meter can tell it was for it
        answers = self._answers.get(request.address)
        # Only reads are simulated; a meter not on the line, or not wired yet, stays silent.
        if request.control != READ_DATA or len(request.data) != DI_SIZE or not answers:
            return None
        value = answers.get(int.from_bytes(request.data, "little"))
        if value is None:
            return encode_frame(request.address, READ_ERROR, bytes([NO_SUCH_DATA]))
        return encode_frame(request.address, READ_ANSWER, request.data + value)


def _bcd(quantity: Quantity, value: float) -> bytes:
    """`value` in the quantity's BCD format, lowest byte first (the frame adds the 0x33): its
    digits rounded to the format's decimals, the top bit of the highest byte the sign."""
    digits = f"{round(abs(value) * 10**quantity.decimals):0{2 * quantity.size}d}"
    negative = value < 0
    if len(digits) > 2 * quantity.size or (quantity.signed and digits[0] > "7") or (negative and not quantity.signed):
        raise ValueError(f"{quantity.name}: {value} does not fit {quantity.size} BCD bytes with "
                         f"{quantity.decimals} decimals")
    coded = bytearray(bytes.fromhex(digits)[::-1])
    if negative:
        coded[-1] |= 0x80
    return bytes(coded)
