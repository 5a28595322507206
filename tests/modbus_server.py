"""pymodbus's own Modbus server for tests, on a free loopback port.

pymodbus's `ModbusDeviceContext` adds 1 to the protocol address before it looks into a block
(see `tests/devices/test_modbus_map.py`), so blocks here are made at address 1: a list index is
then the protocol address.
"""

from __future__ import annotations

import os
import select
import threading
import tty
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from tests.services import HOST, free_port


def block(address: int, values: list[int]) -> ModbusSequentialDataBlock:
    """A pymodbus register block starting at `address` (a datastore address, see above)."""
    return ModbusSequentialDataBlock(address, values)  # type: ignore[no-untyped-call]  # unannotated in pymodbus 3.11


def unit(input_registers: list[int] | None = None, holding_registers: list[int] | None = None) -> ModbusDeviceContext:
    """One unit on the bus, its tables indexed by protocol address."""
    return ModbusDeviceContext(ir=block(1, input_registers or [0]), hr=block(1, holding_registers or [0]))


@asynccontextmanager
async def modbus_server(devices: dict[int, ModbusDeviceContext], framer: FramerType) -> AsyncIterator[int]:
    """pymodbus's TCP server (Modbus TCP or RTU frames, by `framer`) on a free loopback port,
    stopped on the way out. Yields the port."""
    port = free_port()
    context = ModbusServerContext(devices=devices, single=False)  # type: ignore[no-untyped-call]  # as above
    server = ModbusTcpServer(context, framer=framer, address=(HOST, port))
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]  # as above


class NullModem:
    """Two serial ports wired to each other, like a null-modem cable: two pseudo-terminals
    whose master ends a thread joins. Each end's path opens like any serial port (pyserial,
    pymodbus), so RTU on a local port is tested without hardware. Stops with the context."""

    def __init__(self) -> None:
        self._pairs = [os.openpty(), os.openpty()]
        for _, follower in self._pairs:
            tty.setraw(follower)  # no echo, no line discipline: bytes pass as they are
        self.ends = tuple(os.ttyname(follower) for _, follower in self._pairs)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._relay, name="null-modem", daemon=True)

    def __enter__(self) -> NullModem:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for leader, follower in self._pairs:
            os.close(leader)
            os.close(follower)

    def _relay(self) -> None:
        (a, _), (b, _) = self._pairs
        other = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select([a, b], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:  # no end opened yet (EIO on a pty without a reader)
                    continue
                os.write(other[fd], data)


@asynccontextmanager
async def modbus_serial_server(devices: dict[int, ModbusDeviceContext], port: str) -> AsyncIterator[None]:
    """pymodbus's RTU server on the serial port `port`, stopped on the way out."""
    context = ModbusServerContext(devices=devices, single=False)  # type: ignore[no-untyped-call]  # as above
    server = ModbusSerialServer(context, framer=FramerType.RTU, port=port, baudrate=9600)
    await server.serve_forever(background=True)
    try:
        yield
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]  # as above
