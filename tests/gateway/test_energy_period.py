"""A quarter's energy year on year, its metering coverage and the public disclosure sheet,
in-process: a small site whose main meter, tagged sub-meter and water meter are fed straight
into the site's store (real SQLite and rollups, a manual clock) through the third quarter of
last year and of this year, at other loads. Every expectation is counted from what was fed,
not from the report's code: the use each reading shows is tallied by the local month of its
timestamp (a counter's increase counts where the reading that shows it is). The readings are
written to the site's store as the gateway's writer writes them (the ingest path has its own
tests; a quarter and its last year through it took a minute)."""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from devices.base import Sample
from gateway import config
from gateway.app import create_app
from gateway.clock import ManualClock
from gateway.config.auth import Scope
from gateway.ingest.broker import embedded_broker
from gateway.reports.document import Table
from gateway.reports.energy_period import PeriodReport
from gateway.reports.energy_period_doc import period_document
from gateway.runtime import Gateway
from tests.services import free_port

pytestmark = pytest.mark.integration

TZ = ZoneInfo("Asia/Shanghai")
HOUR = timedelta(hours=1)
# Constant loads in each year's third quarter: the main meter, the lighting sub-meter behind it
# and the water meter.
LOADS = {2025: (1.0, 0.4, 0.2), 2026: (1.25, 0.5, 0.15)}
AREA_M2, PEOPLE = 840, 120  # two buildings' floor areas; the site's headcount
KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, electricity at its equivalent value
AFTER_QUARTER = datetime(2026, 10, 5, 9, 30, tzinfo=TZ)
MID_AUGUST = datetime(2026, 8, 15, 10, 20, tzinfo=TZ)

SITE = """\
id: kg
name: 测试幼儿园
kind: kindergarten
timezone: Asia/Shanghai
headcount: 120
opening_hours: {{mon: &day [{{start: "07:30", end: "17:30"}}], tue: *day, wed: *day, thu: *day, fri: *day}}
buildings:
  - id: main
    name: 教学楼
    floor_area_m2: 800
    headcount: 120
    rooms:
      - {{id: plant, name: 配电间, type: plant}}
      - {{id: class1, name: 小一班, type: classroom}}
  - id: shed
    name: 器材棚
    floor_area_m2: 40
    rooms:
      - {{id: shed1, name: 器材棚, type: other}}
devices:
  - {{id: em-main, kind: electricity_meter, room: plant, name: 总电表, interval_s: 3600,
      rules: {{load_after_hours: {{enabled: false}}}}}}
  - {{id: em-light, kind: electricity_meter, room: class1, name: 小一班照明, interval_s: 3600, subitem: "01A10",
      rules: {{load_after_hours: {{enabled: false}}}}}}
  - {{id: wm-main, kind: water_meter, room: plant, name: 总水表, interval_s: 3600,
      rules: {{water_leak: {{enabled: false}}, running_tap: {{enabled: false}}}}}}
quotas: {{standard: 测试定额, kgce_per_m2: 5.0}}
mqtt: {{url: "mqtt://127.0.0.1:{port}", client_id: "energy-period-test"}}
storage: {{data_dir: "{data_dir}"}}
rules: {{sample_missing: {{enabled: false}}}}
fire_patrol: {{rounds: []}}
"""


def ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class Fed:
    """What was fed: each meter's counter, and the use each reading showed by its hour."""

    def __init__(self) -> None:
        self.counters = {"em-main": 1000.0, "em-light": 200.0, "wm-main": 50.0}
        self.by_hour: dict[str, dict[datetime, float]] = defaultdict(dict)

    def use(self, device: str, start: datetime, end: datetime) -> float:
        """The use shown by readings stamped in [start, end)."""
        return sum(v for at, v in self.by_hour[device].items() if start <= at < end)


