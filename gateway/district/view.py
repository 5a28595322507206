"""The district view: every school of the deployment for one month, side by side (a league
table), with the district's totals and the schools that need a look, and why.

A school's energy figures are its own monthly report's (`gateway.reports.energy.energy_report`,
with the month's leak and load alerts and the learned base loads, as the school's API calls it):
the league table never computes a kWh of its own, so a school's figure here is the figure in
its report. The rest is read from the school's stores in the state database:

- open alerts by severity, and work orders not done by their due time: as they stand now;
- the daily record's completion (台账): of the month's days that have ended, those whose record
  its inspector (检查人) has signed (signing needs every item checked: a blank ledger cannot be
  signed), over those days.

The whole view is computed in the calling thread and reads SQLite or PostgreSQL: call it in a
worker thread (`asyncio.to_thread`). Its stores are its own, opened for the answer: the
district process need not run a school to report on it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from typing import Final, Protocol

from pydantic import BaseModel, Field

from gateway.alerting.alerts import AlertStore, Notice
from gateway.alerting.severity import Severity
from gateway.alerting.work_orders import Status, WorkOrders
from gateway.auth.audit import AuditTrail
from gateway.clock import Clock, to_ms
from gateway.config import SiteConfig
from gateway.reports.checks import ManualChecks
from gateway.reports.disclosure import DisclosureNotes, SheetRow, figures, rows_of, to_explain
from gateway.reports.energy import (
    MIN_COVERAGE,
    MIN_HOURS,
    EnergyReport,
    Month,
    bounds_ms,
    energy_report,
    leak_alerts,
    load_alerts,
)
from gateway.reports.energy_doc import comparable
from gateway.reports.energy_period import Period, YearOnYear, period_report
from gateway.rules.learned import LearnedStore
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.readings import ReadingStore
from gateway.storage.state import StateDatabase

# A school needs a look when its electricity per m² is this much above the district's median…
INTENSITY_ABOVE_MEDIAN: Final = 0.25
# …when fewer than this share of its ended days have a signed daily record…
LEDGER_COMPLETE: Final = 0.9
# …when it has an open alert at least this severe, or a work order past its due time, or its
# main electricity meters have readings in fewer than MIN_COVERAGE of the period's hours (once
# MIN_HOURS have passed).
ALERT_ATTENTION: Final = Severity.MAJOR
_ORDERS_PAGE: Final = 100_000


class DistrictSources(Protocol):
    """What the district process gives the view (`app.state.district`): the state database, the
    clock, every school with its settings as stored, and each school's readings, opened on
    demand and kept by the sources (the view never closes them)."""

    @property
    def db(self) -> StateDatabase: ...
    @property
    def clock(self) -> Clock: ...
    def sites(self) -> list[SiteConfig]: ...
    def readings(self, site_id: str) -> ReadingStore: ...


class OpenAlerts(BaseModel):
    """A school's alerts not cleared, by severity."""

    critical: int = 0
    major: int = 0
    minor: int = 0
    warning: int = 0

    @property
    def total(self) -> int:
        return self.critical + self.major + self.minor + self.warning

    def at_least(self, severity: Severity) -> int:
        return sum(getattr(self, s.value) for s in Severity if s.rank >= severity.rank)


class Reason(BaseModel):
    """Why a school needs a look, in words."""

    kind: str = Field(description="intensity, alerts, orders, ledger or data")
    zh: str
    en: str


class School(BaseModel):
    site_id: str
    name: str
    rank: int | None = Field(description="by electricity per m², most first; None without a floor area or readings")
    floor_area_m2: float | None
    headcount: int | None
    electricity_kwh: float | None
    kwh_per_m2: float | None
    kwh_per_person: float | None
    water_m3: float | None
    water_m3_per_person: float | None
    after_hours_share: float | None = Field(description="of electricity, by the school calendar")
    waste_kwh: float | None = Field(description="left on after hours, as the load alerts counted it")
    hours: int = Field(description="the period's elapsed hours")
    coverage: float = Field(description="the share of the period's hours with electricity readings (least covered "
                                        "main meter)")
    last_year_kwh: float | None = Field(description="the same month (days) last year, where nearly every hour has "
                                                    "readings")
    change_vs_last_year: float | None = Field(description="electricity, as a share: 0.1 is 10% more")
    open_alerts: OpenAlerts
    overdue_orders: int = Field(description="work orders not done and past their due time, now")
    ledger_days: int = Field(description="the month's days that have ended")
    ledger_signed: int = Field(description="of those, days whose daily record the inspector signed")
    ledger_completion: float | None
    attention: list[Reason]


class Totals(BaseModel):
    schools: int
    electricity_kwh: float | None
    water_m3: float | None
    floor_area_m2: float | None = Field(description="of the schools with both an area and electricity readings")
    kwh_per_m2: float | None = Field(description="their electricity over their area")
    median_kwh_per_m2: float | None
    waste_kwh: float | None
    open_alerts: OpenAlerts
    overdue_orders: int
    ledger_days: int
    ledger_signed: int
    ledger_completion: float | None
    attention: int = Field(description="schools that need a look")


