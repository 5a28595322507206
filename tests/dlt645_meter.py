"""DL/T 645-2007 meters for tests: an asyncio TCP server on 127.0.0.1 that behaves like a
transparent serial server with an RS-485 bus of meters behind it.

Written from the standard, not from `devices.vendors.dlt645`, and sharing no code with it, so
that a test of the codec against this bus checks the codec against a second reading of the
standard rather than against itself.

    async with MeterBus(EmulatedMeter("000012345678", energy_kwh=1234.56)) as bus:
        bus.meters["000012345678"].delay_s = 0.2       # faults can change at any time
        reader, writer = await asyncio.open_connection(bus.host, bus.port)

Like a real bus, the meters answer read requests (control code 0x11) for the data identifiers
in `FORMATS`, answer any other identifier with an error (0xD1, "no such data"), and stay silent
on frames that are garbled or addressed to no meter on the bus. The server keeps bounded
buffers and stops itself after `lifetime_s` even if a test never leaves the context.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Self

HOST: Final = "127.0.0.1"
LIFETIME_S: Final = 60.0
MAX_PENDING_BYTES: Final = 1024  # of a request not yet complete; older bytes are dropped
KEPT_REQUESTS: Final = 100  # requests remembered in `MeterBus.received`
SPLIT_PAUSE_S: Final = 0.01  # between the parts of a split answer, so they arrive apart
STOP_TIMEOUT_S: Final = 5.0

# Values as the standard codes them (appendix A): the field of EmulatedMeter, bytes, decimals
# and whether the top bit is a sign (notes to tables A.1 and A.3).
FORMATS: Final[dict[int, tuple[str, int, int, bool]]] = {
    0x00000000: ("energy_kwh", 4, 2, True),  # combined active total energy, XXXXXX.XX kWh
    0x00010000: ("energy_kwh", 4, 2, False),  # forward active total energy, XXXXXX.XX kWh
    0x02010100: ("voltage_v", 2, 1, False),  # phase A voltage, XXX.X V
    0x02020100: ("current_a", 3, 3, True),  # phase A current, XXX.XXX A
    0x02030000: ("power_kw", 3, 4, True),  # total active power, XX.XXXX kW
}
READ: Final = 0x11
ANSWER: Final = 0x91
ERROR_ANSWER: Final = 0xD1
OTHER_ERROR: Final = 0x01
NO_SUCH_DATA: Final = 0x02


def bcd(value: float, size: int, decimals: int, signed: bool) -> bytes:
    """`value` in `size` bytes of BCD, lowest byte first, as a meter sends it (before 0x33)."""
    digits = f"{round(abs(value) * 10**decimals):0{2 * size}d}"
    limit = "7" if signed else "9"  # the sign takes the top bit of the top digit
    if len(digits) > 2 * size or digits[0] > limit or (value < 0 and not signed):
        raise ValueError(f"{value} does not fit {size} bytes with {decimals} decimals")
    coded = bytearray(int(digits[i : i + 2], 16) for i in range(2 * size - 2, -2, -2))
    if value < 0:
        coded[-1] |= 0x80
    return bytes(coded)


def frame(address: str, control: int, data: bytes, wake_up_bytes: int = 4) -> bytes:
    """A whole frame: preamble, 68, address lowest byte first, 68, C, L, data + 0x33, CS, 16."""
    address_bytes = [int(address[i : i + 2], 16) for i in range(10, -2, -2)]
    inner = [0x68, *address_bytes, 0x68, control, len(data), *((b + 0x33) % 256 for b in data)]
    return bytes([0xFE] * wake_up_bytes + inner + [sum(inner) % 256, 0x16])


@dataclass
class EmulatedMeter:
    """One meter with values to report and fault switches a test may flip at any time."""

    address: str  # 12 digits, as on the nameplate
    energy_kwh: float = 0.0
    voltage_v: float = 0.0
    current_a: float = 0.0
    power_kw: float = 0.0
    unsupported: set[int] = field(default_factory=set)  # identifiers answered with "no such data"
    bad_checksum: bool = False
    silent: bool = False
    delay_s: float = 0.0
    split_into: int = 1  # answer in this many TCP writes
    wake_up_bytes: int = 4
    reads: int = 0  # read requests this meter received

    def answer(self, data: bytes) -> bytes:
        """The answer to a read request whose data field (0x33 removed) is `data`."""
        if len(data) != 4:  # a read of load records carries more; not emulated
            return frame(self.address, ERROR_ANSWER, bytes([OTHER_ERROR]), self.wake_up_bytes)
        di = int.from_bytes(data, "little")
        if di not in FORMATS or di in self.unsupported:
            return frame(self.address, ERROR_ANSWER, bytes([NO_SUCH_DATA]), self.wake_up_bytes)
        name, size, decimals, signed = FORMATS[di]
        value = bcd(getattr(self, name), size, decimals, signed)
        return frame(self.address, ANSWER, data + value, self.wake_up_bytes)


class MeterBus:
    """The serial server: `host` and `port` are set once the context is entered."""

    def __init__(self, *meters: EmulatedMeter, lifetime_s: float = LIFETIME_S) -> None:
        self.meters = {meter.address: meter for meter in meters}
        self.host = HOST
        self.port = 0
        self.received: deque[bytes] = deque(maxlen=KEPT_REQUESTS)
        self._lifetime_s = lifetime_s
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._timer = asyncio.get_running_loop().call_later(self._lifetime_s, self.stop)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            await self._server.wait_closed()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        """Stop listening and hang up on every client; handlers wake and return."""
        self._stopping.set()
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        pending = bytearray()
        try:
            while not self._stopping.is_set() and (chunk := await reader.read(256)):
                pending += chunk
                del pending[:-MAX_PENDING_BYTES]
                for request in take_frames(pending):
                    await self._answer(request, writer)
        except ConnectionError:
            pass  # the client hung up mid-answer
        finally:
            writer.close()
            self._writers.discard(writer)
            self._handlers.discard(task)

    async def _answer(self, request: bytes, writer: asyncio.StreamWriter) -> None:
        self.received.append(request)
        address = "".join(f"{b:02X}" for b in reversed(request[1:7]))
        meter = self.meters.get(address)
        if meter is None or request[8] != READ:
            return  # no meter of that address on the bus, or a command not emulated: silence
        meter.reads += 1
        if meter.silent:
            return
        answer = bytearray(meter.answer(bytes((b - 0x33) % 256 for b in request[10:-2])))
        if meter.bad_checksum:
            answer[-2] ^= 0xFF
        if meter.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), meter.delay_s)
        step = -(-len(answer) // max(meter.split_into, 1))
        for start in range(0, len(answer), step):
            if self._stopping.is_set():
                return
            if start > 0:
                await asyncio.sleep(SPLIT_PAUSE_S)
            writer.write(answer[start : start + step])
            await writer.drain()


def take_frames(pending: bytearray) -> list[bytes]:
    """Removes every complete frame with a good checksum from the front of `pending` and
    returns them. Like a meter, it hunts for 0x68 and drops whatever does not make a frame."""
    frames: list[bytes] = []
    while True:
        start = pending.find(0x68)
        if start < 0:
            pending.clear()
            return frames
        del pending[:start]
        if len(pending) < 10:
            return frames
        if pending[7] != 0x68:
            del pending[:1]  # a 0x68 inside garbage, not a frame start
            continue
        size = 12 + pending[9]
        if len(pending) < size:
            return frames
        candidate = bytes(pending[:size])
        if candidate[-1] == 0x16 and candidate[-2] == sum(candidate[:-2]) % 256:
            frames.append(candidate)
            del pending[:size]
        else:
            del pending[:1]
