import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config import SiteConfig, load
from simulators import faults
from simulators.faults import (
    Access,
    Battery,
    CounterReset,
    DoorHeldOpen,
    ExtraLoad,
    Fault,
    FridgeTemperature,
    LampOn,
    LampSkipped,
    Leak,
    Silence,
    inject,
)
from simulators.model import BEHAVIOURS, SimMessage, SiteSimulation

SITE: SiteConfig = load(Path(__file__).parents[2] / "simulators" / "kindergarten.yaml")
TZ = SITE.tz
MONDAY = datetime(2026, 11, 23, tzinfo=TZ)  # an open day
COUNTERS = ("energy_kwh", "volume_m3", "lamp_hours")


def at(hours: float, minutes: float = 0) -> datetime:
    """A time on MONDAY, local."""
    return MONDAY + timedelta(hours=hours, minutes=minutes)


@pytest.fixture(scope="module")
def base() -> list[SimMessage]:
    """The untouched stream from Monday midnight to 02:00 on Tuesday."""
    return list(SiteSimulation(SITE, seed=1).messages(MONDAY, MONDAY + timedelta(hours=26)))


def faulty(base: list[SimMessage], *faults: Fault) -> list[SimMessage]:
    out = list(inject(iter(base), faults, SITE))
    assert_sound(base, out, {f.device_id for f in faults})
    return out


def assert_sound(base: list[SimMessage], out: list[SimMessage], affected: set[str]) -> None:
    """Time order holds, counters run forward, and other devices are untouched."""
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(out))
    assert [m for m in out if m.device_id not in affected] == [m for m in base if m.device_id not in affected]
    for m in out:
        assert datetime.fromisoformat(str(m.payload["ts"])) == m.ts


def assert_monotonic(rows: list[tuple[datetime, dict[str, object]]]) -> None:
    for key in COUNTERS:
        values = [number(p, key) for _, p in rows if key in p]
        assert all(a <= b for a, b in itertools.pairwise(values)), key


def telemetry(messages: list[SimMessage], device_id: str) -> list[tuple[datetime, dict[str, object]]]:
    return [(m.ts, m.payload) for m in messages if m.device_id == device_id and m.channel == "telemetry"]


def pairs(
    base: list[SimMessage], out: list[SimMessage], device_id: str
) -> list[tuple[datetime, dict[str, object], dict[str, object]]]:
    """(ts, untouched payload, faulty payload) for each telemetry tick of the device."""
    before, after = telemetry(base, device_id), telemetry(out, device_id)
    assert [ts for ts, _ in before] == [ts for ts, _ in after]
    return [(ts, old, new) for (ts, old), (_, new) in zip(before, after, strict=True)]


def number(payload: dict[str, object], key: str) -> float:
    value = payload[key]
    assert isinstance(value, int | float)
    return float(value)


def test_leak_adds_flow_in_the_window_and_volume_for_ever_after(base: list[SimMessage]) -> None:
    start, end = at(2), at(3)  # at night, when nothing else flows
    out = faulty(base, Leak("teaching-water", start, end, lpm=2.0))
    rows = pairs(base, out, "teaching-water")
    for ts, old, new in rows:
        if ts < start:
            assert new == old
        elif ts < end:
            minutes = (ts - start).total_seconds() / 60
            assert number(new, "flow_lpm") == pytest.approx(number(old, "flow_lpm") + 2.0)
            assert number(new, "volume_m3") == pytest.approx(number(old, "volume_m3") + 2.0 * minutes / 1000)
        else:
            assert new["flow_lpm"] == old["flow_lpm"]
            assert number(new, "volume_m3") == pytest.approx(number(old, "volume_m3") + 0.12)
    assert_monotonic([(ts, new) for ts, _, new in rows])
    assert any(ts >= at(12) for ts, _, _ in rows)


def test_extra_load_adds_power_in_the_window_and_energy_for_ever_after(base: list[SimMessage]) -> None:
    start, end = at(19), at(21)
    out = faulty(base, ExtraLoad("kitchen-power", start, end, watts=2000))
    for ts, old, new in pairs(base, out, "kitchen-power"):
        if ts < start:
            assert new == old
        elif ts < end:
            hours = (ts - start).total_seconds() / 3600
            assert number(new, "power_w") == pytest.approx(number(old, "power_w") + 2000)
            assert number(new, "energy_kwh") == pytest.approx(number(old, "energy_kwh") + 2.0 * hours)
            assert number(new, "current_a") > number(old, "current_a")
        else:
            assert new["power_w"] == old["power_w"]
            assert number(new, "energy_kwh") == pytest.approx(number(old, "energy_kwh") + 4.0)
    assert_monotonic(telemetry(out, "kitchen-power"))


