"""The energy report of a month in progress (月初至今), in-process: a small site whose two
meters are fed straight into the ingest path (real SQLite and rollups, a manual clock), a few
days of the month, the same days of the previous month and of the same month last year. The
report is read on the 2nd, when the month to date is too short to compare, and on the 5th,
when electricity compares like for like and the water meter has been silent for most of it.
"""

from __future__ import annotations

import json
import time as wall
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from gateway import config
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config.auth import Scope
from gateway.ingest.broker import embedded_broker
from gateway.reports import render
from gateway.reports.document import Figures, Paragraphs, Table, Tone
from gateway.reports.energy import EnergyReport
from gateway.reports.energy_doc import energy_document
from gateway.runtime import Gateway
from gateway.schedule.school_calendar import SchoolCalendar
from tests.services import accounting, free_port

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
SECOND_DAY = datetime(2026, 11, 2, 10, 20, tzinfo=TZ)  # a Monday: the month to date is 34 hours
FIFTH_DAY = datetime(2026, 11, 5, 10, 20, tzinfo=TZ)  # a Thursday: 106 hours
INTERVAL = timedelta(minutes=15)
STORED_WITHIN_S = 30.0
# Constant loads, so that any span's use is its hours times the load.
KW = {2025: 1.0, 10: 1.75, 11: 1.4}  # last November, this October, this November
WATER_M3_PER_H = 0.2
BASE_W, STANDBY_W = 1500.0, 800.0
# A year's quotas: the electricity one is exceeded by a month at 1.4 kW, the energy one is not.
KWH_QUOTA, KGCE_QUOTA = 10.0, 100.0
AREA_M2, PEOPLE, STUDENTS = 1000, 100, 80
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, electricity at its equivalent value
COMPLETE = 0.9

SITE = """\
id: kg
name: 测试幼儿园
kind: kindergarten
timezone: Asia/Shanghai
opening_hours: {{mon: &day [{{start: "07:30", end: "17:30"}}], tue: *day, wed: *day, thu: *day, fri: *day}}
buildings:
  - id: main
    name: 教学楼
    floor_area_m2: 1000
    headcount: 100
    standby_w: {standby}
    rooms:
      - {{id: plant, name: 配电间, type: plant}}
devices:
  - {{id: em-main, kind: electricity_meter, room: plant, name: 总电表, interval_s: 900,
      rules: {{load_after_hours: {{base_load_w: {base}}}}}}}
  - {{id: wm-main, kind: water_meter, room: plant, name: 总水表, interval_s: 900,
      rules: {{water_leak: {{enabled: false}}, running_tap: {{enabled: false}}}}}}
reports: {{targets: {{electricity_kwh: 1000, water_m3: 100}}}}
students: 80
quotas: {{standard: 测试定额, kwh_per_m2: {kwh_quota}, kgce_per_person: {kgce_quota}}}
mqtt: {{url: "mqtt://127.0.0.1:{port}", client_id: "energy-report-test"}}
storage: {{data_dir: "{data_dir}"}}
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=TZ)


@dataclass
class Meters:
    """Counters that run on across the periods fed."""

    kwh: float = 1000.0
    m3: float = 50.0


def feed(gateway: Gateway, meters: Meters, first: datetime, last: datetime, kw: float, water: bool = True) -> int:
    """Readings every 15 minutes from `first` to `last`, the load `kw` since the one before."""
    sent = 0
    at = first
    hours = INTERVAL / timedelta(hours=1)
    while at <= last:
        meters.kwh += kw * hours
        meters.m3 += WATER_M3_PER_H * hours
        payloads = [("em-main", {"ts": at.isoformat(), "energy_kwh": round(meters.kwh, 3)})]
        if water:
            payloads.append(("wm-main", {"ts": at.isoformat(), "volume_m3": round(meters.m3, 3)}))
        for device, payload in payloads:
            rejected = gateway.ingestor.accept("replay", device, "telemetry", json.dumps(payload).encode(),
                                               ms(FIFTH_DAY))
            assert rejected is None, rejected
            sent += 1
        at += INTERVAL
    return sent


def stored(client: TestClient, sent: int) -> None:
    deadline = wall.monotonic() + STORED_WITHIN_S
    while (counts := accounting(client)).pending("sqlite") or counts.stored("sqlite") < sent:
        assert wall.monotonic() < deadline, f"only {counts.stored('sqlite')} of {sent} stored in time"
        wall.sleep(0.05)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(SECOND_DAY)


@pytest.fixture
def api(tmp_path: Path, clock: ManualClock) -> Iterator[TestClient]:
    port = free_port()
    site = config.parse(SITE.format(port=port, data_dir=tmp_path / "data", base=BASE_W, standby=STANDBY_W,
                                    kwh_quota=KWH_QUOTA, kgce_quota=KGCE_QUOTA), "site.yaml")
    with TestClient(create_app(site, clock, before=[lambda: embedded_broker("127.0.0.1", port)])) as client:
        gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        key = client.app.state.auth.create_api_key("tests", [Scope.READ], "test", 0)  # type: ignore[attr-defined]
        client.headers["Authorization"] = f"Bearer {key}"
        meters = Meters()
        # Each period from a quarter of an hour before its first day, so that its first hour counts.
        sent = feed(gateway, meters, day(2025, 11, 1) - INTERVAL, day(2025, 11, 6), KW[2025])
        sent += feed(gateway, meters, day(2026, 10, 1) - INTERVAL, day(2026, 10, 6), KW[10])
        sent += feed(gateway, meters, day(2026, 11, 1) - INTERVAL, datetime(2026, 11, 2, 10, 15, tzinfo=TZ), KW[11])
        stored(client, sent)
        client.app.state.meters = meters  # type: ignore[attr-defined]
        yield client


def report(api: TestClient) -> EnergyReport:
    answer = api.get("/api/v1/reports/energy", params={"month": "2026-11"})
    assert answer.status_code == 200, answer.text
    return EnergyReport.model_validate(answer.json())


def texts(r: EnergyReport, site: config.SiteConfig, lang: str = "zh-CN") -> tuple[Figures, list[str], list[str]]:
    """The key figures, the summary's sentences and the recommendations."""
    doc = energy_document(r, site, lang)
    summary, advice = doc.sections[0], doc.sections[1]
    figures = next(b for b in summary.blocks if isinstance(b, Figures))
    said = [p for b in summary.blocks if isinstance(b, Paragraphs) for p in b.items]
    return figures, said, [p for b in advice.blocks if isinstance(b, Paragraphs) for p in b.items]


