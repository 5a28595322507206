"""Two `facility-gateway run` processes for one site on a shared PostgreSQL state store and
a real Mosquitto: one runs the site, the other stands by. Killed (SIGKILL), the first one's
site is taken over within the lease's time, and the site's MQTT session (its client id comes
from the site) is resumed: a reading published while no gateway was connected is stored by
the new owner. A leak raised by the owner whose notice it could not send is raised once, and
its notice delivered once, by the replica that takes over. A standby asked to stop while
waiting stops at once."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.receivers import HttpReceiver, Reply
from tests.services import GatewayProcess, Mosquitto, free_port, mqtt_client, wait_for

pytestmark = pytest.mark.integration

LEASE_S = 2.0
T0 = 1_764_000_000  # readings' own time, seconds


def site_file(directory: Path, name: str, mosquitto: Mosquitto, state_url: str,
              hook: HttpReceiver | None = None) -> GatewayProcess:
    data = directory / f"data-{name}"
    port = free_port()
    site: dict[str, Any] = {
        "id": "kg", "name": "测试幼儿园",
        "buildings": [{"id": "main", "name": "教学楼", "rooms": [{"id": "kitchen", "name": "厨房", "type": "kitchen"}]}],
        "devices": [{"id": "tap", "kind": "water_meter", "room": "kitchen"},
                    {"id": "floor", "kind": "leak_sensor", "room": "kitchen", "name": "厨房地面"}],
        "notifications": {"channels": [{"id": "office", "type": "webhook", "url": hook.url}] if hook else []},
        "mqtt": {"url": mosquitto.url},
        "storage": {"data_dir": str(data), "state_url": state_url},
        "replica": {"id": f"replica-{name}", "lease_s": LEASE_S},
        "api": {"port": port},
        "auth": {"public_read": True},
    }
    config = directory / f"site-{name}.yaml"
    config.write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")
    return GatewayProcess(config, port, directory / f"gateway-{name}.log")


def stored_volumes(client: httpx.Client) -> list[float]:
    answer = client.get("/api/v1/devices/tap/readings",
                        params={"metric": "volume_m3", "start": "2025-11-01T00:00:00+08:00",
                                "end": "2025-12-01T00:00:00+08:00"})
    answer.raise_for_status()
    return [p["value"] for p in answer.json()[0]["points"]]


def test_a_standby_takes_the_site_over_when_its_owner_dies_and_resumes_its_mqtt_session(
        tmp_path: Path, mosquitto: Mosquitto, postgres_state: str) -> None:
    first = site_file(tmp_path, "a", mosquitto, postgres_state)
    standby = site_file(tmp_path, "b", mosquitto, postgres_state)
    first.start()
    standby.spawn()
    try:
        wait_for(lambda: "stands by" in standby.log_path.read_text(encoding="utf-8"), timeout=30)
        health = first.client.get("/health").json()["components"]["lease"]
        assert (health["state"], "replica-a" in health["detail"]) == ("ok", True)
        with mqtt_client(mosquitto, "failover-publisher") as (publisher, _):
            publisher.publish("facility/kg/tap/telemetry", json.dumps({"ts": T0, "volume_m3": 1.0}),
                              qos=1).wait_for_publish(5)
            wait_for(lambda: stored_volumes(first.client) == [1.0])
            first.kill()
            died = time.monotonic()
            # Nobody runs the site now: the broker keeps this for the site's session
            publisher.publish("facility/kg/tap/telemetry", json.dumps({"ts": T0 + 60, "volume_m3": 1.5}),
                              qos=1).wait_for_publish(5)
            standby.wait_ready(LEASE_S * 3 + 20)
            wait_for(lambda: 1.5 in stored_volumes(standby.client), timeout=10)
            took_over = time.monotonic() - died
        assert took_over < LEASE_S + 15, f"the site was run again {took_over:.1f} s after its owner died"
        lease = standby.client.get("/health").json()["components"]["lease"]
        assert lease["state"] == "ok"
        assert "replica-b" in lease["detail"]
        assert "epoch 2" in lease["detail"]
        metrics = standby.client.get("/metrics").text
        assert re.search(r"^facility_site_lease_epoch 2\.0$", metrics, re.MULTILINE)
        assert re.search(r"^facility_site_leases_held 1\.0$", metrics, re.MULTILINE)
    finally:
        standby.stop()
        first.stop()  # killed already, unless the test failed before
        for process in (first, standby):
            process.client.close()


def test_a_standby_asked_to_stop_stops_at_once(tmp_path: Path, mosquitto: Mosquitto, postgres_state: str) -> None:
    first = site_file(tmp_path, "a", mosquitto, postgres_state)
    standby = site_file(tmp_path, "b", mosquitto, postgres_state)
    first.start()
    try:
        standby.spawn()
        wait_for(lambda: "stands by" in standby.log_path.read_text(encoding="utf-8"), timeout=30)
        asked = time.monotonic()
        standby.interrupt()
        code = standby.wait(10)
        assert time.monotonic() - asked < 5
        assert code in (0, 130)  # a clean stop, as for Ctrl-C
        log_text = standby.log_path.read_text(encoding="utf-8")
        assert "asked to stop while standing by for site kg: it never ran the site" in log_text
        assert "Traceback" not in log_text
    finally:
        first.stop()
        for process in (first, standby):
            process.client.close()


def test_a_notice_the_owner_could_not_send_is_sent_once_by_the_replica_that_takes_over(
        tmp_path: Path, mosquitto: Mosquitto, postgres_state: str) -> None:
    hook = HttpReceiver(default=Reply(503))  # the office's receiver is down
    first = site_file(tmp_path, "a", mosquitto, postgres_state, hook)
    standby = site_file(tmp_path, "b", mosquitto, postgres_state, hook)
    first.start()
    try:
        with mqtt_client(mosquitto, "failover-leak") as (publisher, _):
            publisher.publish("facility/kg/floor/telemetry", json.dumps({"ts": T0, "leak": True}),
                              qos=1).wait_for_publish(5)
        hook.wait(1)  # the owner raised it and tried to send it: refused
        standby.spawn()
        wait_for(lambda: "stands by" in standby.log_path.read_text(encoding="utf-8"), timeout=30)
        first.kill()
        back = time.monotonic()
        hook.default = Reply(200)  # the receiver is back: what arrives from now on is taken
        standby.wait_ready(LEASE_S * 3 + 20)
        wait_for(lambda: any(r.at >= back for r in hook.requests), timeout=20)
        time.sleep(2)  # nothing more arrives
        raised = [r for r in hook.requests if r.json()["alert"]["rule"] == "leak_detected"
                  and r.json()["transition"] == "raised"]
        keys = {r.headers["idempotency-key"] for r in raised}
        assert len(keys) == 1, keys  # one notice, however often it was tried
        delivered = [r for r in raised if r.at >= back]
        assert len(delivered) == 1, [r.at - back for r in raised]
        alerts = [a for a in standby.client.get("/api/v1/alerts").json() if a["rule"] == "leak_detected"]
        assert len(alerts) == 1  # raised once, by the owner; the standby knew it was open
    finally:
        standby.stop()
        first.stop()
        hook.close()
        for process in (first, standby):
            process.client.close()
