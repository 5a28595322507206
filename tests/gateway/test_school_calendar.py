"""The school calendar: statutory holidays and 调休 from chinesecalendar, the site's own
periods over them, per-building hours, and "is it open at t" in the site's time zone."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gateway import config
from gateway.schedule import school_calendar
from gateway.schedule.school_calendar import DayKind, SchoolCalendar

SITE = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms: [{id: class-1, name: 小一班, type: classroom}]
  - id: service
    name: 后勤楼
    rooms: [{id: kitchen, name: 厨房, type: kitchen}]
    opening_hours:
      mon: [{start: "06:00", end: "18:00"}]
      tue: [{start: "06:00", end: "18:00"}]
      wed: [{start: "06:00", end: "18:00"}]
      thu: [{start: "06:00", end: "18:00"}]
      fri: [{start: "06:00", end: "11:00"}, {start: "12:00", end: "18:00"}]
"""

CHINA = timezone(timedelta(hours=8))  # no DST: an independent check of the zone arithmetic


def _calendar(extra: str = "", site: str = SITE) -> SchoolCalendar:
    return SchoolCalendar(config.parse(site + extra, "test.yaml"))


def _cn_ms(d: date, hh: int, mm: int, ss: int = 0, ms: int = 0) -> int:
    local = datetime(d.year, d.month, d.day, hh, mm, ss, ms * 1000, tzinfo=CHINA)
    return int(local.timestamp()) * 1000 + ms


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    # "Once per process" must be observable in one test regardless of which ran before.
    monkeypatch.setattr(school_calendar, "_warned_years", set())


# --- statutory holidays and make-up days -------------------------------------------------------


def test_national_day_2026_is_a_holiday_week() -> None:
    cal = _calendar()
    for n in range(1, 8):
        day = cal.day(date(2026, 10, n))
        assert day.kind is DayKind.HOLIDAY, day
        assert not day.school_day
        assert (day.name_zh, day.name_en, day.source) == ("国庆节", "National Day", "chinesecalendar")
        assert cal.hours("main", day.date) == []
        assert cal.closing_ms("main", day.date) is None
    assert not cal.is_open("main", _cn_ms(date(2026, 10, 1), 10, 0))
    after = cal.day(date(2026, 10, 8))
    assert (after.kind, after.school_day, after.name_en) == (DayKind.SCHOOL_DAY, True, "")


@pytest.mark.parametrize("makeup", [date(2026, 9, 20), date(2026, 10, 10)])
def test_national_day_make_up_days_open_with_mondays_hours(makeup: date) -> None:
    cal = _calendar()
    day = cal.day(makeup)
    assert makeup.weekday() >= 5
    assert (day.kind, day.school_day, day.name_zh) == (DayKind.MAKEUP_DAY, True, "国庆节")
    assert [(s.start.isoformat(), s.end.isoformat()) for s in cal.hours("main", makeup)] == [("07:30:00", "17:30:00")]
    assert [(s.start.isoformat(), s.end.isoformat()) for s in cal.hours("service", makeup)] == [
        ("06:00:00", "18:00:00")
    ]
    assert cal.open_spans_ms("main", makeup) == [(_cn_ms(makeup, 7, 30), _cn_ms(makeup, 17, 30))]
    assert cal.is_open("main", _cn_ms(makeup, 10, 0))
    assert not cal.is_open("main", _cn_ms(makeup, 18, 0))


def test_make_up_day_takes_the_first_weekday_with_hours_when_monday_has_none() -> None:
    cal = _calendar(site=SITE.replace('      mon: [{start: "06:00", end: "18:00"}]\n', ""))
    assert cal.hours("service", date(2026, 10, 12)) == []  # a Monday: the building is closed
    assert [s.start.isoformat() for s in cal.hours("service", date(2026, 10, 10))] == ["06:00:00"]


def test_spring_festival_2026() -> None:
    cal = _calendar()
    for n in range(15, 24):
        day = cal.day(date(2026, 2, n))
        assert (day.kind, day.name_zh, day.name_en) == (DayKind.HOLIDAY, "春节", "Spring Festival"), day
    assert cal.day(date(2026, 2, 24)).kind is DayKind.SCHOOL_DAY
    for makeup in (date(2026, 2, 14), date(2026, 2, 28)):
        assert cal.day(makeup).kind is DayKind.MAKEUP_DAY
        assert cal.is_open("main", _cn_ms(makeup, 9, 0))
    assert not cal.is_open("main", _cn_ms(date(2026, 2, 17), 9, 0))