def test_fridge_temperature_holds_in_the_window_only(base: list[SimMessage]) -> None:
    start, end = at(13), at(13, 30)
    out = faulty(base, FridgeTemperature("sample-fridge", start, end, celsius=12.0))
    rows = pairs(base, out, "sample-fridge")
    inside = [new for ts, _, new in rows if start <= ts < end]
    assert len(inside) == 30
    assert all(p["temperature_c"] == 12.0 for p in inside)
    assert all(new == old for ts, old, new in rows if not start <= ts < end)
    assert all({**new, "temperature_c": old["temperature_c"]} == old for _, old, new in rows)


def test_a_skipped_lamp_is_off_all_day_and_misses_those_hours_after(base: list[SimMessage]) -> None:
    day_end = MONDAY + timedelta(days=1)
    before = telemetry(base, "uv-small-1")
    today = [p for ts, p in before if ts < day_end]
    assert any(p["on"] for p in today)
    ran_h = number(today[-1], "lamp_hours") - number(today[0], "lamp_hours")
    assert ran_h > 0.5  # a session lasts at least 30 min
    out = faulty(base, LampSkipped("uv-small-1", MONDAY.date()))
    for ts, old, new in pairs(base, out, "uv-small-1"):
        if ts < day_end:
            assert new["on"] is False
            assert new["power_w"] == 0.0
            assert new["lamp_hours"] == today[0]["lamp_hours"]
        else:
            assert new["on"] == old["on"]
            assert number(new, "lamp_hours") == pytest.approx(number(old, "lamp_hours") - ran_h)
    assert_monotonic(telemetry(out, "uv-small-1"))


def test_a_lamp_switched_on_runs_and_counts_the_extra_hours(base: list[SimMessage]) -> None:
    start, end = at(10), at(11)  # the nap room's lamp is off in the morning
    out = faulty(base, LampOn("uv-nap", start, end))
    rows = pairs(base, out, "uv-nap")
    assert not any(old["on"] for ts, old, _ in rows if start <= ts < end)
    at_start = next(number(old, "lamp_hours") for ts, old, _ in rows if ts >= start)
    for ts, old, new in rows:
        if ts < start:
            assert new == old
        elif ts < end:
            assert new["on"] is True
            assert number(new, "power_w") == pytest.approx(30, abs=2)
            hours = (ts - start).total_seconds() / 3600
            assert number(new, "lamp_hours") == pytest.approx(at_start + hours, abs=5e-4)
        else:
            assert new["on"] == old["on"]
            assert number(new, "lamp_hours") == pytest.approx(number(old, "lamp_hours") + 1.0)
    assert_monotonic(telemetry(out, "uv-nap"))


def test_a_door_held_open_is_open_throughout_the_window(base: list[SimMessage]) -> None:
    start, end = at(20), at(22)  # the kitchen is closed in the evening
    out = faulty(base, DoorHeldOpen("kitchen-door", start, end))
    rows = pairs(base, out, "kitchen-door")
    assert not any(old["open"] for ts, old, _ in rows if start <= ts < end)
    for ts, old, new in rows:
        assert new == ({**old, "open": True} if start <= ts < end else old)
    assert [m for m in out if m.channel == "event"] == [m for m in base if m.channel == "event"]


def test_an_access_is_inserted_in_time_order(base: list[SimMessage]) -> None:
    when = at(21, 13.5)
    out = faulty(base, Access("main-gate", when, "card:9999", granted=False))
    added = [m for m in out if m.payload.get("credential") == "card:9999"]
    assert added == [
        SimMessage(
            when.astimezone(UTC),
            "main-gate",
            "event",
            {"ts": "2026-11-23T21:13:30+08:00", "type": "access", "credential": "card:9999", "granted": False},
        )
    ]
    assert [m for m in out if m is not added[0]] == base


def test_silence_drops_the_device_in_the_window(base: list[SimMessage]) -> None:
    start, end = at(13), at(14)
    out = faulty(base, Silence("main-gate", start, end), Access("main-gate", at(13, 30), "card:0001"))
    assert not [m for m in out if m.device_id == "main-gate" and start <= m.ts < end]
    outside = [m for m in base if m.device_id == "main-gate" and not start <= m.ts < end]
    assert [m for m in out if m.device_id == "main-gate"] == outside


