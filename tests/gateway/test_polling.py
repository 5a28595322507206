"""Polled meters in a running gateway: Modbus meters on pymodbus's own server (Modbus TCP, and
RTU frames through a serial server) and DL/T 645 meters on the emulator written from the
standard, read on their intervals, into the store; and every way a poll can fail, each with
its reason, its counter and its health, while the other meters on the bus go on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.framer import FramerType

from gateway import config
from gateway.clock import SystemClock
from gateway.runtime import Gateway
from tests.dlt645_meter import EmulatedMeter, MeterBus
from tests.modbus_server import NullModem, modbus_serial_server, modbus_server, unit
from tests.services import HOST, free_port, until

pytestmark = pytest.mark.integration

INTERVAL_S = 0.3
FLOAT32 = AsyncModbusTcpClient.DATATYPE.FLOAT32
SDM120 = {0x0000: 230.5, 0x0006: 4.25, 0x000C: 950.0, 0x0048: 1234.5}  # V, A, W, kWh (exact in float32)


def sdm120_registers(values: dict[int, float]) -> list[int]:
    image = [0] * 0x50
    for address, value in values.items():
        image[address:address + 2] = AsyncModbusTcpClient.convert_to_registers(value, FLOAT32)
    return image


def site(data_dir: Path, devices: str) -> config.SiteConfig:
    return config.parse(f"""\
id: poll-kg
name: 测试幼儿园
buildings:
  - id: main
    name: 综合楼
    rooms: [{{id: plant, name: 配电房, type: plant}}]
