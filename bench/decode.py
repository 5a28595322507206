"""What translating a vendor's payload costs, next to our native JSON.

Run: `.venv/bin/python -m bench.decode [--messages N] [--runs R]`

Each format's real payloads go through `Ingestor.accept_mqtt` (MQTT topics) or
`Ingestor.accept_polled` (Modbus registers, DL/T 645 frames) into the ingest buffer: routing,
decoding, the kind's bounds, event time and counter checks, all in one thread, with no broker
and no spool, so the figure is the decode path alone. Native telemetry of an electricity meter
is the reference, measured in the same run, interleaved. Prints messages per second and the
ratio to native; figures only, nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import time
from collections.abc import Callable

from devices.vendors.dlt645 import Dlt645Source, encode_frame
from devices.vendors.modbus import ModbusSource
from gateway import config
from gateway.ingest.pipeline import IngestBuffer, Ingestor

SITE = """\
id: bench
name: Bench
buildings: [{id: b, name: B, rooms: [{id: r, name: R}]}]
devices:
  - {id: native, kind: electricity_meter, room: r}
  - {id: z2m, kind: door, room: r, source: {protocol: zigbee2mqtt, name: door}}
  - {id: tasmota, kind: electricity_meter, room: r, source: {protocol: tasmota, topic: plug}}
  - {id: shelly, kind: uv_lamp, room: r, source: {protocol: shelly, prefix: shellyplusplugs-bench}}
  - {id: sdm120, kind: electricity_meter, room: r,
     source: {protocol: modbus, url: "tcp://127.0.0.1:502", preset: sdm120}}
  - {id: dlt645, kind: electricity_meter, room: r,
     source: {protocol: dlt645, url: "tcp://127.0.0.1:4001", address: "000000000161"}}
"""
NOW_MS = 1_795_219_200_000
ANSWER = 0x91  # a normal answer to a read, DL/T 645-2007


def dlt645_answers(source: Dlt645Source) -> bytes:
    """The meter's answers to a poll, each value all ones in BCD (111.1 V, …)."""
    return b"".join(encode_frame(source.address, ANSWER, q.di.to_bytes(4, "little") + b"\x11" * q.size)
                    for q in source.read_plan())


def cases(site: config.SiteConfig, ingestor: Ingestor) -> dict[str, Callable[[int], None]]:
    sdm120, dlt645 = site.device("sdm120"), site.device("dlt645")
    modbus_source = sdm120.source if sdm120 else None
    dlt645_source = dlt645.source if dlt645 else None
    assert isinstance(modbus_source, ModbusSource)
    assert isinstance(dlt645_source, Dlt645Source)
    registers = b"".join(struct.pack(">f", 230.0 + i) for i in range(sum(r.count for r in modbus_source.plan()) // 2))
    frames = dlt645_answers(dlt645_source)
    tasmota = json.dumps({"Time": "2026-11-21T08:00:00", "ENERGY": {"Total": 12.5, "Power": 40, "Voltage": 230,
                                                                     "Current": 0.2}}).encode()
    shelly = json.dumps({"id": 0, "source": "timer", "output": True, "apower": 30.1, "voltage": 230.1,
                         "current": 0.13, "aenergy": {"total": 1234.5}, "temperature": {"tC": 40.1}}).encode()

    def native(i: int) -> None:
        payload = b'{"energy_kwh": %.2f, "power_w": 500.0}' % (100 + i * 0.01)
        ingestor.accept_mqtt("facility/bench/native/telemetry", payload, NOW_MS, None)

    return {
        "native JSON (reference)": native,
        "Zigbee2MQTT door": lambda i: ingestor.accept_mqtt("zigbee2mqtt/door", b'{"contact":true,"battery":90,'
                                                           b'"linkquality":120}', NOW_MS, None),
        "Tasmota SENSOR": lambda i: ingestor.accept_mqtt("tele/plug/SENSOR", tasmota, NOW_MS, None),
        "Shelly switch:0": lambda i: ingestor.accept_mqtt("shellyplusplugs-bench/status/switch:0", shelly, NOW_MS,
                                                          None),
        "Modbus SDM120 registers": lambda i: _polled(ingestor, "modbus", "sdm120", modbus_source, "registers",
                                                     registers),
        "DL/T 645 frames (4 answers)": lambda i: _polled(ingestor, "dlt645", "dlt645", dlt645_source, "frames",
                                                          frames),
    }


def _polled(ingestor: Ingestor, transport: str, device: str, source: ModbusSource | Dlt645Source, part: str,
            payload: bytes) -> None:
    rejected = ingestor.accept_polled(transport, device, source, part, payload, NOW_MS)
    assert rejected is None, rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    site = config.parse(SITE, "bench")
    rates: dict[str, list[float]] = {}
    for _ in range(args.runs):
        buffer = IngestBuffer(10**9, on_ready=lambda: None)
        ingestor = Ingestor(site, buffer)
        for name, accept in cases(site, ingestor).items():
            start = time.perf_counter()
            for i in range(args.messages):
                accept(i)
            rates.setdefault(name, []).append(args.messages / (time.perf_counter() - start))
        assert not buffer.take().rejections, "every payload decodes"
    reference = statistics.median(rates["native JSON (reference)"])
    print(f"{args.messages:,} messages per format, median of {args.runs} interleaved runs")
    print("| format | msg/s | ratio to native |\n|---|---|---|")
    for name, measured in rates.items():
        rate = statistics.median(measured)
        print(f"| {name} | {rate:,.0f} | {rate / reference:.2f} |")


if __name__ == "__main__":
    main()
