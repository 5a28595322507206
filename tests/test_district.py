"""A district on real parts: three `facility-gateway district` replicas share 30 schools on
one PostgreSQL, a Mosquitto broker and VictoriaMetrics, while the schools publish numbered
meter readings. Each replica answers for every school, passing on what another runs. One replica is killed (SIGKILL): the survivors own its schools again within
the lease's time, and not one reading is lost, in PostgreSQL nor in VictoriaMetrics. A leak
that began before the kill and goes on after it is raised once and its notice sent once.
Started again, the replica gets its share back."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway import config
from gateway.storage.readings import open_readings
from gateway.storage.state import StateDatabase
from tests.receivers import HttpReceiver
from tests.services import DistrictReplica, Mosquitto, Steady, VictoriaMetrics, free_port, mqtt_client, wait_for

pytestmark = pytest.mark.integration

SCHOOLS = [f"district-{i:02d}" for i in range(30)]
LEASE_S = 8.0
T0 = 1_764_000_000  # readings' own time, seconds
EVERY_S = 0.1  # each school publishes a reading this often (30 schools: 300 a second)


def school_files(folder: Path, mosquitto: Mosquitto, vm: VictoriaMetrics, hook: HttpReceiver) -> None:
    folder.mkdir()
    for i, school in enumerate(SCHOOLS):
        site: dict[str, Any] = {
            "id": school, "name": f"第{i + 1}小学",
            "buildings": [{"id": "main", "name": "教学楼",
                           "rooms": [{"id": "kitchen", "name": "厨房", "type": "kitchen"}]}],
            "devices": [{"id": "tap", "kind": "water_meter", "room": "kitchen"},
                        {"id": "floor", "kind": "leak_sensor", "room": "kitchen", "name": "厨房地面"}],
            "notifications": {"channels": [{"id": "office", "type": "webhook", "url": hook.url}]},
            "mqtt": {"url": mosquitto.url},
            "influxdb": {"url": vm.url, "token": "district", "org": "district", "bucket": "facility"},
            "auth": {"public_read": True},
        }
        (folder / f"{school}.yaml").write_text(yaml.safe_dump(site, allow_unicode=True), encoding="utf-8")


def readings(n: int) -> list[tuple[str, str]]:
    """Every school's water meter: its n-th reading, numbered by its volume."""
    return [(f"facility/{school}/tap/telemetry", json.dumps({"ts": T0 + 60 * n, "volume_m3": float(n)}))
            for school in SCHOOLS]


def leak(mosquitto: Mosquitto, school: str, at_n: int) -> None:
    with mqtt_client(mosquitto, f"district-leak-{school}") as (client, _):
        client.publish(f"facility/{school}/floor/telemetry", json.dumps({"ts": T0 + 60 * at_n, "leak": True}),
                       qos=1).wait_for_publish(5)


@pytest.fixture
def district(tmp_path: Path, mosquitto: Mosquitto, victoria_metrics: VictoriaMetrics, postgres_state: str,
             ) -> Iterator[tuple[list[DistrictReplica], HttpReceiver, Path]]:
    hook = HttpReceiver()
    school_files(tmp_path / "schools", mosquitto, victoria_metrics, hook)
    replicas = [DistrictReplica(tmp_path / f"data-{name}", free_port(), tmp_path / f"{name}.log",
                                sites=tmp_path / "schools", state_url=postgres_state, name=name, lease_s=LEASE_S)
                for name in ("r1", "r2", "r3")]
    with contextlib.ExitStack() as stack:  # each is stopped, whatever another's stop raises
        stack.callback(hook.close)
        for r in replicas:
            stack.callback(r.client.close)
            stack.callback(r.stop)
        yield replicas, hook, tmp_path / "schools"


def owners(replicas: list[DistrictReplica]) -> Counter[str]:
    return Counter(school for r in replicas for school in r.owned())


