"""The district view of three schools sharing one state database (tests/district_site.py):
the league figures against what was written, each school's figures against its own monthly
report, the ranking and the reasons; the API's access (district account, school account, no
login) and the district's report as PDF (its text through pdftotext) and CSV."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gateway.alerting.alerts import AlertStore
from gateway.auth.audit import AuditTrail
from gateway.clock import to_ms
from gateway.district.view import League, league
from gateway.reports.disclosure import DisclosureNotes
from gateway.reports.energy import Month, energy_report, leak_alerts, load_alerts
from gateway.rules.learned import LearnedStore
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from tests.district_site import HOURS, MONTH, PASSWORD, SCHOOLS, WASTE_KWH, District, build
from tests.services import require_binary


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory) -> Iterator[District]:
    yield from build(tmp_path_factory.mktemp("district"))


@pytest.fixture(scope="module")
def october(district: District) -> League:
    return league(district.sources, Month.parse(MONTH))


@pytest.fixture(scope="module")
def client(district: District) -> Iterator[TestClient]:
    with TestClient(district.app) as client:
        yield client


def _login(client: TestClient, user: str) -> dict[str, str]:
    answer = client.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def test_each_schools_figures_are_what_its_meters_recorded(october: League) -> None:
    rows = {s.site_id: s for s in october.schools}
    assert set(rows) == {s.id for s in SCHOOLS}
    for school in SCHOOLS:
        row = rows[school.id]
        kwh, m3 = school.kw * HOURS, school.m3_per_h * HOURS
        assert row.name == school.name
        assert (row.floor_area_m2, row.headcount) == (school.area_m2, school.people)
        assert row.electricity_kwh == pytest.approx(kwh)
        assert row.kwh_per_m2 == pytest.approx(kwh / school.area_m2, abs=1e-4)
        assert row.kwh_per_person == pytest.approx(kwh / school.people, abs=1e-4)
        assert row.water_m3 == pytest.approx(m3)
        assert row.water_m3_per_person == pytest.approx(m3 / school.people, abs=1e-4)
        if school.kw_last_year is None:
            assert row.last_year_kwh is None
            assert row.change_vs_last_year is None
        else:
            assert row.last_year_kwh == pytest.approx(school.kw_last_year * HOURS)
            assert row.change_vs_last_year == pytest.approx(school.kw / school.kw_last_year - 1, abs=1e-4)
        assert row.ledger_days == 31
        assert row.ledger_signed == school.signed_days
        assert row.ledger_completion == pytest.approx(school.signed_days / 31, abs=1e-4)
    assert rows["east"].waste_kwh == WASTE_KWH
    assert (rows["east"].open_alerts.critical, rows["east"].open_alerts.minor) == (1, 1)
    assert rows["west"].open_alerts.total == 0
    assert [rows[s.id].overdue_orders for s in SCHOOLS] == [0, 1, 0]


def test_each_schools_figures_are_its_own_monthly_reports(district: District, october: League) -> None:
    """The school's report made as its API makes it (gateway/api/energy.py): one story."""
    db, month = district.sources.db, Month.parse(MONTH)
    for row in october.schools:
        site = district.site(row.site_id)
        cal = SchoolCalendar(site)
        alerts = AlertStore(db, site, AuditTrail(db, site.id), Roster(site, cal), district.clock, lambda _: None)
        own = energy_report(site, cal, district.sources.readings(site.id), leak_alerts(alerts, cal, month),
                            load_alerts(alerts, cal, month), month, october.generated_ms,
                            LearnedStore(db, site.id).base_loads())
        e, w = own.electricity, own.water
        assert (row.electricity_kwh, row.kwh_per_m2, row.kwh_per_person) == (e.total, e.per_m2, e.per_person)
        assert (row.water_m3, row.water_m3_per_person) == (w.total, w.per_person)
        assert (row.after_hours_share, row.waste_kwh, row.coverage) == (e.after_hours_share, own.waste_kwh,
                                                                         e.coverage)
        assert row.after_hours_share is not None
        assert 0 < row.after_hours_share < 1