def test_on_the_second_day_the_month_to_date_compares_the_same_days_and_says_it_is_too_short(
        api: TestClient) -> None:
    site: config.SiteConfig = api.app.state.gateway.site  # type: ignore[attr-defined]
    cal = SchoolCalendar(site)
    r = report(api)
    through = datetime(2026, 11, 2, 10, tzinfo=TZ)  # the end of the last whole hour
    assert (r.partial, r.through_ms, r.hours) == (True, ms(through), 34)
    assert r.end_ms == ms(day(2026, 12, 1))
    # School days: Sunday the 1st is not one, Monday the 2nd is; the whole month's beside it.
    assert r.school_days == 1
    assert r.school_days_month == sum(cal.day(date(2026, 11, d)).school_day for d in range(1, 31))
    e = r.electricity
    assert e.total == pytest.approx(34 * KW[11])
    assert [d.date.day for d in e.daily] == [1, 2]
    # Like for like: the same 34 hours of October and of last November, not the whole months.
    assert (e.previous_month.start_ms, e.previous_month.end_ms) == (
        ms(day(2026, 10, 1)), ms(datetime(2026, 10, 2, 10, tzinfo=TZ)))
    assert e.previous_month.total == pytest.approx(34 * KW[10])
    assert e.previous_month.coverage == 1.0
    assert (e.same_month_last_year.start_ms, e.same_month_last_year.end_ms) == (
        ms(day(2025, 11, 1)), ms(datetime(2025, 11, 2, 10, tzinfo=TZ)))
    assert e.same_month_last_year.total == pytest.approx(34 * KW[2025])
    # Coverage is of the elapsed hours: every one of them has readings.
    assert e.coverage == 1.0
    assert {m.device_id: m.coverage for m in r.meters} == {"em-main": 1.0, "wm-main": 1.0}
    # 34 hours is too short to compare or to call anything a saving.
    assert not e.enough_data
    assert not r.water.enough_data

    figures, said, advice = texts(r, site)
    assert [(f.note, f.tone) for f in figures.items[:2]] == [("数据不足，暂不比较", Tone.PLAIN)] * 2
    assert not any(f.tone is Tone.GOOD for f in figures.items)
    assert said[0].startswith("本报告为月初至今（截至 11 月 2 日 10:00，共 34 小时）的数据，与上月和去年同月的相同日期相比")
    assert "月初至今只有 34 小时，不足 3 天：暂不与其他月份比较，也不据此判断节约。" in said
    assert not any("目标" in p and "%" in p for p in said), said  # the target waits for the month's end
    assert not any("有数据" in p for p in advice), advice  # no coverage advice for hours still to come
    # The configured 1.5 kW base is above the building's 800 W standby: flagged in W.
    [standby] = [p for p in advice if "待机" in p]
    assert standby.startswith("教学楼：闭园时的基础负荷为 1.5 kW（设定值），高于该楼预期的待机功率 800 W；"
                              "多出的 700 W 在月初至今的 ")
    teaching = next(b for b in r.buildings if b.name == "教学楼")
    assert teaching.base_excess_kwh is not None
    assert f"约 {teaching.base_excess_kwh:,.1f} kWh ≈ ¥" in standby  # to a tenth, as the waste's: never "0 kWh ≈ ¥0.19"
    doc = energy_document(r, site)
    assert doc.title == "测试幼儿园 2026 年 11 月（月初至今）节能报告"
    assert ("开园日", f"1 天（全月 {r.school_days_month} 天）") in doc.meta

    _, said_en, advice_en = texts(r, site, "en")
    assert said_en[0].startswith("This report covers the month to date (up to 2 November 10:00, 34 hours)")
    assert next(p for p in advice_en if "standby" in p).startswith(
        "教学楼: its base load while closed is 1.5 kW (configured), above the building's expected standby of "
        "800 W; the extra 700 W over the ")