def test_a_replica_killed_under_load_loses_no_reading_and_raises_a_spanning_leak_once(
        district: tuple[list[DistrictReplica], HttpReceiver, Path], mosquitto: Mosquitto,
        victoria_metrics: VictoriaMetrics, postgres_state: str) -> None:
    replicas, hook, schools = district
    for r in replicas:
        r.spawn()
    for r in replicas:
        r.wait_ready(60)
    wait_for(lambda: owners(replicas) == Counter(SCHOOLS), timeout=60)  # each school run, and by one replica
    wait_for(lambda: all(len(r.owned()) == 10 for r in replicas), timeout=30)  # the fair share, once all are up
    # Any replica answers for any school: a school another runs is passed on to it, the live
    # stream included; an unknown school is 404 everywhere.
    school = sorted(replicas[1].owned())[0]
    runs, via = replicas[1].client, replicas[2].client
    assert via.get(f"/sites/{school}/api/v1/alerts").json() == runs.get(f"/sites/{school}/api/v1/alerts").json()
    assert via.get(f"/sites/{school}/api/v1/site").json()["id"] == school
    with via.stream("GET", f"/sites/{school}/api/v1/live", headers={"Accept": "text/event-stream"}) as live:
        assert live.status_code == 200
        lines = live.iter_lines()
        assert "event: hello" in [next(lines) for _ in range(3)]
    assert via.get("/sites/no-such-school/api/v1/site").status_code == 404
    victim, survivors = replicas[0], replicas[1:]
    doomed = victim.owned()
    leaking = sorted(doomed)[0]
    with Steady(mosquitto, "district-publisher", readings, EVERY_S) as publisher:
        wait_for(lambda: publisher.sent >= 20, timeout=30)
        leak(mosquitto, leaking, publisher.sent)
        victim.kill()
        died = time.monotonic()
        wait_for(lambda: set(owners(survivors)) == set(SCHOOLS), timeout=LEASE_S * 4 + 30)
        took_over = time.monotonic() - died
        after = publisher.sent + 10  # and a second of readings under the new owners
        wait_for(lambda: publisher.sent >= after, timeout=60)
    sent = publisher.sent
    assert took_over <= LEASE_S * 2 + 10, took_over

    # The leak began under the dead replica and goes on under its successor: one alert, one notice.
    def notices() -> set[str]:
        # A replica killed while it sends leaves the receiver a request cut short: not a notice.
        whole = [r for r in hook.requests if r.body.startswith(b"{") and r.body.endswith(b"}")]
        return {r.headers["idempotency-key"] for r in whole
                if r.json()["transition"] == "raised" and r.json()["alert"]["rule"] == "leak_detected"
                and leaking in json.dumps(r.json(), ensure_ascii=False)}

    wait_for(lambda: len(notices()) >= 1, timeout=20)
    owner = next(r for r in survivors if leaking in r.owned())
    alerts = owner.client.get(f"/sites/{leaking}/api/v1/alerts").json()
    assert [a["device_id"] for a in alerts if a["rule"] == "leak_detected"] == ["floor"]

    # Back again: what the killed replica had taken and not yet written (its spool) is written
    # first; then it gets its share, the others give theirs up.
    victim.spawn()
    victim.wait_ready(60)
    wait_for(lambda: all(len(r.owned()) == 10 for r in replicas), timeout=LEASE_S * 6 + 30)
    assert owners(replicas) == Counter(SCHOOLS)
    assert len(notices()) == 1

    db = StateDatabase(postgres_state)
    try:
        def stored(school: str) -> int:
            store = open_readings(config.load(schools / f"{school}.yaml"), db)  # the shared one, as replicas open it
            return len(store.points("tap", "volume_m3", T0 * 1000, (T0 + 60 * sent) * 1000, sent + 10))

        with contextlib.suppress(AssertionError):  # the assertion below says which school lacks what
            wait_for(lambda: all(stored(s) == sent for s in SCHOOLS), timeout=30)
        assert {s: stored(s) for s in SCHOOLS} == dict.fromkeys(SCHOOLS, sent)
    finally:
        db.close()
    exported = {e["metric"]["site"]: len(e["values"])
                for e in victoria_metrics.export('water_meter_volume_m3{site=~"district-.*"}')}
    assert exported == dict.fromkeys(SCHOOLS, sent)