def test_battery_is_reported_in_the_window_only(base: list[SimMessage]) -> None:
    start, end = at(13), at(15)
    out = faulty(base, Battery("sample-fridge", start, end, pct=5))
    for ts, old, new in pairs(base, out, "sample-fridge"):
        assert new == ({**old, "battery_pct": 5} if start <= ts < end else old)


def test_a_counter_reset_restarts_the_counter_from_zero(base: list[SimMessage]) -> None:
    when = at(14)
    out = faulty(base, CounterReset("teaching-power", when))
    rows = pairs(base, out, "teaching-power")
    at_reset = next(number(old, "energy_kwh") for ts, old, _ in rows if ts >= when)
    for ts, old, new in rows:
        if ts < when:
            assert new == old
        else:
            assert number(new, "energy_kwh") == pytest.approx(number(old, "energy_kwh") - at_reset)
            assert {**new, "energy_kwh": old["energy_kwh"]} == old
    assert next(new for ts, _, new in rows if ts >= when)["energy_kwh"] == 0.0
    assert_monotonic([(ts, new) for ts, _, new in rows if ts >= when])


def test_faults_on_one_device_compose_in_order(base: list[SimMessage]) -> None:
    leak = Leak("kitchen-water", at(1), at(2), lpm=5.0)
    reset = CounterReset("kitchen-water", at(3))
    out = faulty(base, leak, reset)
    rows = pairs(base, out, "kitchen-water")
    at_reset = next(number(old, "volume_m3") for ts, old, _ in rows if ts >= at(3)) + 0.3
    last = rows[-1]
    assert number(last[2], "volume_m3") == pytest.approx(number(last[1], "volume_m3") + 0.3 - at_reset)


def test_faults_can_be_reused_across_streams(base: list[SimMessage]) -> None:
    faults = (LampSkipped("uv-kitchen", MONDAY.date()), CounterReset("service-water", at(9)))
    assert list(inject(iter(base), faults, SITE)) == list(inject(iter(base), faults, SITE))


def test_an_unknown_device_is_named() -> None:
    with pytest.raises(ValueError, match="no-such-meter"):
        inject([], [Leak("no-such-meter", at(1), at(2), lpm=1.0)], SITE)


def test_a_fault_must_fit_the_device_kind() -> None:
    with pytest.raises(ValueError, match=r"main-gate: Leak fits water_meter, not door"):
        inject([], [Leak("main-gate", at(1), at(2), lpm=1.0)], SITE)


@pytest.mark.parametrize(
    "fault", [c for name, c in vars(faults).items()
              if isinstance(c, type) and issubclass(c, Fault) and c is not Fault and not name.startswith("_")],
)
def test_a_fault_fits_behaviours_the_simulator_has(fault: type[Fault]) -> None:
    """Faults rewrite what a behaviour's model sends, so they name behaviours, not kinds
    (none: any device, like `Silence`)."""
    assert fault.fits <= BEHAVIOURS.keys()


@pytest.mark.parametrize(
    ("start", "end"),
    [(at(2), at(1)), (at(1), at(1)), (datetime(2026, 11, 23, 1), at(2))],  # noqa: DTZ001 - naive on purpose
)
def test_a_window_must_be_aware_and_not_empty(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="uv-nap"):
        LampOn("uv-nap", start, end)


def test_injection_streams_lazily() -> None:
    month = SiteSimulation(SITE, seed=1).messages(MONDAY, MONDAY + timedelta(days=30))
    began = time.monotonic()
    first = next(inject(month, [Leak("teaching-water", at(1), at(2), lpm=1.0)], SITE))
    assert time.monotonic() - began < 2.0
    assert MONDAY <= first.ts < MONDAY + timedelta(minutes=1)

    pulled = 0

    def endless() -> Iterator[SimMessage]:
        nonlocal pulled
        for n in itertools.count():
            pulled += 1
            yield SimMessage(MONDAY + timedelta(minutes=n), "main-gate", "telemetry", {"open": False})

    stream = inject(endless(), [DoorHeldOpen("main-gate", at(0, 5), at(0, 7))], SITE)
    assert [m.payload["open"] for m in itertools.islice(stream, 10)] == [False] * 5 + [True] * 2 + [False] * 3
    assert pulled <= 11
