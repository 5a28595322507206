import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

import simulators
from devices import kinds
from gateway.config import Device, SiteConfig, load
from simulators.model import SimMessage, SiteSimulation

SITE: SiteConfig = load(simulators.DEMO_SITE)
TZ = SITE.tz
SUNDAY = datetime(2026, 11, 22, tzinfo=TZ)
MONDAY = datetime(2026, 11, 23, tzinfo=TZ)
COUNTERS = ("energy_kwh", "volume_m3", "gas_m3", "lamp_hours")
MAIN_WATER_METERS = ("teaching-water", "service-water")


def window(start: datetime, hours: float, seed: int = 1) -> list[SimMessage]:
    return list(SiteSimulation(SITE, seed).messages(start, start + timedelta(hours=hours)))


def telemetry(messages: list[SimMessage], device_id: str) -> list[dict[str, object]]:
    return [m.payload for m in messages if m.device_id == device_id and m.channel == "telemetry"]


def part(messages: list[SimMessage], start: datetime, hours: float) -> list[SimMessage]:
    return [m for m in messages if start <= m.ts < start + timedelta(hours=hours)]


def number(payload: dict[str, object], key: str) -> float:
    value = payload[key]
    assert isinstance(value, int | float)
    return float(value)


@pytest.fixture(scope="module")
def week() -> list[SimMessage]:
    """Sunday to Saturday, midnight to midnight."""
    return window(SUNDAY, 7 * 24)


# Shanghai lies south of the district-heating line (秦岭—淮河): the demo kindergarten has no heat meter.
NOT_IN_THE_DEMO = {"heat_meter"}


def test_demo_site_has_every_kind_and_about_twenty_devices() -> None:
    assert {d.kind for d in SITE.devices} == set(kinds()) - NOT_IN_THE_DEMO
    assert 15 <= len(SITE.devices) <= 25


def test_the_same_seed_gives_the_same_messages() -> None:
    assert window(MONDAY + timedelta(hours=6), 6) == window(MONDAY + timedelta(hours=6), 6)


def test_another_seed_gives_other_messages() -> None:
    assert window(MONDAY + timedelta(hours=6), 6, seed=1) != window(MONDAY + timedelta(hours=6), 6, seed=2)


def test_consecutive_windows_equal_one_window() -> None:
    a, b, c = MONDAY, MONDAY + timedelta(hours=13, minutes=7, seconds=31), MONDAY + timedelta(days=1, hours=9)
    sim = SiteSimulation(SITE)
    joined = list(sim.messages(a, b)) + list(sim.messages(b, c))
    assert joined == list(SiteSimulation(SITE).messages(a, c))
    # A window does not depend on what was generated before: a live publisher started later
    # continues the counters of generated history.
    tail = list(SiteSimulation(SITE).messages(b, c))
    assert tail == joined[len(joined) - len(tail):]


def test_messages_are_in_time_order_inside_the_window() -> None:
    start = MONDAY + timedelta(hours=7, minutes=30, seconds=10)
    end = start + timedelta(hours=1)
    messages = list(SiteSimulation(SITE).messages(start, end))
    assert messages
    assert all(start <= m.ts < end for m in messages)
    assert [m.ts for m in messages] == sorted(m.ts for m in messages)


def test_every_device_reports_once_per_interval_at_its_own_second() -> None:
    messages = window(MONDAY + timedelta(hours=3), 1)
    seconds: dict[str, set[int]] = defaultdict(set)
    for m in messages:
        assert m.channel == "telemetry"  # nobody swipes a card at 03:00
        seconds[m.device_id].add(m.ts.second)
    for device in SITE.devices:
        assert len(telemetry(messages, device.id)) == 3600 / device.interval_s
    assert len({s for per_device in seconds.values() for s in per_device}) > 5


def test_payloads_carry_the_site_utc_offset() -> None:
    message = window(MONDAY + timedelta(hours=8), 0.1)[0]
    assert message.ts.tzinfo is UTC
    assert message.payload["ts"] == message.ts.astimezone(TZ).isoformat()
    assert str(message.payload["ts"]).startswith("2026-11-23T08:00:")
    assert str(message.payload["ts"]).endswith("+08:00")