def test_on_the_fifth_day_electricity_compares_like_for_like_and_the_silent_water_meter_is_flagged(
        api: TestClient, clock: ManualClock) -> None:
    gateway: Gateway = api.app.state.gateway  # type: ignore[attr-defined]
    meters: Meters = api.app.state.meters  # type: ignore[attr-defined]
    # Electricity runs on; the water meter says nothing after the 2nd, 10:00.
    sent = int(accounting(api).stored("sqlite"))
    sent += feed(gateway, meters, datetime(2026, 11, 2, 10, 30, tzinfo=TZ), datetime(2026, 11, 5, 10, 15, tzinfo=TZ),
                 KW[11], water=False)
    stored(api, sent)
    clock.set(FIFTH_DAY)
    r = report(api)
    assert (r.partial, r.hours, r.school_days) == (True, 106, 4)
    e, w = r.electricity, r.water
    assert e.total == pytest.approx(106 * KW[11])
    assert e.previous_month.end_ms == ms(datetime(2026, 10, 5, 10, tzinfo=TZ))
    assert e.previous_month.total == pytest.approx(106 * KW[10])
    assert e.same_month_last_year.total == pytest.approx(106 * KW[2025])
    assert e.enough_data
    assert w.coverage == pytest.approx(35 / 106, abs=1e-4)  # its last reading, at 10:15, is in the 35th hour
    assert not w.enough_data

    figures, said, advice = texts(r, gateway.site)
    assert (figures.items[0].note, figures.items[0].tone) == ("比上月同期 ▼ 20.0%", Tone.GOOD)
    assert (figures.items[1].note, figures.items[1].tone) == ("数据不足，暂不比较", Tone.PLAIN)
    [power] = [p for p in said if p.startswith("月初至今用电")]
    assert "比上月同期减少 20.0%，比去年同期增加 40.0%" in power
    assert "目标" not in power
    [water] = [p for p in said if p.startswith("月初至今用水")]
    assert "只有 33% 的小时有数据（不到一半）：暂不比较，也不据此判断节约" in water
    # The silent meter is named with its share of the hours that have passed, not of the month.
    assert "总水表：月初至今只有 33% 的小时有数据，请检查表计通信；缺数据的小时不计入上面的数字。" in advice
    _, said_en, _ = texts(r, gateway.site, "en")
    [power_en] = [p for p in said_en if p.startswith("Electricity month to date")]
    assert "20.0% less than the same days last month; 40.0% more than the same days last year" in power_en

    # Completeness: readings received over those the interval (15 minutes) expects in the 106
    # hours. Electricity sent every one; water stopped after the 2nd, 10:15 and is flagged.
    uses = {m.device_id: m for m in r.meters}
    assert uses["em-main"].expected == uses["wm-main"].expected == 106 * 4
    assert (uses["em-main"].records, uses["em-main"].completeness, uses["em-main"].complete) == (424, 1.0, True)
    water_records = 34 * 4 + 2  # 1 November 00:00 to 2 November 10:15
    assert uses["wm-main"].records == water_records
    assert uses["wm-main"].completeness == pytest.approx(water_records / 424, abs=1e-4)
    assert (uses["wm-main"].completeness or 0) < COMPLETE
    assert not uses["wm-main"].complete

    # Standard coal and intensity against the year's quotas in proportion to 106 of 8,760 hours.
    kwh = 106 * KW[11]
    [coal] = [c for c in r.categories if c.utility == "electricity"]
    assert coal.code == "01000"
    assert coal.kgce == pytest.approx(kwh * KGCE_PER_KWH, abs=1e-3)
    assert r.total_kgce == pytest.approx(kwh * KGCE_PER_KWH, abs=1e-3)
    share = 106 / 8760
    got = {i.measure: i for i in r.intensity}
    assert got["kwh_per_m2"].value == pytest.approx(kwh / AREA_M2, abs=1e-4)
    assert got["kwh_per_m2"].quota_period == pytest.approx(KWH_QUOTA * share, abs=1e-4)
    assert got["kwh_per_m2"].exceeded is (kwh / AREA_M2 > KWH_QUOTA * share) is True
    assert got["kgce_per_person"].exceeded is (kwh * KGCE_PER_KWH / PEOPLE > KGCE_QUOTA * share) is False
    assert got["kgce_per_student"].value == pytest.approx(kwh * KGCE_PER_KWH / STUDENTS, abs=1e-4)
    assert got["kgce_per_student"].exceeded is None  # no quota per student entered
    assert r.quota_standard == "测试定额"

    # The document says so, in words: the quota exceeded, the one kept, the incomplete meter.
    doc = energy_document(r, gateway.site)
    [section] = [x for x in doc.sections if x.title == "分项能耗与定额"]
    [intensity] = [b for b in section.blocks if isinstance(b, Table) and b.key == "intensity"]
    judged = {row[0]: row[4] for row in intensity.rows}
    assert judged["单位面积用电（kWh/m²）"] == "超出定额"
    assert judged["人均能耗（kgce/人）"] == "未超出"
    assert "测试定额" in intensity.caption
    [table] = [b for x in doc.sections for b in x.blocks if isinstance(b, Table) and b.key == "meters"]
    column = table.columns.index("记录完整 %")
    flagged = {row[0]: tone[column] for row, tone in zip(table.rows, table.tones, strict=True)}
    assert flagged == {"总电表": Tone.PLAIN, "总水表": Tone.WARN}


