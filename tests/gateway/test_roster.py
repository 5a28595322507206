"""The duty roster: which shift covers an instant, by weekday or by the school calendar, with
night shifts belonging to the day they start on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from gateway import config
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar

SITE = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms: [{id: class-1, name: 小一班, type: classroom}]
calendar:
  term_breaks:
    - {start: 2026-07-11, end: 2026-08-31, name: 暑假}
  guard_duty:
    - {start: 2026-07-20, end: 2026-07-21, name: 护校}
duty:
  people:
    - {id: day-guard, name: 王师傅, role: 门卫}
    - {id: night-guard, name: 李师傅, role: 门卫}
    - {id: holiday-duty, name: 张老师, role: 值班教师}
    - {id: warden, name: 赵老师, role: 护校}
    - {id: director, name: 陈主任, role: 后勤主任, mobile: "13800000000"}
  shifts:
    - {days: [guard_duty], chain: [warden, director]}
    - {days: [school_day], start: "07:00", end: "19:00", chain: [day-guard, director]}
    - {days: [school_day], start: "19:00", end: "07:00", chain: [night-guard, director]}
    - {days: [closed_day], start: "07:00", end: "07:00", chain: [holiday-duty, director]}
"""

CHINA = timezone(timedelta(hours=8))


def _ms(d: date, hh: int, mm: int = 0, ss: int = 0, ms: int = 0) -> int:
    return int(datetime(d.year, d.month, d.day, hh, mm, ss, tzinfo=CHINA).timestamp()) * 1000 + ms


def _roster(text: str = SITE) -> Roster:
    site = config.parse(text, "test.yaml")
    return Roster(site, SchoolCalendar(site))


def _ids(roster: Roster, ts_ms: int) -> list[str]:
    return [p.id for p in roster.chain(ts_ms)]


def test_day_and_night_shift_on_a_school_day() -> None:
    roster = _roster()
    thursday = date(2026, 10, 15)
    assert _ids(roster, _ms(thursday, 10)) == ["day-guard", "director"]
    assert _ids(roster, _ms(thursday, 7)) == ["day-guard", "director"]  # start included
    assert _ids(roster, _ms(thursday, 18, 59, 59, 999)) == ["day-guard", "director"]
    assert _ids(roster, _ms(thursday, 19)) == ["night-guard", "director"]  # end excluded
    assert _ids(roster, _ms(thursday + timedelta(days=1), 3)) == ["night-guard", "director"]
    assert _ids(roster, _ms(thursday + timedelta(days=1), 6, 59, 59, 999)) == ["night-guard", "director"]
    on_duty = roster.chain(_ms(thursday, 23))[0]
    assert (on_duty.name, on_duty.role) == ("李师傅", "门卫")


def test_friday_night_shift_covers_saturday_small_hours() -> None:
    roster = _roster()
    saturday = date(2026, 10, 17)  # a plain weekend
    assert _ids(roster, _ms(saturday, 0)) == ["night-guard", "director"]  # not the all-day closed_day shift
    assert _ids(roster, _ms(saturday, 3)) == ["night-guard", "director"]
    assert _ids(roster, _ms(saturday, 7)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(saturday, 23, 59, 59, 999)) == ["holiday-duty", "director"]
    # Saturday is closed, so no night shift starts: Sunday's small hours are Saturday's closed_day.
    assert _ids(roster, _ms(saturday + timedelta(days=1), 3)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(saturday + timedelta(days=2), 6, 59)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(saturday + timedelta(days=2), 7)) == ["day-guard", "director"]


def test_closed_day_on_a_statutory_holiday() -> None:
    roster = _roster()
    national_day = date(2026, 10, 1)  # Thursday
    assert _ids(roster, _ms(national_day, 3)) == ["night-guard", "director"]  # 30 Sep was a school day
    assert _ids(roster, _ms(national_day, 10)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(national_day, 20)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(date(2026, 10, 8), 3)) == ["holiday-duty", "director"]  # 7 Oct was a holiday
    assert _ids(roster, _ms(date(2026, 10, 8), 10)) == ["day-guard", "director"]


def test_a_closed_day_shift_ending_at_midnight_leaves_the_next_night_uncovered() -> None:
    # Shifts belong to the day they start on: after a holiday, a school day's first shift
    # starts at 07:00, so a closed_day shift of 00:00-00:00 leaves 00:00-07:00 to nobody.
    roster = _roster(SITE.replace('{days: [closed_day], start: "07:00", end: "07:00"', "{days: [closed_day]"))
    assert roster.chain(_ms(date(2026, 10, 8), 3)) == ()
    assert _ids(roster, _ms(date(2026, 10, 7), 23, 59)) == ["holiday-duty", "director"]


def test_school_day_on_a_make_up_saturday() -> None:
    roster = _roster()
    makeup = date(2026, 10, 10)  # 调休 Saturday
    assert _ids(roster, _ms(makeup, 10)) == ["day-guard", "director"]
    assert _ids(roster, _ms(makeup, 21)) == ["night-guard", "director"]
    assert _ids(roster, _ms(makeup + timedelta(days=1), 3)) == ["night-guard", "director"]
    assert _ids(roster, _ms(makeup + timedelta(days=1), 10)) == ["holiday-duty", "director"]


