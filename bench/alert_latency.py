"""Alert latency: from publishing the reading that crosses a threshold to the webhook
arriving at a local receiver, while the gateway ingests a steady background load.

Run: `.venv/bin/python -m bench.alert_latency [--rate 5000] [--alerts 200]`

1. Starts a real Mosquitto, an HTTP receiver (the webhook) and `facility-gateway run` (its
   own process) with the SQLite store and an InfluxDB sink on a real VictoriaMetrics. The
   site is closed all day, and a door's after-hours rule has no grace period: a door that
   opens raises an alert at once.
2. Background: four meters publish `--rate` messages per second in total, paced, through
   `mosquitto_pub -l` (C, so the publisher is not the bottleneck).
3. `--alerts` times over: the door opens (the clock starts just before the publish; the door's
   client has Nagle's algorithm off, as a sensor that sends once never waits on it), the
   webhook's `raised` notice arrives (the receiver notes the time), then the door closes and
   the `cleared` notice is awaited before the next round.
4. Reference, in the same run: the broker's own round trip for one message (publish →
   a subscriber in this process), under the same load.
5. Capacity, in the same run and before the background starts: the rate at which the gateway
   stores a burst of `--capacity` messages from 20 other meters (as `bench/ingest.py` does),
   so the background can be read as a share of what the gateway can take.

Prints p50/p99 of both, the background rate the gateway actually stored and its share of the
capacity. Figures only.
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import statistics
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest import services, stored_rate, write_payloads
from gateway.rules.doors import DOOR_AFTER_HOURS
from tests.receivers import HttpReceiver
from tests.services import accounting, free_port, gateway_process, require_binary

SITE = "bench"
METERS = 4
CAPACITY_METERS = 20  # m000…m019, bench/ingest.py's meters
DOOR_TOPIC = f"facility/{SITE}/door/telemetry"
WAIT_S = 10.0


def site_file(directory: Path, mqtt_port: int, vm_url: str, api_port: int, hook: str) -> Path:
    site = {
        "id": SITE,
        "name": "基准测试 / benchmark",
        "opening_hours": {},  # closed every day
        "buildings": [{"id": "b", "name": "楼", "rooms": [{"id": "r", "name": "房间"}]}],
        "devices": [{"id": f"m{d}", "kind": "electricity_meter", "room": "r"} for d in range(METERS)]
        + [{"id": f"m{d:03d}", "kind": "electricity_meter", "room": "r"} for d in range(CAPACITY_METERS)]
        + [{"id": "door", "kind": "door", "room": "r", "name": "大门",
            "rules": {DOOR_AFTER_HOURS.id: {"grace_min": 0}}}],
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "client_id": "bench-gateway"},
        "influxdb": {"url": vm_url, "token": "bench", "org": "bench", "bucket": "bench"},
        "storage": {"data_dir": str(directory / "data")},
        "api": {"port": api_port},
        "notifications": {"channels": [{"id": "hook", "type": "webhook", "url": hook,
                                        "rules": [DOOR_AFTER_HOURS.id]}]},
    }
    path = directory / "site.yaml"
    path.write_text(yaml.safe_dump(site, allow_unicode=True))
    return path


class Background:
    """`rate` msg/s over METERS meters, each through its own `mosquitto_pub -l`, paced in
    10 ms slices by a thread that stamps every reading with the current time."""

    def __init__(self, port: int, rate: int) -> None:
        pub = require_binary("mosquitto_pub", "mosquitto-clients")
        self._procs = [
            subprocess.Popen([pub, "-h", "127.0.0.1", "-p", str(port), "-q", "1", "-l", "-i", f"bench-m{d}",
                              "-t", f"facility/{SITE}/m{d}/telemetry"], stdin=subprocess.PIPE)
            for d in range(METERS)
        ]
        self._per_slice = rate / METERS / 100
        self._stop = threading.Event()
        self.sent = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        energy = [1000.0] * METERS
        owed = 0.0
        next_slice = time.monotonic()
        while not self._stop.is_set():
            owed += self._per_slice
            n, owed = int(owed), owed - int(owed)
            now = time.time()
            for d, proc in enumerate(self._procs):
                lines = []
                for _ in range(n):
                    energy[d] += 0.0001
                    lines.append(json.dumps({"ts": now, "energy_kwh": round(energy[d], 4), "power_w": 1500.0}))
                assert proc.stdin is not None
                proc.stdin.write(("\n".join(lines) + "\n").encode() if lines else b"")
                proc.stdin.flush()
                self.sent += n
            next_slice += 0.01
            time.sleep(max(0.0, next_slice - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=30)


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {cuts[49] * 1000:.1f} ms, p99 {cuts[98] * 1000:.1f} ms, max {max(samples) * 1000:.1f} ms"


def door_client(port: int, echoes: queue.Queue[float]) -> mqtt.Client:
    """The door's client, running, with the arrival time of each of its echoes put in `echoes`."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-door")
    client.on_message = lambda c, u, m: echoes.put(time.monotonic()) if m.topic == "bench/echo" else None
    client.connect("127.0.0.1", port)
    # Nagle's algorithm off, as a sensor that sends once has no unacknowledged bytes for it to
    # wait on: this client sends the echo's PUBACK and the door's message back to back, and the
    # door's waited for the broker's delayed TCP acknowledgement (up to 40 ms).
    connection = client.socket()
    assert isinstance(connection, socket.socket)
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    client.subscribe("bench/echo", qos=1)
    return client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=5000, help="background messages per second")
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--capacity", type=int, default=40_000, help="messages in the burst that measures capacity")
    args = parser.parse_args()
    with services("bench-alert-") as (directory, broker, vm), HttpReceiver() as hook:
        api_port = free_port()
        config = site_file(directory, broker.port, vm.url, api_port, hook.url)
        with gateway_process(config, api_port, directory / "gateway.log") as api:
            burst = args.capacity - args.capacity % CAPACITY_METERS
            capacity = stored_rate(api, broker.port, write_payloads(directory, CAPACITY_METERS, burst), burst)
            echoes: queue.Queue[float] = queue.Queue()
            client = door_client(broker.port, echoes)
            background = Background(broker.port, args.rate)
            time.sleep(2)  # let the load settle
            stored_before = accounting(api).stored("sqlite")
            started = time.monotonic()
            latencies: list[float] = []
            reference: list[float] = []
            try:
                for i in range(args.alerts):
                    sent = time.monotonic()
                    client.publish("bench/echo", b"x", qos=1)
                    reference.append(echoes.get(timeout=WAIT_S) - sent)
                    seen = len(hook.requests)
                    sent = time.monotonic()
                    client.publish(DOOR_TOPIC, json.dumps({"ts": time.time(), "open": True}), qos=1)
                    raised = hook.wait(seen + 1, WAIT_S)[seen]
                    assert raised.json()["transition"] == "raised", raised.json()
                    latencies.append(raised.at - sent)
                    client.publish(DOOR_TOPIC, json.dumps({"ts": time.time(), "open": False}), qos=1)
                    hook.wait(seen + 2, WAIT_S)
                    if i % 50 == 49:
                        print(f"  {i + 1} alerts")
            finally:
                elapsed = time.monotonic() - started
                background.stop()
                client.loop_stop()
                client.disconnect()
            stored = accounting(api).stored("sqlite") - stored_before
        print(f"capacity: the gateway stored a burst of {burst:,} messages at {capacity:,.0f} msg/s")
        print(f"background: {args.rate} msg/s offered over {METERS} meters, QoS 1; "
              f"gateway stored {stored / elapsed:,.0f} msg/s during the run, {stored / elapsed / capacity:.0%} "
              f"of its capacity")
        print(f"reference, broker round trip (publish → subscriber): {percentiles(reference)}")
        print(f"alert latency, publish → rules → webhook received ({len(latencies)} alerts): {percentiles(latencies)}")


if __name__ == "__main__":
    main()
