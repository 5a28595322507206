"""What each stage of the ingest path costs per message, each stage alone, in one process.

Run: `.venv/bin/python -m bench.stages [--messages N] [--batch B]`

The messages are `bench/ingest.py`'s: 20 electricity meters, one reading a second each, in
time order. Every stage is fed what the stage before it hands on, in batches of `--batch`
(what the spooler takes from the buffer under load):

- receive: a paho client (QoS 1, acknowledging a batch at a time from another thread, as the
  gateway's MQTT client does) takes the messages from a real Mosquitto, published by
  `mosquitto_pub` (C, its own process, so not counted here);
- decode and validate: `Ingestor.accept_mqtt` into the ingest buffer;
- spool: `Spool.append` (one durable transaction a batch) and the newest readings into the
  state store, then per sink `Spool.read` and `Spool.advance`;
- the readings store (`SqliteStore.write`, rollups included), and the same readings into a
  bare table, so the difference is what the rollups cost;
- InfluxDB: `InfluxSink.write` to a real VictoriaMetrics;
- rules (`RuleEngine.sample`, the device states) and the live bus with one dashboard open.

Each stage prints µs per message of CPU time (this process's, so a fsync's wait is not in it)
and of wall time. The stages run one after another on an otherwise idle process; the gateway
runs them concurrently on two cores, so their sum is an upper bound on its per-message cost,
not its rate. Figures only; nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import queue
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest import SITE, T0, services, write_payloads
from devices.base import Event, Sample
from gateway import config
from gateway.clock import ManualClock
from gateway.counters import Counters
from gateway.device_state import DeviceStates
from gateway.ingest.mqtt import MqttClient
from gateway.ingest.pipeline import Batch, IngestBuffer, Ingestor
from gateway.live import LiveBus
from gateway.rules.engine import RuleEngine
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.sinks.influx import InfluxSink
from gateway.spool.store import Spool
from gateway.storage.latest import LatestReadings
from gateway.storage.sqlite import SqliteStore, connect
from gateway.storage.state import StateDatabase
from tests.services import require_binary

NOW_MS = (T0 + 3600) * 1000


def site(devices: int, mqtt_port: int, vm_url: str, directory: Path) -> config.SiteConfig:
    return config.parse(json.dumps({
        "id": SITE, "name": "基准测试 / benchmark",
        "buildings": [{"id": "b", "name": "楼", "rooms": [{"id": "r", "name": "房间"}]}],
        "devices": [{"id": f"m{d:03d}", "kind": "electricity_meter", "room": "r"} for d in range(devices)],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}"},
        "influxdb": {"url": vm_url, "token": "bench", "org": "bench", "bucket": "bench"},
        "storage": {"data_dir": str(directory / "data")},
    }), "bench")


class Stage:
    """CPU and wall time spent in one stage, over `messages`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cpu = self.wall = 0.0
        self.messages = 0

    @contextmanager
    def timed(self, messages: int) -> Iterator[None]:
        cpu, wall = time.process_time(), time.perf_counter()
        yield
        self.cpu += time.process_time() - cpu
        self.wall += time.perf_counter() - wall
        self.messages += messages

    def row(self) -> str:
        n = max(self.messages, 1)
        return f"| {self.name} | {self.cpu / n * 1e6:.1f} | {self.wall / n * 1e6:.1f} |"


def receive(port: int, files: list[Path], total: int, batch: int) -> tuple[Stage, list[tuple[str, bytes]]]:
    """The messages as paho hands them to the gateway's callback, acknowledged as the gateway
    does: a batch at a time, from another thread (the spooler's, after its commit)."""
    got: list[tuple[str, bytes]] = []
    acks: queue.Queue[list[int] | None] = queue.Queue()
    client = MqttClient(CallbackAPIVersion.VERSION2, client_id="bench-stages", clean_session=False,
                        manual_ack=True)
    waiting: list[int] = []

    def on_message(c: paho.Client, userdata: object, m: paho.MQTTMessage) -> None:
        got.append((m.topic, bytes(m.payload)))
        waiting.append(m.mid)
        if len(waiting) >= batch or len(got) == total:
            acks.put(waiting[:])
            waiting.clear()
        if len(got) == total:
            acks.put(None)

    def acknowledge() -> None:
        while (mids := acks.get()) is not None:
            client.ack_many(mids)

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(f"facility/{SITE}/+/telemetry", qos=1)
    client.loop_start()
    time.sleep(0.5)
    stage = Stage("receive (paho, QoS 1, acknowledged a batch at a time)")
    pub = require_binary("mosquitto_pub", "mosquitto-clients")
    acker = threading.Thread(target=acknowledge)
    acker.start()
    with stage.timed(total):
        procs = [subprocess.Popen([pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l", "-i", f"pub-{p.stem}",
                                   "-t", f"facility/{SITE}/{p.stem}/telemetry"], stdin=p.open("rb"))
                 for p in files]
        acker.join(600)
    for proc in procs:
        proc.wait()
    client.loop_stop()
    client.disconnect()
    return stage, got