def test_guard_duty_days_and_the_first_matching_shift_wins() -> None:
    roster = _roster()
    # 护校 days are closed days too; the guard_duty shift comes first in the file.
    assert _ids(roster, _ms(date(2026, 7, 20), 10)) == ["warden", "director"]
    assert _ids(roster, _ms(date(2026, 7, 21), 23)) == ["warden", "director"]
    assert _ids(roster, _ms(date(2026, 7, 22), 0)) == ["holiday-duty", "director"]
    assert _ids(roster, _ms(date(2026, 7, 19), 10)) == ["holiday-duty", "director"]
    # 03:00 on the 20th: the closed_day shift from the 19th covers it too, but comes later.
    assert _ids(roster, _ms(date(2026, 7, 20), 3)) == ["warden", "director"]
    # With closed_day listed first it takes 护校 days as well.
    swapped = SITE.replace("    - {days: [guard_duty], chain: [warden, director]}\n", "") + (
        "    - {days: [guard_duty], chain: [warden, director]}\n"
    )
    assert _ids(_roster(swapped), _ms(date(2026, 7, 20), 10)) == ["holiday-duty", "director"]


WEEKDAY_ONLY = """\
id: kg-1
name: 向日葵幼儿园
buildings:
  - id: main
    name: 教学楼
    rooms: [{id: class-1, name: 小一班, type: classroom}]
duty:
  people:
    - {id: nurse, name: 周医生, role: 保健医}
  shifts:
    - {days: [mon, sat], start: "08:00", end: "12:00", chain: [nurse]}
"""


def test_weekday_keys_ignore_the_calendar_and_gaps_have_no_chain() -> None:
    roster = _roster(WEEKDAY_ONLY)
    monday, tuesday = date(2026, 10, 12), date(2026, 10, 13)
    assert _ids(roster, _ms(monday, 8)) == ["nurse"]
    assert roster.chain(_ms(monday, 12)) == ()
    assert roster.chain(_ms(monday, 7, 59, 59, 999)) == ()
    assert roster.chain(_ms(tuesday, 10)) == ()
    assert _ids(roster, _ms(date(2026, 10, 5), 9)) == ["nurse"]  # a holiday Monday is still "mon"
    assert _ids(roster, _ms(date(2026, 10, 17), 9)) == ["nurse"]  # a closed Saturday is still "sat"


def test_no_shifts_at_all() -> None:
    roster = _roster(WEEKDAY_ONLY.split("  shifts:", maxsplit=1)[0])
    assert roster.chain(_ms(date(2026, 10, 12), 9)) == ()


def test_person_by_id() -> None:
    roster = _roster()
    assert roster.person("director").mobile == "13800000000"
    with pytest.raises(KeyError):
        roster.person("nobody")


def test_a_whole_day_shift_lasts_across_dst() -> None:
    text = WEEKDAY_ONLY.replace('{days: [mon, sat], start: "08:00", end: "12:00"', "{days: [sun]").replace(
        "name: 向日葵幼儿园\n", "name: 向日葵幼儿园\ntimezone: Europe/Berlin\ncalendar: {statutory_holidays: false}\n"
    )
    roster = _roster(text)
    berlin_utc = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # Sunday 29 March 00:00 CET
    start = int(berlin_utc.timestamp()) * 1000
    assert roster.chain(start - 1) == ()
    assert _ids(roster, start) == ["nurse"]
    assert _ids(roster, start + 23 * 3600 * 1000 - 1) == ["nurse"]  # a 23-hour day
    assert roster.chain(start + 23 * 3600 * 1000) == ()


# --- config validation -----------------------------------------------------------------------


def _errors(text: str) -> list[str]:
    with pytest.raises(config.ConfigError) as caught:
        config.parse(text, "test.yaml")
    return [f"test.yaml:{p.line}: {p.key}: {p.en}" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("chain: [nurse]", "chain: [nurse, doctor]", "test.yaml:11: duty.shifts[0].chain: shift 1: there is no person `doctor`; "
         "the people on duty are: nurse (周医生)"),
        ("days: [mon, sat]", "days: [mon, holiday]", "test.yaml:11: duty.shifts[0].days[1]: shift 1: `holiday` is not one of "
         "the values allowed: mon (Monday)"),
        ("days: [mon, sat]", "days: []", "test.yaml:11: duty.shifts[0].days: shift 1: needs at least 1 item"),
        ('end: "12:00"', 'end: "25:00"', "test.yaml:11: duty.shifts[0].end: shift 1: must be a time of day"),
        ("chain: [nurse]", "chain: [nurse], who: x", "test.yaml:11: duty.shifts[0].who: shift 1: unknown key `who`; "
         "the keys here: days, start, end, chain"),
        ("{id: nurse,", "{id: nurse guard,", "test.yaml:9: duty.people[0].id: person nurse guard (周医生): `nurse guard` "
         "cannot be an id: use only letters, digits and _ . -"),
    ],
)
def test_roster_mistakes_are_named_with_line_and_key(old: str, new: str, expected: str) -> None:
    assert old in WEEKDAY_ONLY
    errors = _errors(WEEKDAY_ONLY.replace(old, new))
    assert any(e.startswith(expected) for e in errors), errors
