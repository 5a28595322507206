"""pymodbus's own Modbus server for tests, on a free loopback port.

pymodbus's `ModbusDeviceContext` adds 1 to the protocol address before it looks into a block
(see `tests/devices/test_modbus_map.py`), so blocks here are made at address 1: a list index is
then the protocol address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.server import ModbusTcpServer

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