def feed(gateway: Gateway, fed: Fed, year: int) -> None:
    """Hourly readings through the third quarter of `year`, from an hour before it (that one
    is the counters' starting point: it shows no use in the quarter), written to the site's
    store as its writer does (rollups with them)."""
    at, end = datetime(year, 7, 1, tzinfo=TZ) - HOUR, datetime(year, 10, 1, tzinfo=TZ)
    loads = dict(zip(("em-main", "em-light", "wm-main"), LOADS[year], strict=True))
    samples, first = [], True
    while at < end:
        for device, per_hour in loads.items():
            if not first:
                fed.counters[device] += per_hour
                fed.by_hour[device][at] = per_hour
            metric = "volume_m3" if device.startswith("wm") else "energy_kwh"
            samples.append(Sample(device, ms(at), {metric: round(fed.counters[device], 3)}))
        first = False
        at += HOUR
    gateway.store.write(samples, [])


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(AFTER_QUARTER)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, clock: ManualClock) -> Iterator[TestClient]:
    port = free_port()
    data = tmp_path_factory.mktemp("period") / "data"
    site = config.parse(SITE.format(port=port, data_dir=data), "site.yaml")
    with TestClient(create_app(site, clock, before=[lambda: embedded_broker("127.0.0.1", port)])) as client:
        gateway: Gateway = client.app.state.gateway  # type: ignore[attr-defined]
        auth = client.app.state.auth  # type: ignore[attr-defined]
        client.app.state.keys = {  # type: ignore[attr-defined]
            "viewer": auth.create_api_key("viewer", [Scope.READ], "test", 0),
            "admin": auth.create_api_key("head", [Scope.READ, Scope.ADMIN], "test", 0)}
        client.headers["Authorization"] = f"Bearer {client.app.state.keys['viewer']}"  # type: ignore[attr-defined]
        fed = Fed()
        feed(gateway, fed, 2025)
        feed(gateway, fed, 2026)
        client.app.state.fed = fed  # type: ignore[attr-defined]
        yield client


@pytest.fixture
def fed(api: TestClient) -> Fed:
    found: Fed = api.app.state.fed  # type: ignore[attr-defined]
    return found


def period(api: TestClient, which: str) -> PeriodReport:
    answer = api.get("/api/v1/reports/energy/period", params={"period": which})
    assert answer.status_code == 200, answer.text
    return PeriodReport.model_validate(answer.json())


def q3(year: int, through: datetime | None = None) -> tuple[datetime, datetime]:
    return datetime(year, 7, 1, tzinfo=TZ), through or datetime(year, 10, 1, tzinfo=TZ)


