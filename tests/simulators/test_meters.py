"""Simulated polled meters (simulators/meters.py) read by the gateway's own poll clients
(`ModbusBus`, `Dlt645Bus`) and decoded by the devices' sources: each answers with the values of
its device's last message, within float32 and the DL/T 645 formats' decimals. A meter without a
reading is silent; a DL/T 645 line answers only its own meters' reads and a few clients at once;
the servers stop with their connections closed (warnings are errors here)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta

import pytest

import simulators
from devices import kinds
from devices.vendors.dlt645 import (
    FORWARD_ENERGY,
    NO_SUCH_DATA,
    READ_ANSWER,
    READ_ERROR,
    Dlt645Source,
    Frame,
    frame_length,
    parse_frame,
    read_request,
)
from devices.vendors.modbus import PART as MODBUS_PART
from devices.vendors.modbus import ModbusSource
from gateway.config import Device, SiteConfig, load
from gateway.ingest.bus import BusClient, PollError
from gateway.ingest.modbus import ModbusBus
from gateway.ingest.poll import DLT645_PART, Dlt645Bus
from simulators.meters import MAX_CLIENTS, SimulatedMeters, on_free_ports
from simulators.model import SimMessage, SiteSimulation

SITE: SiteConfig = load(simulators.DEMO_SITE)
LUNCH = datetime(2026, 11, 23, 11, tzinfo=SITE.tz)  # the kitchen draws most
# DL/T 645 counts energy in hundredths of a kWh; the simulation writes thousandths.
DLT645_ROUNDING = {"energy_kwh": 0.005}
FLOAT32 = 1e-7  # relative


def polled(site: SiteConfig) -> list[Device]:
    return [d for d in site.devices if isinstance(d.source, ModbusSource | Dlt645Source)]


def meter_site(timeout_s: float | None = None) -> SiteConfig:
    """The demo site on free ports, its meters' timeouts shortened where a test waits for one."""
    site = on_free_ports(SITE)
    if timeout_s is None:
        return site
    devices = [d.model_copy(update={"source": d.source.model_copy(update={"timeout_s": timeout_s})})
               if d in polled(site) and d.source is not None else d for d in site.devices]
    return site.model_copy(update={"devices": devices})


async def poll(device: Device) -> dict[str, float]:
    """One poll by the gateway's client, decoded as the gateway decodes it."""
    source = device.source
    client: BusClient
    if isinstance(source, ModbusSource):
        client, part = ModbusBus(source.bus(), source.url, source.timeout_s), MODBUS_PART
    else:
        assert isinstance(source, Dlt645Source)
        client, part = Dlt645Bus(source.bus(), source.url), DLT645_PART
    try:
        payload = await client.read(device.id, source)
    finally:
        await client.close()
    decoded = source.decode(device.id, part, payload)
    return kinds()[device.kind].from_values(device.id, decoded, 0, payload).values


def native(device: Device, message: SimMessage) -> dict[str, float]:
    return kinds()[device.kind].decode(device.id, json.dumps(message.payload).encode(), 0).values


def test_on_free_ports_moves_the_polled_meters_only() -> None:
    site = on_free_ports(SITE)
    for before, after in zip(SITE.devices, site.devices, strict=True):
        if before in polled(SITE):
            assert isinstance(before.source, ModbusSource | Dlt645Source)
            assert isinstance(after.source, ModbusSource | Dlt645Source)
            assert after.source.model_dump(exclude={"url"}) == before.source.model_dump(exclude={"url"})
            assert after.source.bus().host == "127.0.0.1"
            assert after.source.url != before.source.url
        else:
            assert after == before
    urls = {d.source.url for d in polled(site) if isinstance(d.source, ModbusSource | Dlt645Source)}
    assert len(urls) == len(polled(SITE)) == 2


async def test_each_meter_answers_with_its_devices_last_message() -> None:
    site = meter_site()
    messages = list(SiteSimulation(site).messages(LUNCH, LUNCH + timedelta(minutes=5)))
    async with SimulatedMeters(site) as meters:
        for message in messages:
            if message.channel == "telemetry" and meters.serves(message.device_id):
                await meters.update(message)
        for device in polled(site):
            last = native(device, [m for m in messages if m.device_id == device.id][-1])
            got = await poll(device)
            assert got.keys() == last.keys()
            for key, value in last.items():
                if isinstance(device.source, ModbusSource):
                    assert got[key] == pytest.approx(value, rel=FLOAT32), (device.id, key)
                else:
                    assert got[key] == pytest.approx(value, abs=DLT645_ROUNDING.get(key, 1e-9)), (device.id, key)
    assert {d.id for d in polled(site)} == {"kitchen-power", "service-power"}
    assert not any(meters.serves(d.id) for d in site.devices if d not in polled(site))