def test_schools_rank_by_intensity_and_the_district_adds_up(october: League) -> None:
    intensity = {s.id: s.kw * HOURS / s.area_m2 for s in SCHOOLS}
    expected = sorted(intensity, key=lambda i: -intensity[i])
    assert [s.site_id for s in october.schools] == expected
    assert [s.rank for s in october.schools] == [1, 2, 3]
    totals = october.totals
    assert not october.partial
    assert totals.schools == len(SCHOOLS)
    assert totals.electricity_kwh == pytest.approx(sum(s.kw * HOURS for s in SCHOOLS))
    assert totals.water_m3 == pytest.approx(sum(s.m3_per_h * HOURS for s in SCHOOLS))
    assert totals.kwh_per_m2 == pytest.approx(sum(s.kw for s in SCHOOLS) * HOURS / sum(s.area_m2 for s in SCHOOLS),
                                              abs=1e-4)
    assert totals.median_kwh_per_m2 == pytest.approx(sorted(intensity.values())[1], abs=1e-4)
    assert totals.ledger_signed == sum(s.signed_days for s in SCHOOLS)
    assert totals.ledger_days == 31 * len(SCHOOLS)
    assert (totals.open_alerts.total, totals.overdue_orders) == (2, 1)


def test_the_schools_that_need_a_look_say_why(october: League) -> None:
    reasons = {s.site_id: {r.kind: r for r in s.attention} for s in october.schools}
    # West: most per m² (well above the median), an order past due, 10 of 31 days signed.
    assert set(reasons["west"]) == {"intensity", "orders", "ledger"}
    assert "高出全区中位数" in reasons["west"]["intensity"].zh
    assert reasons["west"]["ledger"].zh == "安全台账只签了 10/31 天"
    assert reasons["west"]["orders"].en == "1 work order past due and not done"
    # East: a critical alert open (the minor one does not count); North: 30 of 31 signed is enough.
    assert set(reasons["east"]) == {"alerts"}
    assert reasons["east"]["alerts"].zh == "1 条紧急或重要告警未恢复"
    assert reasons["north"] == {}
    assert october.totals.attention == 2


def test_a_month_not_begun_is_refused(district: District) -> None:
    with pytest.raises(ValueError, match="has not begun"):
        league(district.sources, Month.parse("2026-12"))


def test_only_a_district_account_reads_the_district(client: TestClient) -> None:
    query = {"month": MONTH}
    assert client.get("/api/v1/district/schools", params=query).status_code == 401
    school = client.get("/api/v1/district/schools", params=query, headers=_login(client, "principal-east"))
    assert school.status_code == 403
    assert "区级账号" in school.json()["detail"]["zh"]
    assert "district account" in school.json()["detail"]["en"]
    refused = client.get("/api/v1/district/report", params=query | {"format": "csv"},
                         headers=_login(client, "principal-east"))
    assert refused.status_code == 403
    # A school's admin signed in at the district's app passes none of its checks: it must not
    # manage the district's accounts.
    users = client.get("/api/v1/users", headers=_login(client, "principal-east"))
    assert users.status_code == 403
    assert "区级账号" in users.json()["detail"]["zh"]
    answer = client.get("/api/v1/district/schools", params=query, headers=_login(client, "bureau-zhou"))
    assert answer.status_code == 200
    assert [s["site_id"] for s in answer.json()["schools"]] == ["west", "east", "north"]
    future = client.get("/api/v1/district/schools", params={"month": "2027-01"}, headers=_login(client, "bureau-zhou"))
    assert future.status_code == 422


def test_the_report_is_a_chinese_pdf_with_every_school(client: TestClient, tmp_path: Path) -> None:
    answer = client.get("/api/v1/district/report", params={"month": MONTH, "format": "pdf"},
                        headers=_login(client, "bureau-zhou"))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert "district-2026-10.pdf" in answer.headers["content-disposition"]
    path = tmp_path / "district.pdf"
    path.write_bytes(answer.content)
    pdftotext = require_binary("pdftotext", "poppler-utils")
    text = re.sub(r"\s+", "", subprocess.run([pdftotext, "-layout", str(path), "-"], check=True,
                                             capture_output=True, text=True).stdout)
    assert "全区学校2026年10月月报" in text
    for school in SCHOOLS:
        assert school.name in text
    assert "需要关注的学校" in text
    assert "西城幼儿园：每平方米用电6.70kWh" in text
    assert "安全台账只签了10/31天" in text


