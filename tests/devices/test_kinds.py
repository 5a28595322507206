"""Every device kind: the convention it must follow, and its decoder on good and bad input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devices import kinds
from devices.base import DecodeError, DeviceKind, MetricType, Reason

RECEIVED_MS = 1_795_236_000_000

# One valid native payload per kind, with every optional field.
GOOD: dict[str, dict[str, Any]] = {
    "electricity_meter": {"energy_kwh": 1234.5, "power_w": 3200, "voltage_v": 229.8, "current_a": 14.1},
    "water_meter": {"volume_m3": 87.25, "flow_lpm": 12.5},
    "uv_lamp": {"on": True, "power_w": 36.0, "lamp_hours": 412.5},
    "sample_fridge": {"temperature_c": 4.2, "door_open": False, "power_w": 85.0},
    "door": {"open": False},
    "leak_sensor": {"leak": False},
}


def test_every_kind_is_discovered() -> None:
    assert set(kinds()) == set(GOOD)


@pytest.mark.parametrize("name", sorted(GOOD))
def test_kind_follows_the_convention(name: str) -> None:
    kind = kinds()[name]
    assert isinstance(kind, DeviceKind)
    assert kind.name == name
    assert kind.label_zh
    assert kind.label_en
    keys = [m.key for m in kind.metrics]
    assert len(keys) == len(set(keys)), "metric keys are unique"
    assert any(m.required for m in kind.metrics), "a kind has at least one required metric"
    assert {"battery_pct", "rssi_dbm", "link_quality", "online"} <= set(keys)
    for m in kind.metrics:
        assert m.label_zh
        assert m.label_en
        if m.type is not MetricType.STATE:
            assert m.unit, f"{name}.{m.key} has a unit"
    kind.settings.model_validate({})  # every setting has a default


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_payload_decodes_every_field(name: str) -> None:
    payload = {**GOOD[name], "ts": "2026-11-21T08:00:00+08:00", "battery_pct": 88, "rssi_dbm": -71}
    sample = kinds()[name].decode("dev-1", json.dumps(payload).encode(), RECEIVED_MS)
    assert sample.device_id == "dev-1"
    assert sample.ts_ms == 1_795_219_200_000
    expected = {k: float(v) for k, v in payload.items() if k != "ts"}
    assert sample.values == expected


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        (None, RECEIVED_MS),
        (1_795_219_200, 1_795_219_200_000),
        (1_795_219_200.25, 1_795_219_200_250),
        (1_795_219_200_123, 1_795_219_200_123),  # milliseconds are recognised
        ("2026-11-21T00:00:00Z", 1_795_219_200_000),
        ("2026-11-21T08:00:00.5+08:00", 1_795_219_200_500),
    ],
)
def test_timestamp_forms(ts: object, expected_ms: int) -> None:
    payload: dict[str, object] = {"temperature_c": 3.0}
    if ts is not None:
        payload["ts"] = ts
    sample = kinds()["sample_fridge"].decode("f", json.dumps(payload).encode(), RECEIVED_MS)
    assert sample.ts_ms == expected_ms


@pytest.mark.parametrize(
    ("payload", "reason", "says"),
    [
        (b"not json", Reason.NOT_JSON, "Invalid JSON"),
        (b'{"temperature_c": 4', Reason.NOT_JSON, "Invalid JSON"),
        (b"[1, 2]", Reason.NOT_OBJECT, "object"),
        (b"{}", Reason.MISSING_FIELD, "temperature_c"),
        (b'{"temperature_c": "4.2"}', Reason.WRONG_TYPE, "temperature_c"),
        (b'{"temperature_c": 4.2, "door_open": 1}', Reason.WRONG_TYPE, "door_open"),
        (b'{"temperature_c": NaN}', Reason.NOT_FINITE, "finite"),
        (b'{"temperature_c": Infinity}', Reason.NOT_FINITE, "finite"),
        (b'{"temperature_c": 500}', Reason.OUT_OF_RANGE, "temperature_c"),
        (b'{"temperature_c": 4, "battery_pct": 140}', Reason.OUT_OF_RANGE, "battery_pct"),
        (b'{"temperature_c": 4, "ts": "2026-11-21T08:00:00"}', Reason.BAD_TIMESTAMP, "UTC offset"),
        (b'{"temperature_c": 4, "ts": "yesterday"}', Reason.BAD_TIMESTAMP, "ISO 8601"),
        (b'{"temperature_c": 4, "ts": -5}', Reason.BAD_TIMESTAMP, "Unix"),
    ],
)
def test_bad_payload_is_rejected_with_reason(payload: bytes, reason: Reason, says: str) -> None:
    with pytest.raises(DecodeError) as caught:
        kinds()["sample_fridge"].decode("fridge-1", payload, RECEIVED_MS)
    err = caught.value
    assert err.reason is reason
    assert err.device_id == "fridge-1"
    assert says in err.detail
    assert err.preview == payload.decode("utf-8", "backslashreplace")


def test_preview_is_short_and_safe() -> None:
    payload = b'{"temperature_c": "' + b"\xff" * 500 + b'"}'
    with pytest.raises(DecodeError) as caught:
        kinds()["sample_fridge"].decode("f", payload, RECEIVED_MS)
    assert len(caught.value.preview) < 700
    assert caught.value.preview.endswith("…")


def test_door_access_event() -> None:
    door = kinds()["door"]
    event = door.decode_event(
        "gate", b'{"ts": 1795219200, "type": "access", "credential": "card:0042", "granted": true}', RECEIVED_MS
    )
    assert (event.device_id, event.ts_ms, event.type) == ("gate", 1_795_219_200_000, "access")
    assert event.data == {"credential": "card:0042", "granted": True}


@pytest.mark.parametrize(
    ("name", "payload", "reason"),
    [
        ("door", b'{"type": "forced"}', Reason.UNKNOWN_EVENT),
        ("door", b'{"type": "access", "granted": true}', Reason.MISSING_FIELD),
        ("door", b'{"credential": "x"}', Reason.MISSING_FIELD),
        ("water_meter", b'{"type": "access", "credential": "x", "granted": true}', Reason.UNKNOWN_EVENT),
        # A text that could end up in an alert's title and an e-mail's Subject is one line.
        *(("door", b'{"type": "access", "credential": "card:0043' + escape + b'X", "granted": true}',
           Reason.BAD_TEXT) for escape in (rb"\n", rb"\r", rb"\u0000", rb"\u0085", rb"\u2028")),
    ],
)
def test_bad_event_is_rejected(name: str, payload: bytes, reason: Reason) -> None:
    with pytest.raises(DecodeError) as caught:
        kinds()[name].decode_event("d", payload, RECEIVED_MS)
    assert caught.value.reason is reason