async def test_a_bus_listens_from_its_first_reading() -> None:
    site = meter_site()
    async with SimulatedMeters(site):
        for device in polled(site):
            with pytest.raises(PollError) as failed:
                await poll(device)
            assert failed.value.reason == "connection", device.id


async def test_a_meter_is_silent_until_its_own_first_reading() -> None:
    site = meter_site(timeout_s=0.2)
    first = next(d for d in polled(site) if isinstance(d.source, ModbusSource))
    assert isinstance(first.source, ModbusSource)
    # A second meter on the same bus.
    second = first.model_copy(update={"id": "kitchen-power-2", "source": first.source.model_copy(update={"unit": 2})})
    site = site.model_copy(update={"devices": [*site.devices, second]})
    async with SimulatedMeters(site) as meters:
        await meters.update(SimMessage(LUNCH, first.id, "telemetry", {"energy_kwh": 1.5, "power_w": 2.0}))
        assert (await poll(first))["energy_kwh"] == 1.5
        with pytest.raises(PollError) as failed:
            await poll(second)
        assert failed.value.reason == "timeout"


async def test_a_value_its_format_cannot_hold_is_refused() -> None:
    site = meter_site()
    meter = next(d for d in polled(site) if isinstance(d.source, Dlt645Source))
    reading = SimMessage(LUNCH, meter.id, "telemetry", {"energy_kwh": 1e7, "power_w": 1.0})
    with pytest.raises(ValueError, match="does not fit"):
        await SimulatedMeters(site).update(reading)


async def test_the_dlt645_line_answers_only_its_meters_reads() -> None:
    site = meter_site()
    device = next(d for d in polled(site) if isinstance(d.source, Dlt645Source))
    source = device.source
    assert isinstance(source, Dlt645Source)
    reading = SimMessage(LUNCH, device.id, "telemetry", {"energy_kwh": 12345.678, "power_w": 2000.0,
                                                         "voltage_v": 231.0, "current_a": 3.04})
    async with SimulatedMeters(site) as meters:
        await meters.update(reading)
        reader, writer = await asyncio.open_connection(source.bus().host, source.bus().port)
        writer.write(b"\x00noise\x16" + read_request("000000000001", FORWARD_ENERGY.di)  # another meter's
                     + read_request(source.address, 0x04000401)  # an identifier it does not have
                     + read_request(source.address, FORWARD_ENERGY.di))
        answers = [await one_frame(reader) for _ in range(2)]
        writer.close()
        await writer.wait_closed()
    assert [(a.address, a.control) for a in answers] == [(source.address, READ_ERROR),
                                                          (source.address, READ_ANSWER)]
    assert answers[0].data == bytes([NO_SUCH_DATA])
    assert answers[1].data[:4] == FORWARD_ENERGY.di.to_bytes(4, "little")
    assert FORWARD_ENERGY.value(device.id, answers[1].data[4:], b"") == 12345.68


async def test_the_dlt645_line_takes_a_few_clients_and_hangs_up_on_the_rest() -> None:
    site = meter_site()
    device = next(d for d in polled(site) if isinstance(d.source, Dlt645Source))
    source = device.source
    assert isinstance(source, Dlt645Source)
    async with SimulatedMeters(site) as meters:
        await meters.update(SimMessage(LUNCH, device.id, "telemetry", {"energy_kwh": 1.5}))
        clients = [await asyncio.open_connection(source.bus().host, source.bus().port) for _ in range(MAX_CLIENTS)]
        reader, writer = await asyncio.open_connection(source.bus().host, source.bus().port)
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()
    # Leaving the context hung up on the others too.
    for reader, writer in clients:
        async with asyncio.timeout(5):
            assert await reader.read() == b""
        writer.close()
        await writer.wait_closed()


async def one_frame(reader: asyncio.StreamReader) -> Frame:
    buf = b""
    async with asyncio.timeout(5):
        while (size := frame_length("test", buf)) is None:
            buf += await reader.read(1)
    assert size == len(buf)
    return parse_frame("test", buf)
