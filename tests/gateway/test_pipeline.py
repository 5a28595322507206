"""The ingestor's checks beyond decoding: the clock-skew policy, counters that go back, and
what a batch carries to the spool (counts per transport, rejections, acknowledgements)."""

from __future__ import annotations

import json

import pytest

from devices.base import Reason, Sample
from gateway import config
from gateway.ingest.pipeline import Batch, BufferFull, GroupAck, IngestBuffer, Ingestor, run_acks
from gateway.storage.sqlite import Point

SITE = """\
id: kg
name: 测试幼儿园
buildings:
  - {id: main, name: 教学楼, rooms: [{id: plant, name: 配电房}]}
devices:
  - {id: meter, kind: electricity_meter, room: plant}
  - {id: water, kind: water_meter, room: plant}
storage: {retention_days: 30}
ingest: {max_clock_skew_s: 300}
"""
NOW_MS = 1_795_219_200_000  # the time of receipt in every test
DAY_MS = 86_400_000


@pytest.fixture
def ingest() -> tuple[Ingestor, IngestBuffer]:
    buffer = IngestBuffer(1000, on_ready=lambda: None)
    return Ingestor(config.parse(SITE, "site.yaml"), buffer), buffer


def send(ingestor: Ingestor, device: str, ts_ms: int, **values: float) -> Reason | None:
    payload = json.dumps({"ts": ts_ms, **values}).encode()
    error = ingestor.accept("http", device, "telemetry", payload, NOW_MS)
    return None if error is None else error.reason


def taken(buffer: IngestBuffer) -> Batch:
    return buffer.take()


def test_clock_skew_policy(ingest: tuple[Ingestor, IngestBuffer]) -> None:
    ingestor, buffer = ingest
    assert send(ingestor, "meter", NOW_MS + 300_000, energy_kwh=1) is None  # at the limit: a slow device clock
    assert send(ingestor, "meter", NOW_MS + 300_001, energy_kwh=1) is Reason.FUTURE_TIMESTAMP
    assert send(ingestor, "meter", NOW_MS - 30 * DAY_MS, energy_kwh=1) is None  # a device that buffered a month
    assert send(ingestor, "meter", NOW_MS - 30 * DAY_MS - 1, energy_kwh=1) is Reason.STALE_TIMESTAMP
    batch = taken(buffer)
    assert len(batch.items) == 2
    assert [r.reason for r in batch.rejections] == ["future_timestamp", "stale_timestamp"]
    assert "ahead of the time of receipt" in batch.rejections[0].detail
    assert batch.received == {"http": 4}


def test_a_meter_going_back_is_rejected_and_a_reset_is_not(ingest: tuple[Ingestor, IngestBuffer]) -> None:
    ingestor, buffer = ingest
    t = NOW_MS - DAY_MS
    assert send(ingestor, "meter", t, energy_kwh=1000.0) is None
    assert send(ingestor, "meter", t + 60_000, energy_kwh=999.9) is Reason.COUNTER_DECREASED
    assert send(ingestor, "meter", t + 120_000, energy_kwh=1000.0) is None  # no change is fine
    assert send(ingestor, "meter", t + 30_000, energy_kwh=500.0) is None  # late, older: nothing to compare
    assert send(ingestor, "meter", t + 180_000, energy_kwh=3.5) is None  # a reset (meter replaced): kept
    assert send(ingestor, "meter", t + 240_000, energy_kwh=3.6) is None  # … and counting from there
    assert send(ingestor, "water", t, volume_m3=2.0) is None  # each meter is its own
    batch = taken(buffer)
    assert [r.detail for r in batch.rejections] == ["energy_kwh went back from 1000 to 999.9"]
    kept = [item.values for _, item in batch.items if isinstance(item, Sample) and item.device_id == "meter"]
    assert [v["energy_kwh"] for v in kept] == [1000.0, 1000.0, 500.0, 3.5, 3.6]


def test_counters_seeded_from_the_store_are_checked_after_a_restart(ingest: tuple[Ingestor, IngestBuffer]) -> None:
    ingestor, _ = ingest
    ingestor.seed({"meter": {"energy_kwh": Point(NOW_MS - DAY_MS, 1000.0), "power_w": Point(NOW_MS - DAY_MS, 1.0)},
                   "gone": {"energy_kwh": Point(NOW_MS - DAY_MS, 1.0)}})  # no longer in the site file
    assert send(ingestor, "meter", NOW_MS, energy_kwh=990.0) is Reason.COUNTER_DECREASED


def test_acknowledgements_wait_for_the_batch(ingest: tuple[Ingestor, IngestBuffer]) -> None:
    ingestor, buffer = ingest
    acked: list[str] = []
    ingestor.accept_mqtt("facility/kg/meter/telemetry", b'{"energy_kwh": 5}', NOW_MS, lambda: acked.append("good"))
    ingestor.accept_mqtt("facility/kg/nobody/telemetry", b"{}", NOW_MS, lambda: acked.append("unknown"))
    ingestor.accept_mqtt("facility/kg/gateway/status", b"online", NOW_MS, lambda: acked.append("own status"))
    ingestor.accept_mqtt("facility/kg/meter", b"{}", NOW_MS, lambda: acked.append("bad topic"))
    assert acked == []  # nothing is acknowledged before the spool has it
    batch = taken(buffer)
    for ack in batch.acks:
        ack()
    assert acked == ["good", "unknown", "own status", "bad topic"]  # in the order received
    assert batch.received == {"mqtt": 3}  # the gateway's own status is not a reading
    assert [r.reason for r in batch.rejections] == ["unknown_device", "bad_topic"]


def test_neighbouring_grouped_acknowledgements_go_out_together_in_order() -> None:
    sent: list[object] = []

    class Sender:
        def __init__(self, name: str) -> None:
            self.name = name

        def many(self, keys: list[int]) -> None:
            sent.append((self.name, keys))

    a, b = Sender("a"), Sender("b")
    run_acks([GroupAck(a.many, 1), GroupAck(a.many, 2), lambda: sent.append("http"), GroupAck(a.many, 3),
              GroupAck(b.many, 4), GroupAck(b.many, 5), GroupAck(a.many, 6)])
    assert sent == [("a", [1, 2]), "http", ("a", [3]), ("b", [4, 5]), ("a", [6])]
    GroupAck(b.many, 7)()
    assert sent[-1] == ("b", [7])


def test_rejections_take_room_in_the_buffer_too() -> None:
    """A flood of bad input while the spool is stuck must not grow memory without bound."""
    buffer = IngestBuffer(100, on_ready=lambda: None)
    ingestor = Ingestor(config.parse(SITE, "site.yaml"), buffer)
    for _ in range(100):
        ingestor.accept("http", "nobody", "telemetry", b"{}", NOW_MS, timeout=0)
    with pytest.raises(BufferFull):
        ingestor.accept("http", "nobody", "telemetry", b"{}", NOW_MS, timeout=0)
    assert len(buffer.take().rejections) == 100
