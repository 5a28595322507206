"""A Modbus bus, through pymodbus: imported by a site that has Modbus meters (gateway/ingest/poll.py)."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Final

from pymodbus import FramerType, ModbusException
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse

from devices.vendors import BusUrl
from devices.vendors.modbus import ModbusSource
from gateway.ingest.bus import BusClient, PolledSource, PollError

# pymodbus logs every failed connect and every request left unanswered (as an error); the
# pollers log a meter's failing and recovering once each, with the meter's name, and count
# every failure.
logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)

# Modbus exception codes, as the protocol specification names them.
MODBUS_EXCEPTIONS: Final = {
    1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
    5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class ModbusBus(BusClient):
    def __init__(self, bus: BusUrl, where: str, timeout_s: float) -> None:
        super().__init__(bus, where)
        # No retries and no background reconnects: the next poll is the retry, and a bus
        # waiting on a meter that is gone holds up the others behind it.
        if bus.serial:
            self._client: AsyncModbusTcpClient | AsyncModbusSerialClient = AsyncModbusSerialClient(
                bus.device, framer=FramerType.RTU, baudrate=bus.baudrate, parity=bus.parity,
                stopbits=bus.stopbits, bytesize=bus.bytesize, timeout=timeout_s, retries=0, reconnect_delay=0,
            )
        else:
            framer = FramerType.RTU if bus.scheme == "rtu-over-tcp" else FramerType.SOCKET
            self._client = AsyncModbusTcpClient(bus.host, port=bus.port, framer=framer, timeout=timeout_s,
                                                retries=0, reconnect_delay=0)

    async def read(self, device_id: str, source: PolledSource) -> bytes:
        assert isinstance(source, ModbusSource)
        client = self._client
        if not client.connected and not await client.connect():
            raise PollError("connection", f"cannot connect to {self.where}")
        chunks = []
        for read in source.plan():
            what = (f"{'input' if read.function == 4 else 'holding'} registers "
                    f"0x{read.address:04X}–0x{read.end - 1:04X} of unit {source.unit}")
            call = client.read_input_registers if read.function == 4 else client.read_holding_registers
            try:
                answer = await call(read.address, count=read.count, device_id=source.unit)
            except ModbusException as exc:
                await self.close()
                task = asyncio.current_task()
                if task is not None and task.cancelling():  # pymodbus turns a cancellation into an error
                    raise asyncio.CancelledError from exc
                raise PollError("timeout", f"no answer reading {what} on {self.where} within "
                                           f"{source.timeout_s:g} s ({exc})") from None
            if isinstance(answer, ExceptionResponse) or answer.isError():
                code = answer.exception_code
                name = MODBUS_EXCEPTIONS.get(code, "unknown")
                raise PollError("exception", f"unit {source.unit} answered exception {code} ({name}) reading "
                                             f"{what}: check the register map and the unit id")
            if len(answer.registers) != read.count:
                await self.close()
                raise PollError("timeout", f"{len(answer.registers)} of {read.count} {what} answered")
            chunks.append(struct.pack(f">{read.count}H", *answer.registers))
        return b"".join(chunks)

    async def close(self) -> None:
        self._client.close()