def test_a_whole_quarter_sums_its_months_and_compares_with_last_year(api: TestClient, clock: ManualClock,
                                                                     fed: Fed) -> None:
    clock.set(AFTER_QUARTER)
    r = period(api, "2026-Q3")
    assert (r.period, r.kind, r.months, r.partial) == ("2026-Q3", "quarter", ["2026-07", "2026-08", "2026-09"], False)
    assert (r.start_ms, r.end_ms, r.through_ms) == (ms(q3(2026)[0]), ms(q3(2026)[1]), ms(q3(2026)[1]))
    assert r.hours == 92 * 24
    power = next(c for c in r.categories if c.utility == "electricity")
    water = next(c for c in r.categories if c.utility == "water")
    kwh, kwh_then = fed.use("em-main", *q3(2026)), fed.use("em-main", *q3(2025))
    assert power.total.now == pytest.approx(kwh)
    assert power.total.last_year == pytest.approx(kwh_then)
    assert power.total.coverage == 1.0
    assert power.total.change == pytest.approx(kwh / kwh_then - 1, abs=1e-4)
    assert water.total.now == pytest.approx(fed.use("wm-main", *q3(2026)))
    assert water.total.last_year == pytest.approx(fed.use("wm-main", *q3(2025)))
    assert power.kgce.now == pytest.approx(kwh * KGCE_PER_KWH, abs=1e-3)
    assert r.total_kgce.now == pytest.approx(kwh * KGCE_PER_KWH, abs=1e-3)  # water is not energy
    assert r.total_kgce.last_year == pytest.approx(kwh_then * KGCE_PER_KWH, abs=1e-3)
    # Each month as fed, and the months add up to the quarter.
    months = [datetime(2026, m, 1, tzinfo=TZ) for m in (7, 8, 9, 10)]
    assert [m.electricity_kwh for m in r.by_month] == pytest.approx(
        [fed.use("em-main", a, b) for a, b in itertools.pairwise(months)])
    # The sub-item: the tagged sub-meter's use, in its building and for the site.
    light = fed.use("em-light", *q3(2026))
    assert {(s.code, s.building_id): s.total for s in r.subitems} == pytest.approx(
        {("01A10", "main"): light, ("01A10", None): light})
    # Intensity per m² against the year's quota in proportion to the quarter's hours.
    [per_m2] = [i for i in r.intensity if i.measure == "kgce_per_m2"]
    assert per_m2.value == pytest.approx(kwh * KGCE_PER_KWH / AREA_M2, abs=1e-4)
    assert per_m2.quota_period == pytest.approx(5.0 * 92 * 24 / (365 * 24), abs=1e-4)
    assert per_m2.last_year == pytest.approx(kwh_then * KGCE_PER_KWH / AREA_M2, abs=1e-4)
    # Metering: one building of two has a meter of its own; the lighting sub-meter measures
    # a part of the main meter's use again, and that part is a sub-item.
    [electric] = [m for m in r.metering if m.utility == "electricity"]
    assert (electric.buildings, electric.metered, electric.per_unit) == (2, 1, 0.5)
    assert electric.per_zone == pytest.approx(light / kwh, abs=1e-4)
    assert electric.per_subitem == pytest.approx(light / kwh, abs=1e-4)
    # The water meter is its building's only one, with nothing behind it or tagged: no zone, no sub-item.
    [water_metering] = [m for m in r.metering if m.utility == "water"]
    assert (water_metering.per_unit, water_metering.per_zone, water_metering.per_subitem) == (0.5, 0.0, 0.0)
    # Completeness: an hourly meter fed every hour of the quarter has every reading expected.
    assert {m.device_id: (m.records, m.expected, m.complete) for m in r.meters} == dict.fromkeys(("em-main", "em-light", "wm-main"), (92 * 24, 92 * 24, True))

    # A site of many meters: the document shows the least complete, the CSV lists them all.
    site: config.SiteConfig = api.app.state.gateway.site  # type: ignore[attr-defined]
    meters = [r.meters[0].model_copy(update={"device_id": f"m{i}", "name": f"表{i}", "completeness": 1 - i / 100,
                                             "complete": i <= 10}) for i in range(60)]
    doc = period_document(r.model_copy(update={"meters": meters}), site)
    [table] = [b for s in doc.sections for b in s.blocks if isinstance(b, Table) and b.key == "completeness"]
    assert [row[0] for row in table.rows] == [f"表{i}" for i in range(59, -1, -1)]  # every meter, least complete first
    assert table.excerpt is not None
    assert [table.rows[i][0] for i in table.excerpt.rows] == [f"表{i}" for i in range(59, 49, -1)]
    assert table.excerpt.note.startswith("共 60 块表计，11 块数据完整；这里列出完整率最低的 10 块")


def test_a_quarter_in_progress_compares_the_same_days_last_year(api: TestClient, clock: ManualClock,
                                                                fed: Fed) -> None:
    clock.set(MID_AUGUST)
    r = period(api, "2026-Q3")
    through = datetime(2026, 8, 15, 10, tzinfo=TZ)  # the end of the last whole hour
    assert (r.months, r.partial, r.through_ms) == (["2026-07", "2026-08"], True, ms(through))
    power = next(c for c in r.categories if c.utility == "electricity")
    assert power.total.now == pytest.approx(fed.use("em-main", *q3(2026, through)))
    assert power.total.last_year == pytest.approx(
        fed.use("em-main", *q3(2025, datetime(2025, 8, 15, 10, tzinfo=TZ))))
    assert power.total.change == pytest.approx(LOADS[2026][0] / LOADS[2025][0] - 1, abs=1e-3)
    # A year in progress is its quarters so far: the same figure.
    year = period(api, "2026")
    assert next(c for c in year.categories if c.utility == "electricity").total.now == pytest.approx(
        power.total.now)
    # Its months before July have no readings: they add nothing to the sub-item, as to the category.
    assert {(x.code, x.building_id): x.total for x in year.subitems} == pytest.approx(
        dict.fromkeys([("01A10", "main"), ("01A10", None)], fed.use("em-light", *q3(2026, through))))
    assert period(api, "2026-08").months == ["2026-08"]