def batches(ingestor: Ingestor, buffer: IngestBuffer, messages: list[tuple[str, bytes]], size: int,
            stage: Stage) -> list[Batch]:
    out = []
    for i in range(0, len(messages), size):
        chunk = messages[i:i + size]
        with stage.timed(len(chunk)):
            for topic, payload in chunk:
                ingestor.accept_mqtt(topic, payload, NOW_MS, None)
        out.append(buffer.take())
    return out


def bare_write(conn: sqlite3.Connection, series: dict[tuple[str, str], int], samples: list[Sample]) -> None:
    """The readings alone, as the store keys them (series numbered in order of first sight),
    committed as the store commits: what the store's write costs without its rollups."""
    conn.execute("BEGIN")
    conn.executemany("INSERT OR IGNORE INTO readings VALUES (?, ?, ?)",
                     [(series.setdefault((s.device_id, k), len(series)), s.ts_ms, v)
                      for s in samples for k, v in s.values.items()])
    conn.execute("COMMIT")


async def sinks(s: config.SiteConfig, directory: Path, taken: list[Batch]) -> list[Stage]:
    state = StateDatabase(f"sqlite:///{directory / 'state.db'}")
    spool = Spool(directory / "spool.db", ["sqlite", "influxdb"], max_messages=10**7, max_age_ms=10**12,
                  rejected_keep=100)
    latest = LatestReadings(state, SITE)
    store = SqliteStore(directory / "readings.db")
    assert s.influxdb is not None
    influx = InfluxSink(s.influxdb, s)
    await influx.start()
    calendar = SchoolCalendar(s)
    engine = RuleEngine(s, calendar, lambda finding, evidence: None)
    states = DeviceStates(s, ManualClock(datetime.fromtimestamp(NOW_MS / 1000, UTC)))
    live = LiveBus(s, Counters())
    stages = {name: Stage(name) for name in (
        "spool: append (durable commit)", "spool: newest readings to the state store", "spool: read, per sink",
        "spool: advance, per sink", "SQLite store: write, rollups included", "the same readings into a bare table",
        "InfluxDB: line protocol and HTTP write", "rules", "device states", "live bus (one dashboard open)")}
    bare = connect(directory / "bare.db", "CREATE TABLE readings (series_id INTEGER, ts INTEGER, value REAL, "
                   "PRIMARY KEY (series_id, ts)) WITHOUT ROWID;")
    bare_series: dict[tuple[str, str], int] = {}
    try:
        with live.subscribe():
            for batch in taken:
                n = len(batch.items)
                with stages["spool: append (durable commit)"].timed(n):
                    spool.append(batch.items, batch.rejections, batch.received)
                with stages["spool: newest readings to the state store"].timed(n):
                    latest.record(batch.items)
                with stages["rules"].timed(n):
                    for received_ms, item in batch.items:
                        if isinstance(item, Sample):
                            engine.sample(item, received_ms)
                with stages["device states"].timed(n):
                    for _, item in batch.items:
                        if isinstance(item, Sample):
                            states.update(item.device_id, item.ts_ms, item.values.items())
                with stages["live bus (one dashboard open)"].timed(n):
                    live.committed(batch.items)
                for sink in ("sqlite", "influxdb"):
                    with stages["spool: read, per sink"].timed(n):
                        rows = spool.read(sink, n)
                    samples = [r.item for r in rows if isinstance(r.item, Sample)]
                    events = [r.item for r in rows if isinstance(r.item, Event)]
                    if sink == "sqlite":
                        with stages["SQLite store: write, rollups included"].timed(n):
                            store.write(samples, events)
                        with stages["the same readings into a bare table"].timed(n):
                            bare_write(bare, bare_series, samples)
                    else:
                        with stages["InfluxDB: line protocol and HTTP write"].timed(n):
                            await influx.write(samples, events)
                    with stages["spool: advance, per sink"].timed(n):
                        spool.advance(sink, rows[0].seq, rows[-1].seq)
    finally:
        bare.close()
        await influx.close()
        store.close()
        spool.close()
        state.close()
    return list(stages.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    total = args.messages - args.messages % args.devices
    with services("bench-stages-") as (directory, broker, vm):
        s = site(args.devices, broker.port, vm.url, directory)
        files = write_payloads(directory, args.devices, total)
        received, messages = receive(broker.port, files, total, args.batch)
        buffer = IngestBuffer(10**9, on_ready=lambda: None)
        decoded = Stage("decode and validate")
        taken = batches(Ingestor(s, buffer), buffer, messages, args.batch, decoded)
        assert not any(b.rejections for b in taken), "every message decodes"
        rest = asyncio.run(sinks(s, directory, taken))
    print(f"{total:,} messages from {args.devices} meters, batches of {args.batch}; µs per message")
    print("| stage | CPU | wall |\n|---|---|---|")
    for stage in (received, decoded, *rest):
        print(stage.row())


if __name__ == "__main__":
    main()