def test_every_message_of_a_weekend_day_and_a_workday_decodes(week: list[SimMessage]) -> None:
    received_ms = 0  # every payload carries its own ts
    for m in (m for m in week if m.ts < MONDAY + timedelta(days=1)):
        device = SITE.device(m.device_id)
        assert device is not None
        kind = kinds()[device.kind]
        data = json.dumps(m.payload, ensure_ascii=False, separators=(",", ":")).encode()
        if m.channel == "telemetry":
            sample = kind.decode(m.device_id, data, received_ms)
            assert sample.ts_ms == round(m.ts.timestamp() * 1000)
        else:
            event = kind.decode_event(m.device_id, data, received_ms)
            assert event.type == "access"


def test_counters_never_decrease(week: list[SimMessage]) -> None:
    last: dict[tuple[str, str], float] = {}
    for m in week:
        for key in COUNTERS:
            if key in m.payload:
                value = number(m.payload, key)
                assert value >= last.get((m.device_id, key), 0.0), (m.device_id, m.ts)
                last[m.device_id, key] = value


@pytest.mark.parametrize(
    ("kind", "counter", "rate", "per_unit", "tolerance"),
    [
        ("electricity_meter", "energy_kwh", "power_w", 60 / 3_600_000, 0.02),  # W × 60 s → kWh
        ("water_meter", "volume_m3", "flow_lpm", 1 / 1000, 0.05),  # L/min × 1 min → m³
        ("gas_meter", "gas_m3", "gas_flow_m3h", 1 / 60, 0.05),  # m³/h × 1 min → m³
    ],
)
def test_meter_totals_match_their_rates(
    week: list[SimMessage], kind: str, counter: str, rate: str, per_unit: float, tolerance: float
) -> None:
    for device in (d for d in SITE.devices if d.kind == kind):
        readings = telemetry(week, device.id)
        total = number(readings[-1], counter) - number(readings[0], counter)
        from_rates = sum(number(p, rate) for p in readings[1:]) * per_unit
        assert total > 0
        assert from_rates == pytest.approx(total, rel=tolerance), device.id


def test_a_heat_meter_draws_in_winter_and_nothing_in_summer() -> None:
    heat = Device(id="teaching-heat", kind="heat_meter", room="teaching-plant", interval_s=60)
    site = SiteConfig(**(dict(SITE) | {"devices": [*SITE.devices, heat]}))

    def day_of(start: datetime) -> list[dict[str, object]]:
        return telemetry(list(SiteSimulation(site).messages(start, start + timedelta(days=1))), heat.id)

    winter = day_of(datetime(2027, 1, 12, tzinfo=TZ))  # a Tuesday in term
    summer = day_of(datetime(2026, 7, 14, tzinfo=TZ))
    used = number(winter[-1], "heat_gj") - number(winter[0], "heat_gj")
    assert used > 0
    assert number(summer[-1], "heat_gj") == number(summer[0], "heat_gj")
    from_rates = sum(number(p, "heat_kw") for p in winter[1:]) / 60 * 0.0036  # kW × 1 min → kWh → GJ
    assert from_rates == pytest.approx(used, rel=0.05)
    assert all(number(p, "supply_c") > number(p, "return_c") for p in winter)


def test_main_water_meters_read_more_than_the_kitchen_sub_meter(week: list[SimMessage]) -> None:
    def used(device_id: str) -> float:
        readings = telemetry(week, device_id)
        return number(readings[-1], "volume_m3") - number(readings[0], "volume_m3")

    assert used("service-water") > used("kitchen-water") > 0


def test_fridge_stays_in_range_most_of_the_week(week: list[SimMessage]) -> None:
    temperatures = [number(p, "temperature_c") for p in telemetry(week, "sample-fridge")]
    inside = sum(0 <= t <= 8 for t in temperatures)
    assert inside >= 0.95 * len(temperatures)
    assert any(p["door_open"] for p in telemetry(week, "sample-fridge"))


def _longest_run_min(readings: list[dict[str, object]]) -> int:
    longest = run = 0
    for p in readings:
        run = run + 1 if p["on"] else 0
        longest = max(longest, run)
    return longest