def test_a_plain_weekend_is_closed() -> None:
    cal = _calendar()
    for d in (date(2026, 3, 7), date(2026, 3, 8)):
        day = cal.day(d)
        assert (day.kind, day.school_day, day.name_zh, day.source) == (DayKind.WEEKEND, False, "", "chinesecalendar")
        assert not cal.is_open("service", _cn_ms(d, 10, 0))
    assert cal.day(date(2026, 3, 9)).kind is DayKind.SCHOOL_DAY


def test_a_weekday_without_site_hours_is_a_weekend() -> None:
    cal = _calendar("opening_hours:\n  mon: []\n  tue: [{start: '08:00', end: '16:00'}]\n")
    assert cal.day(date(2026, 3, 9)).kind is DayKind.WEEKEND  # Monday
    assert cal.day(date(2026, 3, 10)).kind is DayKind.SCHOOL_DAY
    assert cal.day(date(2026, 3, 11)).kind is DayKind.WEEKEND  # not listed: no hours


def test_saturday_classes_when_the_site_has_saturday_hours() -> None:
    cal = _calendar("opening_hours:\n  sat: [{start: '08:00', end: '12:00'}]\n")
    assert cal.day(date(2026, 3, 7)).kind is DayKind.SCHOOL_DAY
    assert cal.is_open("main", _cn_ms(date(2026, 3, 7), 8, 0))
    assert not cal.is_open("main", _cn_ms(date(2026, 3, 7), 12, 0))


def test_statutory_holidays_off_ignores_the_library() -> None:
    cal = _calendar("calendar: {statutory_holidays: false}\n")
    national_day = cal.day(date(2026, 10, 1))
    assert (national_day.kind, national_day.school_day, national_day.source) == (DayKind.SCHOOL_DAY, True, "site")
    assert cal.day(date(2026, 10, 10)).kind is DayKind.WEEKEND  # no 调休 either
    assert cal.is_open("main", _cn_ms(date(2026, 10, 1), 10, 0))


# --- the site's own periods ------------------------------------------------------------------

PERIODS = """\
calendar:
  term_breaks:
    - {start: 2026-01-24, end: 2026-02-28, name: 寒假}
  closures:
    - {start: 2026-01-26, end: 2026-01-26, name: 消毒}
    - {start: 2026-03-10, end: 2026-03-11, name: 停电检修}
  guard_duty:
    - {start: 2026-01-26, end: 2026-01-27, name: 护校}
"""


@pytest.mark.parametrize(
    ("d", "kind", "name"),
    [
        (date(2026, 1, 26), DayKind.GUARD_DUTY, "护校"),  # guard duty over closure and term break
        (date(2026, 1, 27), DayKind.GUARD_DUTY, "护校"),
        (date(2026, 3, 10), DayKind.CLOSURE, "停电检修"),
        (date(2026, 3, 11), DayKind.CLOSURE, "停电检修"),
        (date(2026, 1, 28), DayKind.TERM_BREAK, "寒假"),
        (date(2026, 2, 17), DayKind.TERM_BREAK, "寒假"),  # over a statutory holiday
        (date(2026, 2, 14), DayKind.TERM_BREAK, "寒假"),  # over a make-up Saturday
        (date(2026, 2, 28), DayKind.TERM_BREAK, "寒假"),  # the end is included
        (date(2026, 3, 1), DayKind.WEEKEND, ""),
        (date(2026, 3, 2), DayKind.SCHOOL_DAY, ""),
    ],
)
def test_site_periods_take_precedence(d: date, kind: DayKind, name: str) -> None:
    cal = _calendar(PERIODS)
    day = cal.day(d)
    assert (day.kind, day.name_zh, day.name_en) == (kind, name, name)
    assert day.guard_duty is (kind is DayKind.GUARD_DUTY)
    assert day.school_day is (kind is DayKind.SCHOOL_DAY)
    if kind in (DayKind.GUARD_DUTY, DayKind.CLOSURE, DayKind.TERM_BREAK):
        assert day.source == "site"
        assert cal.hours("service", d) == []
        assert not cal.is_open("service", _cn_ms(d, 10, 0))