devices:
{devices}
storage: {{data_dir: "{data_dir}"}}
""", "site.yaml")


@asynccontextmanager
async def dead_line() -> AsyncIterator[int]:
    """A serial server whose line is dead: it takes every request and answers none. Yields its port."""
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(256):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, HOST, 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def latest(gw: Gateway, device_id: str) -> dict[str, float]:
    return {k: p.value for k, p in gw.states.get(device_id).latest.items()}


def errors(gw: Gateway, device_id: str, reason: str) -> float:
    value = gw.counters.registry.get_sample_value("facility_poll_errors_total", {"device": device_id,
                                                                                   "reason": reason})
    return value or 0.0


async def test_meters_of_every_protocol_are_read_on_their_interval(tmp_path: Path) -> None:
    # Two Modbus units behind one serial server speaking RTU frames (one bus, read in turn), an
    # SDM120 on Modbus TCP, and two DL/T 645 meters on one RS-485 bus behind a TCP serial server.
    generic = [0] * 0x40
    generic[0x20:0x22] = AsyncModbusTcpClient.convert_to_registers(123456, AsyncModbusTcpClient.DATATYPE.UINT32,
                                                                   word_order="little")
    generic[0x10] = 0xFF9C  # -100 as an int16
    rtu_units = {1: unit(sdm120_registers(SDM120)), 2: unit(holding_registers=generic)}
    meters = MeterBus(EmulatedMeter("000000000161", energy_kwh=8765.43, voltage_v=229.9, current_a=3.125,
                                    power_kw=0.7188),
                      EmulatedMeter("000000000162", energy_kwh=12.5, voltage_v=231.0, current_a=0.5, power_kw=0.115))
    tcp_units = {7: unit(sdm120_registers({**SDM120, 0x0048: 42.0}))}
    async with modbus_server(rtu_units, FramerType.RTU) as rtu_port, \
            modbus_server(tcp_units, FramerType.SOCKET) as tcp_port, meters:
        the_site = site(tmp_path, f"""\
  - {{id: rtu-sdm120, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "rtu-over-tcp://{HOST}:{rtu_port}", unit: 1, preset: sdm120}}}}
  - {{id: rtu-generic, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "rtu-over-tcp://{HOST}:{rtu_port}", unit: 2, word_order: little,
                registers: [{{key: energy_kwh, address: 0x20, function: holding, type: uint32, scale: 0.01}},
                            {{key: power_w, address: 0x10, function: holding, type: int16, scale: 10}}]}}}}
  - {{id: tcp-sdm120, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{tcp_port}", unit: 7, preset: sdm120}}}}
  - {{id: dlt-1, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000161"}}}}
  - {{id: dlt-2, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000162"}}}}
""")
        async with Gateway(the_site, SystemClock(), mqtt=False) as gw:
            assert len(gw.pollers) == 3, "one poller per bus"
            await until(lambda: all(latest(gw, d) for d in ("rtu-sdm120", "rtu-generic", "tcp-sdm120", "dlt-1",
                                                              "dlt-2")))
            assert latest(gw, "rtu-sdm120") == {"voltage_v": 230.5, "current_a": 4.25, "power_w": 950.0,
                                                "energy_kwh": 1234.5}
            assert latest(gw, "rtu-generic") == {"energy_kwh": pytest.approx(1234.56), "power_w": -1000.0}
            assert latest(gw, "tcp-sdm120")["energy_kwh"] == 42.0
            assert latest(gw, "dlt-1") == {"energy_kwh": 8765.43, "voltage_v": 229.9, "current_a": 3.125,
                                           "power_w": pytest.approx(718.8)}
            assert latest(gw, "dlt-2")["power_w"] == pytest.approx(115.0)
            # Polled again on the interval: the meters move on, and so do the stored values.
            rtu_units[1].setValues(4, 0x0048, AsyncModbusTcpClient.convert_to_registers(1240.0, FLOAT32))
            meters.meters["000000000162"].energy_kwh = 13.75
            await until(lambda: latest(gw, "rtu-sdm120")["energy_kwh"] == 1240.0
                        and latest(gw, "dlt-2")["energy_kwh"] == 13.75)
            await until(lambda: len(gw.store.points("tcp-sdm120", "energy_kwh", 0, 2**62, 10)) >= 3)
            assert {name: part["state"] for name, part in gw.health().items() if ":" in name
                    and not name.startswith("notify")} == {
                f"modbus:rtu-over-tcp://{HOST}:{rtu_port}": "ok", f"modbus:tcp://{HOST}:{tcp_port}": "ok",
                f"dlt645:tcp://{HOST}:{meters.port}": "ok"}
            assert gw.spool.rejections(10) == []
            dlt_2 = gw.site.device("dlt-2")
            assert dlt_2 is not None
            assert dlt_2.source is not None
            assert dlt_2.source.where() == f"tcp://{HOST}:{meters.port} address 000000000162"


async def test_every_failure_has_its_reason_and_the_rest_of_the_bus_goes_on(tmp_path: Path) -> None:
    closed_port = free_port()
    units = {1: unit(sdm120_registers(SDM120)), 2: unit(sdm120_registers(SDM120))}
    meters = MeterBus(EmulatedMeter("000000000001", energy_kwh=1.0, voltage_v=220.0, current_a=1.0, power_kw=0.2),
                      EmulatedMeter("000000000002", energy_kwh=2.0, voltage_v=220.0, current_a=1.0, power_kw=0.2),
                      EmulatedMeter("000000000003", energy_kwh=3.0, voltage_v=220.0, current_a=1.0, power_kw=0.2),
                      EmulatedMeter("000000000004", energy_kwh=4.0, voltage_v=220.0, current_a=1.0, power_kw=0.2))
    meters.meters["000000000002"].silent = True
    meters.meters["000000000003"].bad_checksum = True
    meters.meters["000000000004"].unsupported = {0x02010100}  # no voltage
    # Bounded: a gateway that cannot stop while a poll waits (pymodbus turns the cancellation
    # into an error that the poller used to take for a failed poll) fails here instead of hanging.
    async with asyncio.timeout(60), dead_line() as silent_port, modbus_server(units, FramerType.SOCKET) as port, \
            meters:
        the_site = site(tmp_path, f"""\
  - {{id: good-modbus, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{port}", unit: 1, preset: sdm120}}}}
  - {{id: wrong-map, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{port}", unit: 2,
                registers: [{{key: energy_kwh, address: 0x0200}}]}}}}
  - {{id: missing-unit, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{port}", unit: 9, preset: sdm120}}}}
  - {{id: no-answer, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{silent_port}", preset: sdm120, timeout_s: 0.3}}}}
  - {{id: no-server, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "tcp://{HOST}:{closed_port}", preset: sdm120}}}}
  - {{id: good-dlt, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000001", timeout_s: 0.3}}}}
  - {{id: silent-dlt, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000002", timeout_s: 0.3}}}}
  - {{id: garbled-dlt, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000003", timeout_s: 0.3}}}}
  - {{id: partial-dlt, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: dlt645, url: "tcp://{HOST}:{meters.port}", address: "000000000004", timeout_s: 0.3}}}}
""")
        async with Gateway(the_site, SystemClock(), mqtt=False) as gw:
            def rejected(device: str) -> list[str]:
                return [r.detail for r in gw.spool.rejections(100) if r.device_id == device]

            await until(lambda: errors(gw, "wrong-map", "exception") >= 2 and errors(gw, "no-server", "connection") >= 2
                        and errors(gw, "no-answer", "timeout") >= 2 and errors(gw, "missing-unit", "exception") >= 2
                        and errors(gw, "silent-dlt", "timeout") >= 2 and len(rejected("garbled-dlt")) >= 2
                        and len(rejected("partial-dlt")) >= 2)
            # The meters that answer are read all along, between the failing ones on their bus.
            assert latest(gw, "good-modbus")["energy_kwh"] == 1234.5
            assert latest(gw, "good-dlt")["energy_kwh"] == 1.0
            for device in ("wrong-map", "missing-unit", "no-answer", "no-server", "silent-dlt", "garbled-dlt",
                           "partial-dlt"):
                assert latest(gw, device) == {}, device
            health = gw.health()
            modbus_bus = health[f"modbus:tcp://{HOST}:{port}"]
            assert modbus_bus["state"] == "down"
            assert "wrong-map: unit 2 answered exception 2 (illegal data address) reading input registers " \
                   "0x0200–0x0201 of unit 2: check the register map and the unit id" in modbus_bus["detail"]
            # No unit 9 behind this Modbus TCP gateway: it says so, as real gateways do.
            assert "missing-unit: unit 9 answered exception 11 (gateway target device failed to respond)" \
                in modbus_bus["detail"]
            # A serial server whose line is dead: connected, and nothing comes back.
            assert health[f"modbus:tcp://{HOST}:{silent_port}"]["detail"].startswith(
                "no-answer: no answer reading input registers 0x0000–0x000D of unit 1 on "
                f"tcp://{HOST}:{silent_port} within 0.3 s")
            assert "good-modbus" not in modbus_bus["detail"]
            assert health[f"modbus:tcp://{HOST}:{closed_port}"]["detail"] == \
                f"no-server: cannot connect to tcp://{HOST}:{closed_port}"
            assert "silent-dlt: meter 000000000002 on" in health[f"dlt645:tcp://{HOST}:{meters.port}"]["detail"]
            assert "no complete answer within 0.3 s" in health[f"dlt645:tcp://{HOST}:{meters.port}"]["detail"]
            # An answer that arrives but is wrong is a message, rejected with its reason and a preview.
            garbled = [r for r in gw.spool.rejections(100) if r.device_id == "garbled-dlt"]
            assert {r.reason for r in garbled} == {"bad_frame"}
            assert "checksum" in garbled[0].detail
            partial = [r for r in gw.spool.rejections(100) if r.device_id == "partial-dlt"]
            assert {r.reason for r in partial} == {"device_error"}
            assert "phase A voltage" in partial[0].detail or "02010100" in partial[0].detail
            assert {r.source for r in garbled + partial} == {"dlt645"}
            # The meter comes back: read again, and the bus is healthy again.
            meters.meters["000000000002"].silent = False
            await until(lambda: latest(gw, "silent-dlt").get("energy_kwh") == 2.0)


async def test_modbus_rtu_on_a_local_serial_port(tmp_path: Path) -> None:
    # A USB RS-485 adapter's port, here one end of a null modem with pymodbus's server on the other.
    with NullModem() as cable:
        async with modbus_serial_server({3: unit(sdm120_registers(SDM120))}, cable.ends[0]):
            the_site = site(tmp_path, f"""\
  - {{id: serial-sdm120, kind: electricity_meter, room: plant, interval_s: {INTERVAL_S},
      source: {{protocol: modbus, url: "serial://{cable.ends[1]}?baudrate=9600", unit: 3, preset: sdm120}}}}
""")
            async with Gateway(the_site, SystemClock(), mqtt=False) as gw:
                await until(lambda: bool(latest(gw, "serial-sdm120")))
                assert latest(gw, "serial-sdm120") == {"voltage_v": 230.5, "current_a": 4.25, "power_w": 950.0,
                                                       "energy_kwh": 1234.5}
                assert gw.health()[f"modbus:serial://{cable.ends[1]}?baudrate=9600"] == {"state": "ok"}