class League(BaseModel):
    month: str
    partial: bool = Field(description="the month is in progress: figures are its month to date")
    generated_ms: int
    timezone: str = Field(description="the schools' (the first's), in which times are written")
    totals: Totals
    schools: list[School] = Field(description="ranked: most electricity per m² first, then the schools without")


def league(sources: DistrictSources, month: Month) -> League:
    """Every school's month (to date), ranked, with the district's totals. Raises ValueError
    for a month that has not begun."""
    now_ms = to_ms(sources.clock.now())
    sites = [(site, SchoolCalendar(site)) for site in sources.sites()]
    spans = [bounds_ms(cal, month) for _, cal in sites]
    if sites and all(start > now_ms for start, _ in spans):
        raise ValueError(f"{month} has not begun")
    rows = [_school(sources, site, cal, month, now_ms) for site, cal in sites]
    areas = [r.kwh_per_m2 for r in rows if r.kwh_per_m2 is not None]
    median = statistics.median(areas) if areas else None
    rows = [r.model_copy(update={"attention": _reasons(r, median)}) for r in rows]
    ranked = sorted((r for r in rows if r.kwh_per_m2 is not None), key=lambda r: -(r.kwh_per_m2 or 0))
    rest = sorted((r for r in rows if r.kwh_per_m2 is None), key=lambda r: r.name)
    schools = [r.model_copy(update={"rank": i}) for i, r in enumerate(ranked, 1)] + rest
    return League(month=str(month), partial=any(now_ms < end for _, end in spans), generated_ms=now_ms,
                  timezone=sites[0][0].timezone if sites else SiteConfig.model_fields["timezone"].default,
                  totals=_totals(schools, median), schools=schools)


def _read_only(notice: Notice) -> None:
    raise RuntimeError(f"the district view only reads alerts; it was asked to send {notice.transition}")


def _alerts(sources: DistrictSources, site: SiteConfig, cal: SchoolCalendar) -> AlertStore:
    return AlertStore(sources.db, site, AuditTrail(sources.db, site.id), Roster(site, cal), sources.clock, _read_only)


def _monthly(sources: DistrictSources, site: SiteConfig, cal: SchoolCalendar, alerts: AlertStore,
             months: list[Month], now_ms: int) -> list[EnergyReport]:
    """The school's monthly reports, made as its API makes them (gateway/api/energy.py)."""
    learned = LearnedStore(sources.db, site.id).base_loads()
    return [energy_report(site, cal, sources.readings(site.id), leak_alerts(alerts, cal, month),
                          load_alerts(alerts, cal, month), month, now_ms, learned) for month in months]


def _school(sources: DistrictSources, site: SiteConfig, cal: SchoolCalendar, month: Month, now_ms: int) -> School:
    """The school's row; its energy figures from its monthly report."""
    db = sources.db
    audit = AuditTrail(db, site.id)
    alerts = _alerts(sources, site, cal)
    report, = _monthly(sources, site, cal, alerts, [month], now_ms)
    e, w = report.electricity, report.water
    last_year = comparable(e.same_month_last_year) if e.enough_data else None
    by_severity = Counter(a.severity.value for a in alerts.open_alerts())
    orders = WorkOrders(db, site, audit, sources.clock, site.storage.data_dir / "photos")
    overdue = [o for o in orders.find(overdue=True, limit=_ORDERS_PAGE) if o.status is not Status.DONE]
    ended = [d for d in month.days() if cal.day_bounds_ms(d)[1] <= now_ms]
    signed = {s.day for s in ManualChecks(db, site.id, audit, sources.clock).signatures(ended[0], ended[-1])
              if s.role == "inspector"} if ended else set()
    return School(
        site_id=site.id, name=site.name, rank=None, floor_area_m2=site.floor_area_m2(), headcount=site.people(),
        electricity_kwh=e.total, kwh_per_m2=e.per_m2, kwh_per_person=e.per_person,
        water_m3=w.total, water_m3_per_person=w.per_person, after_hours_share=e.after_hours_share,
        waste_kwh=report.waste_kwh, hours=report.hours, coverage=e.coverage, last_year_kwh=last_year,
        change_vs_last_year=round((e.total - last_year) / last_year, 4) if e.total is not None and last_year
        else None,
        open_alerts=OpenAlerts(**by_severity), overdue_orders=len(overdue),
        ledger_days=len(ended), ledger_signed=len(signed),
        ledger_completion=round(len(signed) / len(ended), 4) if ended else None,
        attention=[],
    )