def test_a_site_of_many_meters_shows_those_worth_a_look_and_lists_every_meter_in_csv(api: TestClient) -> None:
    """120 meters: the PDF and HTML show the largest of each utility, the most waste and the
    least complete data; the CSV lists them all."""
    r = report(api)
    site: config.SiteConfig = api.app.state.gateway.site  # type: ignore[attr-defined]
    like = {m.utility: m for m in r.meters}
    meters = []
    for utility in ("electricity", "water"):
        for i in range(60):
            wasted = utility == "electricity" and i >= 48  # 12 small circuits left on, waste rising with i
            meters.append(like[utility].model_copy(update={
                "device_id": f"{utility}-{i}", "name": f"{utility}-{i}", "main": False, "total": 1000.0 - i,
                "waste_kwh": float(i) if wasted else None, "completeness": 0.5 if utility == "water" and i in (
                    30, 31) else 1.0, "complete": not (utility == "water" and i in (30, 31))}))
    many = r.model_copy(update={"meters": meters})
    [table] = [b for s in energy_document(many, site).sections for b in s.blocks
               if isinstance(b, Table) and b.key == "meters"]
    assert [row[0] for row in table.rows] == [m.name for m in meters]  # every meter, for the CSV
    assert table.excerpt is not None
    shown = [table.rows[i][0] for i in table.excerpt.rows]
    largest = [f"{u}-{i}" for u in ("electricity", "water") for i in range(10)]
    most_waste = [f"electricity-{i}" for i in range(50, 60)]  # not 48 and 49: ten are named
    assert shown == [m.name for m in meters if m.name in {*largest, *most_waste, "water-30", "water-31"}]
    assert table.excerpt.note.startswith(f"共 120 块表计，这里列出 {len(shown)} 块")
    assert "（共 12 块）" in table.excerpt.note  # how many wasted, of which ten are shown
    text = render.html(energy_document(many, site))
    assert "electricity-12" not in text
    assert "electricity-55" in text
    small = r.model_copy(update={"meters": meters[:40]})
    assert all(b.excerpt is None for s in energy_document(small, site).sections for b in s.blocks
               if isinstance(b, Table))
