"""Every device kind: the convention it must follow, and its decoder on good and bad input;
and that no code outside `devices/` tells kinds apart by name."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any, Final, get_args

import pytest

from devices import kinds, meters
from devices.base import (
    ClosingCheck,
    ClosingCondition,
    DecodeError,
    DeviceKind,
    Metric,
    MetricType,
    Reason,
    SettingsRange,
    StateWords,
    Utility,
)
from gateway.rules.registry import specs
from simulators.model import BEHAVIOURS

RECEIVED_MS = 1_795_236_000_000

# One valid native payload per kind, with every optional field.
GOOD: dict[str, dict[str, Any]] = {
    "electricity_meter": {"energy_kwh": 1234.5, "power_w": 3200, "voltage_v": 229.8, "current_a": 14.1},
    "water_meter": {"volume_m3": 87.25, "flow_lpm": 12.5},
    "gas_meter": {"gas_m3": 1520.125, "gas_flow_m3h": 4.8},
    "heat_meter": {"heat_gj": 312.4567, "heat_kw": 85.5, "supply_c": 70.2, "return_c": 58.9},
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
            assert m.words is None
        else:
            # A state reads as two different words in each language, never as true/false.
            assert m.words is not None, f"{name}.{m.key} has words for its two values"
            words = m.words
            assert all((words.true_zh, words.false_zh, words.true_en, words.false_en))
            assert words.true_zh != words.false_zh
            assert words.true_en != words.false_en
        if m.allowed is not None:
            low, high = m.allowed.of(kind.settings.model_validate({}))
            assert low < high, f"{name}.{m.key}: the default allowed range is not empty"
    assert any(m.tile for m in kind.metrics if m.required), "a tile shows what the kind is for"
    kind.settings.model_validate({})  # every setting has a default
    # What it means at closing is declared (None: nothing; the field has no default), on a metric of its own.
    if kind.closing is not None:
        assert kind.metric(kind.closing.metric) is not None
    assert kind.simulation in BEHAVIOURS, f"{name}: the simulator has no behaviour {kind.simulation!r}"


# The rule whose threshold or window each closing condition reads: it must apply to the kind,
# or the board would never list (or never excuse) the kind's devices.
CONDITION_RULES: Final = {
    ClosingCondition.TRUE: None,
    ClosingCondition.TRUE_UNLESS_SCHEDULED: "uv_not_run",
    ClosingCondition.ABOVE_FLOW_THRESHOLD: "water_leak",
    ClosingCondition.ABOVE_BASE_LOAD: "load_after_hours",
}


def test_every_closing_condition_reads_a_rule_that_applies_to_the_kind() -> None:
    assert set(CONDITION_RULES) == set(ClosingCondition)
    for kind in kinds().values():
        rule = None if kind.closing is None else CONDITION_RULES[kind.closing.condition]
        if rule is not None:
            assert specs()[rule].applies(kind.name), f"{kind.name}: {rule} does not apply to it"


def test_every_utility_has_one_meter_kind_and_every_behaviour_a_kind() -> None:
    assert set(meters()) == set(get_args(Utility))
    for kind, metric in meters().values():
        assert metric.type is MetricType.COUNTER
        assert kind.metric(metric.key) is metric
    # A behaviour no kind names is a model nobody can reach.
    assert {k.simulation for k in kinds().values()} == set(BEHAVIOURS)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Metric("open", "", MetricType.STATE, "门", "Door"), "has words"),
        (lambda: Metric("flow_lpm", "L/min", MetricType.GAUGE, "流量", "Flow",
                        words=StateWords("是", "否", "Yes", "No")), "has words"),
        (lambda: Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", utility="electricity"), "counter"),
        (lambda: Metric("energy_kwh", "kWh", MetricType.COUNTER, "电量", "Energy",
                        allowed=SettingsRange("min_c", "max_c")), "gauge"),
        (lambda: DeviceKind("lamp", "灯", "Lamp", (), closing=ClosingCheck("on", ClosingCondition.TRUE),
                            simulation="uv_session"), "not a metric"),
        (lambda: DeviceKind("meter", "表", "Meter",
                            (Metric("power_w", "W", MetricType.GAUGE, "功率", "Power", required=True),),
                            closing=ClosingCheck("power_w", ClosingCondition.TRUE), simulation="x"), "does not fit"),
        (lambda: DeviceKind("fridge", "冰箱", "Fridge",
                            (Metric("temperature_c", "°C", MetricType.GAUGE, "温度", "Temperature",
                                    allowed=SettingsRange("min_c", "max_c")),),
                            closing=None, simulation="cold_store"), "settings it does not have"),
    ],
)
def test_a_declaration_that_does_not_fit_fails_when_the_kind_is_imported(make: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        make()


# --------------------------------------------------------------------- no kind by name elsewhere

ROOT: Final = Path(__file__).parents[2]
SCANNED: Final = ("gateway", "simulators")
# Another piece of work is moving these onto a rule registry; they are not scanned until then.
NOT_YET: Final = ("gateway/rules/", "gateway/config/", "gateway/reports/safety_items.py")
# A string equal to a kind's name that does not name the kind.
# A safety-record category and its facts' tag; the closing board's and the sweep's checks by category.
NOT_A_KIND: Final = {("gateway/reports/safety_model.py", "door"), ("gateway/api/closing.py", "door"),
                     ("gateway/api/sweeps.py", "door"),
                     ("gateway/discovery/sightings.py", "door")}  # Home Assistant's device class


def _sources() -> list[tuple[str, ast.Module]]:
    out = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if not name.startswith(NOT_YET):
                out.append((name, ast.parse(path.read_text(encoding="utf-8"), name)))
    return out


def _is_kind(node: ast.expr) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == "kind") or (isinstance(node, ast.Name) and node.id == "kind")


def _names_a_kind(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Constant) and n.value in kinds() for n in ast.walk(node))


def _kind_comparisons(tree: ast.Module) -> list[int]:
    """Lines that compare a `.kind` with a kind's name (==, !=, in) or match one against it."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(_is_kind(o) for o in operands) and any(_names_a_kind(o) for o in operands if not _is_kind(o)):
                lines.append(node.lineno)
        elif isinstance(node, ast.Match) and _is_kind(node.subject):
            lines += [case.pattern.lineno for case in node.cases if _names_a_kind(case.pattern)]
    return lines