# --- hours and is_open -----------------------------------------------------------------------


def test_a_building_keeps_its_own_hours() -> None:
    cal = _calendar()
    thursday, friday = date(2026, 10, 15), date(2026, 10, 16)
    assert cal.open_spans_ms("main", thursday) == [(_cn_ms(thursday, 7, 30), _cn_ms(thursday, 17, 30))]
    assert cal.open_spans_ms("service", thursday) == [(_cn_ms(thursday, 6, 0), _cn_ms(thursday, 18, 0))]
    assert cal.is_open("service", _cn_ms(thursday, 6, 15))
    assert not cal.is_open("main", _cn_ms(thursday, 6, 15))
    assert cal.closing_ms("main", thursday) == _cn_ms(thursday, 17, 30)
    assert cal.closing_ms("service", friday) == _cn_ms(friday, 18, 0)
    assert not cal.is_open("service", _cn_ms(friday, 11, 30))  # the lunch gap between two spans
    assert cal.is_open("service", _cn_ms(friday, 12, 0))


def test_is_open_includes_the_start_and_excludes_the_end() -> None:
    cal = _calendar()
    d = date(2026, 10, 15)
    assert not cal.is_open("main", _cn_ms(d, 7, 29, 59, 999))
    assert cal.is_open("main", _cn_ms(d, 7, 30))
    assert cal.is_open("main", _cn_ms(d, 17, 29, 59, 999))
    assert not cal.is_open("main", _cn_ms(d, 17, 30))


def test_is_open_follows_time_in_any_order_across_days() -> None:
    cal = _calendar()
    asked = [
        (date(2026, 10, 15), 10, True),
        (date(2026, 10, 1), 10, False),  # back in time: a replayed reading
        (date(2026, 10, 15), 23, False),
        (date(2026, 10, 16), 0, False),
        (date(2026, 10, 10), 8, True),
        (date(2026, 10, 15), 10, True),
    ]
    assert [cal.is_open("main", _cn_ms(d, h, 0)) for d, h, _ in asked] == [o for _, _, o in asked]
    with pytest.raises(KeyError):
        cal.is_open("attic", _cn_ms(date(2026, 10, 15), 10, 0))


def test_local_date_and_day_bounds_in_shanghai() -> None:
    cal = _calendar()
    d = date(2026, 10, 15)
    start, end = cal.day_bounds_ms(d)
    assert (start, end) == (_cn_ms(d, 0, 0), _cn_ms(date(2026, 10, 16), 0, 0))
    assert cal.local_date(start) == d
    assert cal.local_date(end - 1) == d
    assert cal.local_date(end) == date(2026, 10, 16)
    # 16:00 UTC is already tomorrow in Shanghai
    assert cal.local_date(int(datetime(2026, 10, 14, 16, 0, tzinfo=UTC).timestamp() * 1000)) == d


BERLIN = """\
timezone: Europe/Berlin
calendar: {statutory_holidays: false}
opening_hours:
  mon: [{start: "07:30", end: "17:30"}]
  fri: [{start: "07:30", end: "17:30"}]
  sun: [{start: "01:00", end: "04:00"}]
"""


def _utc_ms(year: int, month: int, day: int, hh: int, mm: int = 0, ss: int = 0) -> int:
    return int(datetime(year, month, day, hh, mm, ss, tzinfo=UTC).timestamp()) * 1000


