"""What a polled bus is to its poller (gateway/ingest/poll.py), whichever protocol it speaks."""

from __future__ import annotations

from abc import ABC, abstractmethod

from devices.vendors import BusUrl
from devices.vendors.dlt645 import Dlt645Source
from devices.vendors.modbus import ModbusSource

PolledSource = ModbusSource | Dlt645Source


class PollError(Exception):
    """A meter that could not be read. `reason` labels the counter: `connection` (the bus
    cannot be reached), `timeout` (no complete answer in time) or `exception` (a Modbus
    exception response: the meter refused the request)."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class BusClient(ABC):
    """One bus's connection, opened on demand and closed after any failure."""

    def __init__(self, bus: BusUrl, where: str) -> None:
        self.bus = bus
        self.where = where

    @abstractmethod
    async def read(self, device_id: str, source: PolledSource) -> bytes:
        """The raw bytes of one poll of `source`, for `source.decode`."""

    @abstractmethod
    async def close(self) -> None: ...