def test_the_disclosure_sheet_reads_the_quarter_s_figures_and_the_school_s_explanation(
        api: TestClient, clock: ManualClock) -> None:
    clock.set(AFTER_QUARTER)
    r = period(api, "2026-Q3")
    answer = api.get("/api/v1/reports/disclosure", params={"period": "2026-Q3"})
    assert answer.status_code == 200, answer.text
    sheet = answer.json()
    power = next(c for c in r.categories if c.utility == "electricity").total
    assert sheet["figures"]["electricity"] == power.model_dump()
    assert sheet["figures"]["kgce"] == r.total_kgce.model_dump()
    assert r.total_kgce.now is not None
    assert sheet["figures"]["kgce_per_person"]["now"] == pytest.approx(r.total_kgce.now / PEOPLE, abs=1e-4)
    assert (sheet["people"], sheet["floor_area_m2"]) == (PEOPLE, AREA_M2)
    # Electricity went up 25 % and water down 25 %: both ask for a reason; none is written yet.
    assert {"electricity", "water"} <= set(sheet["to_explain"])
    assert sheet["explanation"] is None

    text = "新增两个班级，空调使用时间延长；更换节水龙头后用水下降。"
    viewer_put = api.put("/api/v1/reports/disclosure/2026-Q3/explanation", json={"text": text})
    assert viewer_put.status_code == 403
    admin = {"Authorization": f"Bearer {api.app.state.keys['admin']}"}  # type: ignore[attr-defined]
    saved = api.put("/api/v1/reports/disclosure/2026-Q3/explanation", json={"text": text}, headers=admin)
    assert saved.status_code == 200, saved.text
    assert saved.json()["text"] == text
    assert api.get("/api/v1/reports/disclosure", params={"period": "2026-Q3"}).json()["explanation"]["text"] == text

    sheet_csv = api.get("/api/v1/reports/disclosure", params={"period": "2026-Q3", "format": "csv"})
    assert sheet_csv.status_code == 200
    assert "attachment" in sheet_csv.headers["content-disposition"]
    body = sheet_csv.content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    [row] = [x for x in rows if x and x[0] == "用电量"]
    assert float(row[2]) == round(power.now or 0)
    assert float(row[3]) == round(power.last_year or 0)
    assert float(row[4]) == pytest.approx(round((power.change or 0) * 100, 1))
    assert text in body

    pdf = api.get("/api/v1/reports/disclosure", params={"period": "2026-Q3", "format": "pdf"})
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    report_pdf = api.get("/api/v1/reports/energy/period", params={"period": "2026-Q3", "format": "pdf"})
    assert report_pdf.status_code == 200
    assert report_pdf.content.startswith(b"%PDF")


@pytest.mark.parametrize(("which", "why"), [("2026-Q5", "pattern"), ("2027", "has not begun"),
                                            ("2026-13", "pattern"), ("26-Q1", "pattern")])
def test_a_period_that_is_not_one_or_has_not_begun_is_refused_with_the_reason(
        api: TestClient, clock: ManualClock, which: str, why: str) -> None:
    clock.set(AFTER_QUARTER)
    for path in ("/api/v1/reports/energy/period", "/api/v1/reports/disclosure"):
        answer = api.get(path, params={"period": which})
        assert answer.status_code == 422, answer.text
        assert why in answer.text


def test_an_explanation_too_long_is_refused_and_an_empty_one_removes_it(api: TestClient) -> None:
    admin = {"Authorization": f"Bearer {api.app.state.keys['admin']}"}  # type: ignore[attr-defined]
    path = "/api/v1/reports/disclosure/2026-Q2/explanation"
    too_long = api.put(path, json={"text": "长" * 2001}, headers=admin)
    assert too_long.status_code == 422
    assert api.put(path, json={"text": "试运行期间数据不全。"}, headers=admin).status_code == 200
    removed = api.put(path, json={"text": "  "}, headers=admin)
    assert removed.status_code == 200
    assert removed.json() is None
    assert api.put("/api/v1/reports/disclosure/2026-Q9/explanation", json={"text": "x"},
                   headers=admin).status_code == 422