def test_is_open_across_the_spring_forward_day_in_berlin() -> None:
    cal = _calendar(BERLIN)
    friday, sunday, monday = date(2026, 3, 27), date(2026, 3, 29), date(2026, 3, 30)  # DST starts 29 March
    assert cal.open_spans_ms("main", friday) == [(_utc_ms(2026, 3, 27, 6, 30), _utc_ms(2026, 3, 27, 16, 30))]
    assert cal.open_spans_ms("main", monday) == [(_utc_ms(2026, 3, 30, 5, 30), _utc_ms(2026, 3, 30, 15, 30))]
    # 01:00 CET to 04:00 CEST: two hours, as 02:00–03:00 does not exist that night
    assert cal.open_spans_ms("main", sunday) == [(_utc_ms(2026, 3, 29, 0, 0), _utc_ms(2026, 3, 29, 2, 0))]
    assert cal.day_bounds_ms(sunday) == (_utc_ms(2026, 3, 28, 23, 0), _utc_ms(2026, 3, 29, 22, 0))  # 23 h
    assert not cal.is_open("main", _utc_ms(2026, 3, 28, 23, 59, 59))
    assert cal.is_open("main", _utc_ms(2026, 3, 29, 0, 0))
    assert cal.is_open("main", _utc_ms(2026, 3, 29, 1, 59, 59))
    assert not cal.is_open("main", _utc_ms(2026, 3, 29, 2, 0))
    assert cal.local_date(_utc_ms(2026, 3, 29, 21, 59, 59)) == sunday
    assert cal.local_date(_utc_ms(2026, 3, 29, 22, 0)) == monday
    assert not cal.is_open("main", _utc_ms(2026, 3, 30, 5, 29, 59))
    assert cal.is_open("main", _utc_ms(2026, 3, 30, 5, 30))  # 07:30 CEST
    assert cal.closing_ms("main", monday) == _utc_ms(2026, 3, 30, 15, 30)


def test_fall_back_day_lasts_25_hours_in_berlin() -> None:
    cal = _calendar(BERLIN)
    start, end = cal.day_bounds_ms(date(2026, 10, 25))
    assert end - start == 25 * 3600 * 1000


# --- years the library does not know ---------------------------------------------------------


def test_a_year_without_data_falls_back_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.schedule.school_calendar")
    first, second = (
        _calendar(),
        _calendar(PERIODS.replace("2026-03-10", "2027-03-10").replace("2026-03-11", "2027-03-11")),
    )
    national_day = first.day(date(2027, 10, 1))  # a Friday; whatever 2027's holidays are, unknown
    assert (national_day.kind, national_day.school_day, national_day.source) == (DayKind.SCHOOL_DAY, True, "fallback")
    for cal in (first, second):
        for d in (date(2027, 10, 2), date(2027, 10, 3)):
            day = cal.day(d)
            assert (day.kind, day.source) == (DayKind.WEEKEND, "fallback")
            assert not cal.is_open("main", _cn_ms(d, 10, 0))
        assert cal.is_open("main", _cn_ms(date(2027, 10, 4), 10, 0))
    closure = second.day(date(2027, 3, 10))
    assert (closure.kind, closure.source) == (DayKind.CLOSURE, "site")  # the site file still counts
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "2027" in warnings[0].getMessage()
    assert "调休" in warnings[0].getMessage()
    first.day(date(2003, 5, 1))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2
    assert "2003" in caplog.records[-1].getMessage()


def test_library_years_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.schedule.school_calendar")
    cal = _calendar()
    for d in (date(2004, 1, 1), date(2026, 12, 31)):
        assert cal.day(d).source == "chinesecalendar"
    assert caplog.records == []


# --- config validation -----------------------------------------------------------------------


def _errors(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "test.yaml")
    return [f"test.yaml:{p.line}: {p.key}: {p.en}" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "calendar:\n  term_breaks:\n    - {start: 2026-07-10, end: 2026-07-01}\n",
            "test.yaml:18: calendar.term_breaks[0]: term break 1: end 2026-07-01 is before start 2026-07-10",
        ),
        (
            "calendar:\n  closures:\n    - {start: 2026-07-10, ends: 2026-07-11}\n",
            "test.yaml:18: calendar.closures[0].ends: closure 1: unknown key `ends`; the keys here: start, end, name",
        ),
        ("calendar:\n  holidays: false\n", "test.yaml:17: calendar.holidays: unknown key"),
        pytest.param(
            "calendar:\n  guard_duty:\n    - {start: 2026-02-30, end: 2026-03-01}\n",
            "test.yaml:18: calendar.guard_duty[0].start:",
        ),
    ],
)
def test_calendar_mistakes_are_named_with_line_and_key(extra: str, expected: str) -> None:
    errors = _errors(SITE + extra)
    assert any(e.startswith(expected) for e in errors), errors
