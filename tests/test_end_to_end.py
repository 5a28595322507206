"""End to end with real parts: the simulated kindergarten publishes over a real Mosquitto;
`facility-gateway run` (its own process) stores into SQLite and a real VictoriaMetrics
through the InfluxDB v2 write API; the API and VictoriaMetrics answer with the values sent."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devices import kinds
from devices.base import MetricType
from gateway import config
from simulators import DEMO_SITE
from simulators.model import SimMessage, SiteSimulation
from simulators.publish import run as publish
from tests.services import Mosquitto, VictoriaMetrics, accounting, free_port, gateway_process

pytestmark = pytest.mark.integration

START = datetime.fromisoformat("2026-11-16T07:00:00+08:00")  # a Monday: arrivals at the gate
END = START + timedelta(hours=2)


@pytest.fixture
def site_file(tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics) -> Path:
    data = yaml.safe_load(DEMO_SITE.read_text(encoding="utf-8"))
    # Every device native: this checks values and event times point for point at a publisher
    # speed that polled meters and receipt-stamped vendor formats cannot follow (those are
    # tests/simulators/test_vendors.py and test_meters.py).
    for device in data["devices"]:
        device.pop("source", None)
    data |= {
        "mqtt": {"url": mosquitto.url, "client_id": "e2e-gateway"},
        "influxdb": {"url": victoria_metrics.url, "token": "e2e", "org": "school", "bucket": "facility"},
        "storage": {"data_dir": str(tmp_path / "data")},
        "api": {"port": free_port()},
        "auth": {"public_read": True},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def gateway(site_file: Path, tmp_path: Path) -> Iterator[httpx.Client]:
    site = config.load(site_file)
    with gateway_process(site_file, site.api.port, tmp_path / "gateway.log") as client:
        yield client


def as_api_value(kind: str, key: str, value: Any) -> float | bool:
    metric = kinds()[kind].metric(key)
    assert metric is not None
    return bool(value) if metric.type is MetricType.STATE else float(value)


def test_simulated_site_end_to_end(
    site_file: Path, gateway: httpx.Client, victoria_metrics: VictoriaMetrics
) -> None:
    site = config.load(site_file)
    expected: list[SimMessage] = list(SiteSimulation(site, seed=1).messages(START, END))
    assert len(expected) > 2000

    sent = asyncio.run(publish(site, site.mqtt.url, speed=1e6, seed=1, start=START, until=END))
    assert sent == len(expected)

    deadline = time.monotonic() + 60
    while (m := accounting(gateway)).stored("sqlite") < sent or m.stored("influxdb") < sent:
        assert time.monotonic() < deadline, f"stored {m.stored('sqlite')} of {sent}"
        time.sleep(0.2)
    assert not re.search(r'^facility_messages_rejected_total\{.*\} [1-9]', gateway.get("/metrics").text, re.M)

    kind_of = {d.id: d.kind for d in site.devices}
    telemetry = [m for m in expected if m.channel == "telemetry"]

    # every device shows the last values it sent, and when
    devices = {d["id"]: d for d in gateway.get("/api/v1/devices").json()}
    assert set(devices) == set(kind_of)
    for device_id, kind in kind_of.items():
        last = [m for m in telemetry if m.device_id == device_id][-1]
        want = {k: as_api_value(kind, k, v) for k, v in last.payload.items() if k != "ts"}
        assert devices[device_id]["last_values"] == want, device_id
        assert datetime.fromisoformat(devices[device_id]["last_seen"]) == last.ts

    # the fridge's whole temperature history, from SQLite through the API
    fridge = next(d.id for d in site.devices if d.kind == "sample_fridge")
    sent_temps = [(m.ts, m.payload["temperature_c"]) for m in telemetry if m.device_id == fridge]
    series = gateway.get(f"/api/v1/devices/{fridge}/readings", params={
        "metric": "temperature_c", "start": START.isoformat(), "end": END.isoformat()}).json()
    assert [(datetime.fromisoformat(p["ts"]), p["value"]) for p in series[0]["points"]] == sent_temps

    # … and from VictoriaMetrics, which got it as line protocol
    exported = victoria_metrics.export(f'sample_fridge_temperature_c{{device="{fridge}"}}')
    assert len(exported) == 1
    assert exported[0]["metric"]["site"] == site.id
    assert exported[0]["metric"]["room"] == site.device(fridge).room  # type: ignore[union-attr]
    vm_points = list(zip(exported[0]["timestamps"], exported[0]["values"], strict=True))
    assert vm_points == [(int(ts.timestamp() * 1000), t) for ts, t in sent_temps]

    # every electricity meter's energy total arrived in VictoriaMetrics, point for point
    for meter in (d.id for d in site.devices if d.kind == "electricity_meter"):
        sent_energy = [m.payload["energy_kwh"] for m in telemetry if m.device_id == meter]
        got = victoria_metrics.export(f'electricity_meter_energy_kwh{{device="{meter}"}}')
        assert got[0]["values"] == sent_energy, meter

    # the gate's access events
    gate_events = [m for m in expected if m.channel == "event"]
    assert gate_events, "a Monday morning has arrivals"
    for door in {m.device_id for m in gate_events}:
        events = gateway.get(f"/api/v1/devices/{door}/events", params={
            "start": START.isoformat(), "end": END.isoformat(), "limit": 10000}).json()
        mine = [m for m in gate_events if m.device_id == door]
        assert len(events) == len(mine)
        assert {e["data"]["credential"] for e in events} == {m.payload["credential"] for m in mine}