def test_the_csv_has_every_schools_row(client: TestClient) -> None:
    answer = client.get("/api/v1/district/report", params={"month": MONTH, "format": "csv", "lang": "en"},
                        headers=_login(client, "bureau-zhou"))
    assert answer.status_code == 200
    rows = list(csv.reader(io.StringIO(answer.text.removeprefix("\ufeff"))))
    header = next(r for r in rows if "School" in r and "kWh/m²" in r)
    table = rows[rows.index(header) + 1:][:len(SCHOOLS)]
    by_name = {r[header.index("School")]: r for r in table}
    assert set(by_name) == {s.name for s in SCHOOLS}
    for school in SCHOOLS:
        assert float(by_name[school.name][header.index("kWh")]) == pytest.approx(school.kw * HOURS)


def test_a_month_in_progress_counts_the_days_ended_and_ranks_what_has_readings(district: District) -> None:
    november = league(district.sources, Month.parse("2026-11"))  # the 3rd, noon: no readings written yet
    assert november.partial
    assert [s.ledger_days for s in november.schools] == [2, 2, 2]  # the 1st and the 2nd
    assert all(s.ledger_signed == 0 for s in november.schools)
    assert [s.rank for s in november.schools] == [None, None, None]
    assert [s.name for s in november.schools] == sorted(s.name for s in SCHOOLS)
    # 60 hours without readings: too early to call the data incomplete; not when the month is old.
    assert all("data" not in {r.kind for r in s.attention} for s in november.schools)
    district.clock.advance(timedelta(days=3))
    try:
        later = league(district.sources, Month.parse("2026-11"))
    finally:
        district.clock.advance(-timedelta(days=3))
    assert all("data" in {r.kind for r in s.attention} for s in later.schools)
    assert "电表数据只覆盖 0% 的时段" in later.schools[0].attention[-1].zh
    assert november.totals.electricity_kwh is None
    assert november.totals.median_kwh_per_m2 is None


def test_every_schools_disclosure_is_its_own_sheet_with_its_explanation(district: District,
                                                                         client: TestClient) -> None:
    east = district.site("east")
    DisclosureNotes(district.sources.db, east.id, AuditTrail(district.sources.db, east.id)).put(
        MONTH, "新校区投入使用，用电增加。", "principal-east", to_ms(district.clock.now()))
    answer = client.get("/api/v1/district/disclosure", params={"period": MONTH}, headers=_login(client, "bureau-zhou"))
    assert answer.status_code == 200, answer.text
    sheets = {s["site_id"]: s for s in answer.json()["schools"]}
    assert set(sheets) == {s.id for s in SCHOOLS}
    for school in SCHOOLS:
        sheet = sheets[school.id]
        power = sheet["figures"]["electricity"]
        assert power["now"] == pytest.approx(school.kw * HOURS)
        assert (sheet["people"], sheet["floor_area_m2"]) == (school.people, school.area_m2)
        assert sheet["figures"]["kgce_per_person"]["now"] == pytest.approx(
            school.kw * HOURS * 0.1229 / school.people, abs=1e-3)
        if school.kw_last_year is None:
            assert power["last_year"] is None
            assert "electricity" not in sheet["to_explain"]
        else:
            assert power["last_year"] == pytest.approx(school.kw_last_year * HOURS)
            assert power["change"] == pytest.approx(school.kw / school.kw_last_year - 1, abs=1e-4)
            assert ("electricity" in sheet["to_explain"]) == (school.kw != school.kw_last_year)
    assert sheets["east"]["explanation"] == "新校区投入使用，用电增加。"
    assert sheets["north"]["explanation"] is None

    sheet_csv = client.get("/api/v1/district/disclosure", params={"period": MONTH, "format": "csv"},
                           headers=_login(client, "bureau-zhou"))
    assert sheet_csv.status_code == 200
    rows = list(csv.reader(io.StringIO(sheet_csv.text.removeprefix("\ufeff"))))
    by_name = {r[0]: r for r in rows if r and r[0] in {s.name for s in SCHOOLS}}
    assert by_name["东城小学"][-1] == "新校区投入使用，用电增加。"
    assert by_name["西城幼儿园"][-1] == ""  # nothing to compare, nothing to explain
    school_login = client.get("/api/v1/district/disclosure", params={"period": MONTH},
                              headers=_login(client, "principal-east"))
    assert school_login.status_code == 403
    assert client.get("/api/v1/district/disclosure", params={"period": "2027-Q1"},
                      headers=_login(client, "bureau-zhou")).status_code == 422