class SchoolSheet(BaseModel):
    """A school's public disclosure of the period: the figures of its own sheet
    (gateway/reports/disclosure.py) and its explanation."""

    site_id: str
    name: str
    people: int | None
    floor_area_m2: float | None
    figures: dict[str, YearOnYear] = Field(description="as the school's sheet: electricity, water, kgce, "
                                                       "kgce_per_m2, kgce_per_person, kwh_per_person, "
                                                       "water_m3_per_person (and gas, heat where metered)")
    to_explain: list[str] = Field(description="figures whose change asks for an explanation")
    explanation: str | None


class Disclosures(BaseModel):
    period: str
    partial: bool
    generated_ms: int
    timezone: str
    rows: list[SheetRow] = Field(description="the sheets' rows in order, with their words and units")
    schools: list[SchoolSheet] = Field(description="by name")


def disclosures(sources: DistrictSources, period: Period) -> Disclosures:
    """Every school's disclosure of `period`, its figures from its own period report. Raises
    ValueError for a period that has not begun."""
    now_ms = to_ms(sources.clock.now())
    out, partial = [], False
    for site in sources.sites():
        cal = SchoolCalendar(site)
        months = [m for m in period.months() if bounds_ms(cal, m)[0] <= now_ms]
        if not months:
            continue
        r = period_report(site, cal, period, _monthly(sources, site, cal, _alerts(sources, site, cal), months,
                                                      now_ms), now_ms)
        partial |= r.partial
        said = DisclosureNotes(sources.db, site.id, AuditTrail(sources.db, site.id)).get(r.period)
        out.append(SchoolSheet(site_id=site.id, name=site.name, people=r.people, floor_area_m2=r.floor_area_m2,
                               figures=figures(r), to_explain=to_explain(r),
                               explanation=None if said is None else said.text))
    if not out and sources.sites():
        raise ValueError(f"{period} has not begun")
    sites = sources.sites()
    return Disclosures(period=str(period), partial=partial, generated_ms=now_ms,
                       timezone=sites[0].timezone if sites else SiteConfig.model_fields["timezone"].default,
                       rows=rows_of({key: True for s in out for key in s.figures}),
                       schools=sorted(out, key=lambda x: x.name))


def _reasons(s: School, median: float | None) -> list[Reason]:
    out = []
    if s.kwh_per_m2 is not None and median and s.kwh_per_m2 > median * (1 + INTENSITY_ABOVE_MEDIAN):
        above = round((s.kwh_per_m2 / median - 1) * 100)
        out.append(Reason(kind="intensity",
                          zh=f"每平方米用电 {s.kwh_per_m2:.2f} kWh，高出全区中位数 {above}%",
                          en=f"{s.kwh_per_m2:.2f} kWh per m², {above}% above the district's median"))
    serious = s.open_alerts.at_least(ALERT_ATTENTION)
    if serious:
        out.append(Reason(kind="alerts", zh=f"{serious} 条紧急或重要告警未恢复",
                          en=f"{serious} critical or major alert{'s' if serious > 1 else ''} still open"))
    if s.overdue_orders:
        n = s.overdue_orders
        out.append(Reason(kind="orders", zh=f"{n} 张工单已过期限未完成",
                          en=f"{n} work order{'s' if n > 1 else ''} past due and not done"))
    if s.ledger_completion is not None and s.ledger_completion < LEDGER_COMPLETE:
        out.append(Reason(kind="ledger",
                          zh=f"安全台账只签了 {s.ledger_signed}/{s.ledger_days} 天",
                          en=f"the daily safety record is signed on {s.ledger_signed} of {s.ledger_days} days"))
    if s.hours >= MIN_HOURS and s.coverage < MIN_COVERAGE:  # the month's first days say nothing yet
        out.append(Reason(kind="data", zh=f"电表数据只覆盖 {s.coverage * 100:.0f}% 的时段，用电数字不全",
                          en=f"electricity readings cover only {s.coverage * 100:.0f}% of the hours: figures "
                             "are incomplete"))
    return out


def _sum(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def _totals(schools: list[School], median: float | None) -> Totals:
    both = [s for s in schools if s.kwh_per_m2 is not None and s.floor_area_m2 and s.electricity_kwh is not None]
    area = sum(s.floor_area_m2 or 0 for s in both)
    days, signed = sum(s.ledger_days for s in schools), sum(s.ledger_signed for s in schools)
    return Totals(
        schools=len(schools), electricity_kwh=_sum([s.electricity_kwh for s in schools]),
        water_m3=_sum([s.water_m3 for s in schools]), floor_area_m2=round(area, 1) if both else None,
        kwh_per_m2=round(sum(s.electricity_kwh or 0 for s in both) / area, 4) if area else None,
        median_kwh_per_m2=None if median is None else round(median, 4),
        waste_kwh=_sum([s.waste_kwh for s in schools]),
        open_alerts=OpenAlerts(**{s.value: sum(getattr(x.open_alerts, s.value) for x in schools) for s in Severity}),
        overdue_orders=sum(s.overdue_orders for s in schools), ledger_days=days, ledger_signed=signed,
        ledger_completion=round(signed / days, 4) if days else None,
        attention=sum(1 for s in schools if s.attention),
    )