def _docstrings(tree: ast.Module) -> set[int]:
    return {id(body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and (body := node.body) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)}


@pytest.mark.parametrize(
    ("code", "found"),
    [
        ('if d.kind == "door":\n    pass', [1]),
        ('x = [d for d in ds if d.kind in ("uv_lamp", "door")]', [1]),
        ('ok = "water_meter" != device.kind', [1]),
        ('match device.kind:\n    case "leak_sensor":\n        pass\n    case other:\n        pass', [2]),
        ('if d.kind == wanted:\n    pass', []),
        ('if d.room == "door":\n    pass', []),
    ],
)
def test_the_scan_finds_a_kind_compared_by_name(code: str, found: list[int]) -> None:
    assert _kind_comparisons(ast.parse(code)) == found


def test_no_code_outside_devices_compares_a_kind_by_name() -> None:
    """A kind owns what is particular to it (presentation, closing check, simulation): code
    elsewhere reads the kind's declarations instead of testing which kind a device is."""
    sources = _sources()
    assert len(sources) > 30
    assert {f"{name}:{line}" for name, tree in sources for line in _kind_comparisons(tree)} == set()


def test_no_code_outside_devices_names_a_kind() -> None:
    """Stricter: no kind's name as a string at all (a dict keyed by kinds, a call with one),
    docstrings aside."""
    found = set()
    for name, tree in _sources():
        skip = _docstrings(tree)
        found |= {f"{name}:{n.lineno} {n.value}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in kinds() and id(n) not in skip
                  and (name, n.value) not in NOT_A_KIND}
    assert found == set()


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


def test_devices_import_neither_the_gateway_nor_the_simulator() -> None:
    """Kinds declare; the gateway and the simulator read the declarations, never the reverse."""
    found = set()
    for path in sorted((ROOT / "devices").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            found |= {f"{path.relative_to(ROOT)}: {n}" for n in names if n.split(".")[0] in ("gateway", "simulators")}
    assert found == set()
