"""UV lamps by WS/T 367-2012 (docs/uv.md): a session counts from its warm-up on and only while
the room is empty; a lamp lit with someone inside is a critical alert, once per episode. The
rules run in the real engine on readings in event time; the daily record's count
(`lamp_count`) is checked against the rule's on the same readings."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Final

import pytest

from devices.base import Sample
from gateway.alerting.severity import Severity
from gateway.config import Device, SiteConfig
from gateway.rules.base import Finding
from gateway.rules.engine import RuleEngine
from gateway.rules.uv import UV_NOT_RUN, lamp_count, lamp_window, required_minutes
from gateway.schedule.school_calendar import SchoolCalendar
from tests.rule_scenarios import site_with

TUE: Final = date(2026, 10, 13)  # a school day
WINDOW: Final = {"uv_not_run": {"window_start": "18:00", "window_end": "20:00"}}
SITE: Final = site_with({
    "devices": [{"id": "nap-door", "kind": "door", "room": "nap", "name": "午睡室门"}],
    "device_rules": {"uv-nap": WINDOW, "uv-small-1": WINDOW},
})
TZ: Final = SITE.tz


def device(device_id: str) -> Device:
    found = SITE.device(device_id)
    assert found is not None
    return found


WARMUP_MIN: Final = UV_NOT_RUN.params_for(device("uv-nap")).warmup_min
REQUIRED_MIN: Final = required_minutes(device("uv-nap"))


def ms(hhmm: str) -> int:
    return int(datetime.combine(TUE, time.fromisoformat(hhmm), tzinfo=TZ).timestamp() * 1000)


def minute_of(hhmm: str) -> int:
    t = time.fromisoformat(hhmm)
    return t.hour * 60 + t.minute


def evening(lamp: str, lamp_on: tuple[str, str], door_open: tuple[str, str] | None = None,
            until: str = "20:02") -> list[Sample]:
    """A reading a minute from 17:50 to `until` of the lamp (lit over `lamp_on`) and of the
    nap room's door (open over `door_open`)."""
    out = []
    start = datetime.combine(TUE, time(17, 50), tzinfo=TZ)
    for n in range(minute_of(until) - minute_of("17:50") + 1):
        when = start + timedelta(minutes=n)
        hhmm = f"{when:%H:%M}"
        ts = int(when.timestamp() * 1000)
        out.append(Sample("nap-door", ts, {"open": float(door_open is not None and door_open[0] <= hhmm < door_open[1])}))
        out.append(Sample(lamp, ts, {"on": float(lamp_on[0] <= hhmm < lamp_on[1])}))
    return out


def feed(samples: Iterable[Sample], rule: str) -> list[Finding]:
    found: list[Finding] = []
    engine = RuleEngine(SITE, SchoolCalendar(SITE), lambda f, e: found.append(f) if f.rule == rule else None)
    for sample in samples:
        engine.sample(sample, sample.ts_ms)
    return found


def counted_by_the_record(samples: list[Sample], lamp: str) -> float:
    """The daily record's count of the same readings."""
    def read(device_id: str, metric: str, lo: int, hi: int) -> list[tuple[int, float]]:
        return [(s.ts_ms, s.values[metric]) for s in samples
                if s.device_id == device_id and metric in s.values and lo <= s.ts_ms < hi]
    window = lamp_window(SITE, SchoolCalendar(SITE), device(lamp), TUE)
    assert window == (ms("18:00"), ms("20:00"))
    return lamp_count(read, SITE, device(lamp), window, ms("20:02")).minutes


@pytest.mark.parametrize("off_at", ["18:34", "18:36"])
def test_the_warm_up_is_not_counted(off_at: str) -> None:
    """Lit for 34 min: 29 after its warm-up, short of 30; lit for 36: 31, enough."""
    assert WARMUP_MIN == 5  # WS/T 367-2012 measures after 5 min; kindergartens count from 5–7 min
    assert minute_of(off_at) - minute_of("18:00") >= REQUIRED_MIN  # enough, were the warm-up counted
    samples = evening("uv-nap", ("18:00", off_at))
    counted = minute_of(off_at) - minute_of("18:00") - WARMUP_MIN
    raised = [f for f in feed(samples, "uv_not_run") if f.active]
    assert [f.facts["minutes_run"] for f in raised] == ([counted] if counted < REQUIRED_MIN else [])
    assert counted_by_the_record(samples, "uv-nap") == counted


def test_time_with_the_door_open_is_not_counted() -> None:
    """An hour lit, of which 30 min with the door open: 25 min counted, and the day missed."""
    samples = evening("uv-nap", ("18:00", "19:00"), door_open=("18:20", "18:50"))
    counted = (60 - WARMUP_MIN) - 30
    [raised] = [f for f in feed(samples, "uv_not_run") if f.active]
    assert raised.facts["minutes_run"] == counted
    assert raised.at_ms == ms("20:00")
    assert "开门或有人的时间不计" in raised.detail_zh
    assert counted_by_the_record(samples, "uv-nap") == counted


def test_a_room_without_a_sensor_counts_and_says_it_could_not_check() -> None:
    samples = evening("uv-small-1", ("18:00", "18:20"), door_open=("18:00", "19:00"))  # the nap room's door
    [raised] = [f for f in feed(samples, "uv_not_run") if f.active]
    assert raised.facts["minutes_run"] == 20 - WARMUP_MIN
    assert "无法确认室内无人" in raised.detail_zh
    assert "could not be checked" in raised.detail_en
    assert counted_by_the_record(samples, "uv-small-1") == 20 - WARMUP_MIN


def test_a_lamp_lit_with_the_door_open_is_critical_once_per_episode() -> None:
    """The door opens under a lit lamp (raised once, however many readings), closes
    (cleared); later the lamp is switched on behind an open door (a second episode)."""
    samples = [s for s in evening("uv-nap", ("18:00", "18:40"), door_open=("18:10", "18:15"))
               if s.ts_ms < ms("18:45")]
    samples += [s for s in evening("uv-nap", ("19:00", "19:30"), door_open=("18:50", "19:05"))
                if s.ts_ms >= ms("18:45")]
    found = feed(samples, "uv_on_occupied")
    assert [(f.active, f.at_ms) for f in found] == [
        (True, ms("18:10")), (False, ms("18:15")), (True, ms("19:00")), (False, ms("19:05"))]
    assert {f.severity for f in found if f.active} == {Severity.CRITICAL}


def test_an_empty_room_or_a_dark_lamp_raises_nothing() -> None:
    assert feed(evening("uv-nap", ("18:00", "19:00")), "uv_on_occupied") == []
    assert feed(evening("uv-nap", ("18:00", "18:30"), door_open=("18:40", "19:00")), "uv_on_occupied") == []


def site_without_the_door() -> SiteConfig:
    return site_with({"device_rules": {"uv-nap": WINDOW}})


def test_a_door_added_to_the_room_is_watched_after_a_reconfigure() -> None:
    found: list[Finding] = []
    bare = site_without_the_door()
    engine = RuleEngine(bare, SchoolCalendar(bare), lambda f, e: found.append(f) if f.rule == "uv_on_occupied" else None)
    engine.reconfigure(SITE, set())
    for sample in evening("uv-nap", ("18:00", "18:30"), door_open=("18:10", "18:12"), until="18:20"):
        engine.sample(sample, sample.ts_ms)
    assert [f.active for f in found] == [True, False]