def test_uv_lamps_run_at_least_30_minutes_on_a_workday_and_not_on_sunday(week: list[SimMessage]) -> None:
    monday, sunday = part(week, MONDAY, 24), part(week, SUNDAY, 24)
    for lamp in (d for d in SITE.devices if d.kind == "uv_lamp"):
        on_monday = telemetry(monday, lamp.id)
        assert _longest_run_min(on_monday) >= 30, lamp.id
        assert all(not p["on"] for p in telemetry(sunday, lamp.id)), lamp.id
        assert number(on_monday[-1], "lamp_hours") - number(on_monday[0], "lamp_hours") >= 0.5


def test_uv_lamps_run_when_the_rooms_are_empty() -> None:
    for m in window(MONDAY + timedelta(hours=7), 9):  # 07:00–16:00: children are in
        if m.device_id.startswith("uv-") and m.device_id != "uv-kitchen":
            assert m.payload["on"] is False, (m.device_id, m.ts)


def test_gate_has_access_events_on_a_workday_morning_only(week: list[SimMessage]) -> None:
    events = [m for m in week if m.channel == "event"]
    arrivals = part(events, MONDAY + timedelta(hours=7, minutes=45), 35 / 60)
    assert len(arrivals) > 50
    assert {m.device_id for m in arrivals} == {"main-gate"}
    assert all(str(m.payload["credential"]).startswith("card:") for m in arrivals)
    assert any(not m.payload["granted"] for m in part(events, MONDAY, 24))
    assert not part(events, MONDAY + timedelta(hours=2, minutes=30), 1)
    assert not part(events, SUNDAY, 24)


def test_gate_is_open_for_arrivals_and_closed_at_night() -> None:
    assert all(p["open"] for p in telemetry(window(MONDAY + timedelta(hours=7, minutes=50), 0.5), "main-gate"))
    assert not any(p["open"] for p in telemetry(window(MONDAY + timedelta(hours=2), 2), "main-gate"))


def test_night_water_flow_is_near_zero_on_the_main_meters() -> None:
    night = window(MONDAY + timedelta(hours=2), 2)
    for meter in MAIN_WATER_METERS:
        assert max(number(p, "flow_lpm") for p in telemetry(night, meter)) <= 0.5


def test_workdays_use_more_than_weekends(week: list[SimMessage]) -> None:
    monday, sunday = part(week, MONDAY, 24), part(week, SUNDAY, 24)

    def used(messages: list[SimMessage], device_id: str, key: str) -> float:
        readings = telemetry(messages, device_id)
        return number(readings[-1], key) - number(readings[0], key)

    assert used(monday, "teaching-power", "energy_kwh") > 1.3 * used(sunday, "teaching-power", "energy_kwh")
    assert used(monday, "service-water", "volume_m3") > 10 * used(sunday, "service-water", "volume_m3")


def test_naive_or_too_early_windows_are_refused() -> None:
    sim = SiteSimulation(SITE)
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.messages(datetime(2026, 11, 23), datetime(2026, 11, 24))  # noqa: DTZ001
    with pytest.raises(ValueError, match="begins on"):
        sim.messages(datetime(2023, 1, 1, tzinfo=UTC), datetime(2023, 1, 2, tzinfo=UTC))


def test_a_site_with_daylight_saving_time_keeps_order_and_counters() -> None:
    berlin = SITE.model_copy(update={"timezone": "Europe/Berlin"})
    autumn_change = datetime(2026, 10, 25, tzinfo=berlin.tz)  # a Sunday of 25 hours
    messages = list(SiteSimulation(berlin).messages(autumn_change, autumn_change + timedelta(days=2)))
    assert [m.ts for m in messages] == sorted(m.ts for m in messages)
    assert len(telemetry(messages, "teaching-power")) == 49 * 60
    last: dict[tuple[str, str], float] = {}
    for m in messages:
        for key in (k for k in COUNTERS if k in m.payload):
            assert number(m.payload, key) >= last.get((m.device_id, key), 0.0)
            last[m.device_id, key] = number(m.payload, key)
