"""A quarter's or a year's energy (季度、年度能耗), year on year, from the monthly reports of its
months (`energy.energy_report`): each figure is a sum of the months' figures, or computed from
those sums by the monthly report's own functions (`intensities`, `Metering.of`, `completeness`),
so that a quarter reads what its three months read. A month is a period too (one month).

- The period in progress covers its months begun, the last one to date (`through_ms`).
- Year on year is like for like: each month's own comparison with the same month last year
  (the same days while it is in progress), summed; its coverage is the least covered month's.
- Intensities of last year divide last year's use by today's floor area and people (the site
  file keeps no history of them).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel

from devices.base import Utility
from gateway.config import SiteConfig
from gateway.reports.energy import (
    COMPLETE,
    FIRST_YEAR,
    LAST_YEAR,
    CategoryUse,
    EnergyReport,
    Intensity,
    Metering,
    Month,
    SubitemUse,
    bounds_ms,
    completeness,
    intensities,
    subitem_use,
    sum_kgce,
)
from gateway.reports.subitems import kgce
from gateway.schedule.school_calendar import SchoolCalendar

PeriodKind = Literal["month", "quarter", "year"]
T = TypeVar("T")


class Period(BaseModel):
    """A month ("2026-10"), a quarter ("2026-Q3") or a year ("2026")."""

    kind: PeriodKind
    year: int
    number: int  # the month (1–12) or the quarter (1–4); 1 for a year

    @classmethod
    def parse(cls, text: str) -> Period:
        """ValueError for anything else, or a year outside what a month may be."""
        year_text, _, rest = text.partition("-")
        try:
            if not rest:
                period = cls(kind="year", year=int(year_text), number=1)
            elif rest[:1] in ("Q", "q"):
                period = cls(kind="quarter", year=int(year_text), number=int(rest[1:]))
            else:
                month = Month.parse(text)
                return cls(kind="month", year=month.year, number=month.month)
        except ValueError:
            period = cls(kind="year", year=0, number=1)
        if not FIRST_YEAR <= period.year <= LAST_YEAR or not 1 <= period.number <= (4 if rest else 1):
            raise ValueError(f"{text!r} is not a month (2026-10), a quarter (2026-Q3) or a year (2026) "
                             f"between {FIRST_YEAR} and {LAST_YEAR}")
        return period

    def __str__(self) -> str:
        if self.kind == "month":
            return f"{self.year:04d}-{self.number:02d}"
        return f"{self.year:04d}-Q{self.number}" if self.kind == "quarter" else f"{self.year:04d}"

    def months(self) -> list[Month]:
        first, count = {"month": (self.number, 1), "quarter": (3 * self.number - 2, 3), "year": (1, 12)}[self.kind]
        return [Month(year=self.year, month=first + i) for i in range(count)]

    def last_year(self) -> Period:
        return Period(kind=self.kind, year=self.year - 1, number=self.number)


class YearOnYear(BaseModel):
    """A figure now and the same span last year (like for like); `change` = now ÷ then − 1."""

    now: float | None
    last_year: float | None
    coverage: float  # last year's span: the least covered meter's share of its hours (as `Comparison`)
    change: float | None


class PeriodCategory(BaseModel):
    utility: Utility
    code: str
    unit: str
    total: YearOnYear
    kgce: YearOnYear  # None figures for water, which is not energy


class PeriodBuilding(BaseModel):
    building_id: str
    name: str
    electricity_kwh: float | None
    water_m3: float | None
    kgce: float | None
    floor_area_m2: float | None
    kwh_per_m2: float | None


class PeriodMeter(BaseModel):
    device_id: str
    name: str
    utility: Utility
    main: bool
    total: float | None
    records: int
    expected: int
    completeness: float | None
    complete: bool


class PeriodIntensity(Intensity):
    last_year: float | None  # last year's use over today's floor area or people
    change: float | None


class MonthFigures(BaseModel):
    """One month of the period as its monthly report has it."""

    month: str
    partial: bool
    electricity_kwh: float | None
    water_m3: float | None
    kgce: float | None


class PeriodReport(BaseModel):
    site_id: str
    site_name: str
    period: str
    kind: PeriodKind
    months: list[str]  # the months begun
    start_ms: int
    end_ms: int
    through_ms: int
    partial: bool
    hours: int
    generated_ms: int
    school_days: int
    floor_area_m2: float | None
    people: int | None  # 用能人数: staff and children, as the site file counts them
    students: int | None
    categories: list[PeriodCategory]
    total_kgce: YearOnYear
    buildings: list[PeriodBuilding]
    subitems: list[SubitemUse]
    intensity: list[PeriodIntensity]
    metering: list[Metering]
    meters: list[PeriodMeter]
    quota_standard: str
    by_month: list[MonthFigures]


def period_report(site: SiteConfig, cal: SchoolCalendar, period: Period, reports: Sequence[EnergyReport],
                  now_ms: int) -> PeriodReport:
    """The period from the monthly reports of its months begun (at least one), in order."""
    first, last = reports[0], reports[-1]
    hours = sum(r.hours for r in reports)
    categories = [_category([c for r in reports for c in r.categories if c.utility == u])
                  for u in dict.fromkeys(c.utility for c in first.categories)]
    energy = [c for c in categories if c.kgce.now is not None]
    total_kgce = _yoy(sum_kgce(c.kgce.now for c in energy), sum_kgce(c.kgce.last_year for c in energy),
                      min((c.total.coverage for c in energy), default=0.0))
    power = next(c.total for c in categories if c.utility == "electricity")
    water = next(c.total for c in categories if c.utility == "water")
    now = intensities(site, period.year, hours, total_kgce.now, power.now, water.now)
    then = {i.measure: i.value
            for i in intensities(site, period.year - 1, hours, total_kgce.last_year, power.last_year, water.last_year)}
    return PeriodReport(
        site_id=site.id, site_name=site.name, period=str(period), kind=period.kind,
        months=[r.month for r in reports], start_ms=first.start_ms, end_ms=bounds_ms(cal, period.months()[-1])[1],
        through_ms=last.through_ms, partial=last.partial or len(reports) < len(period.months()), hours=hours,
        generated_ms=now_ms, school_days=sum(r.school_days for r in reports),
        floor_area_m2=site.floor_area_m2() or None, people=site.people() or None, students=site.students,
        categories=categories, total_kgce=total_kgce, buildings=_buildings(reports), subitems=_subitems(reports),
        intensity=[PeriodIntensity(**i.model_dump(), last_year=then[i.measure],
                                   change=_change(i.value, then[i.measure])) for i in now],
        metering=[_metering([x for r in reports for x in r.metering if x.utility == m.utility]) for m in last.metering],
        meters=_meters(reports), quota_standard=site.quotas.standard,
        by_month=[MonthFigures(month=r.month, partial=r.partial, electricity_kwh=r.electricity.total,
                               water_m3=r.water.total, kgce=r.total_kgce) for r in reports],
    )


def _known_sum(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 3) if known else None


def _all_sum(values: Iterable[float | None]) -> float | None:
    """A sum that is unknown when any part is (a month without data is not a month of nothing)."""
    found = list(values)
    return None if any(v is None for v in found) else round(sum(v or 0.0 for v in found), 3)


def _change(now: float | None, then: float | None) -> float | None:
    return round(now / then - 1, 4) if now is not None and then else None


def _yoy(now: float | None, then: float | None, coverage: float) -> YearOnYear:
    return YearOnYear(now=now, last_year=then, coverage=coverage, change=_change(now, then))


def _category(months: list[CategoryUse]) -> PeriodCategory:
    """The months summed; last year, the same months that have a use this year (a month with
    no readings yet, this year, is left out on both sides), unknown if one of them has none."""
    c = months[0]
    total = _known_sum(m.total for m in months)
    compared = [m.same_month_last_year for m in months if m.total is not None]
    then = _all_sum(x.total for x in compared) if compared else None
    coverage = min((x.coverage for x in compared), default=0.0)
    return PeriodCategory(utility=c.utility, code=c.code, unit=c.unit, total=_yoy(total, then, coverage),
                          kgce=_yoy(_round(kgce(c.utility, total)), _round(kgce(c.utility, then)), coverage))


def _buildings(reports: Sequence[EnergyReport]) -> list[PeriodBuilding]:
    """Each building's months summed, the most electricity per m² (or in all) first, as a month's."""
    out = []
    for found in _grouped((b for r in reports for b in r.buildings), lambda b: b.building_id):
        b = found[-1]
        kwh = _known_sum(x.electricity_kwh for x in found)
        out.append(PeriodBuilding(building_id=b.building_id, name=b.name, electricity_kwh=kwh,
                                  water_m3=_known_sum(x.water_m3 for x in found),
                                  kgce=_known_sum(x.kgce for x in found),
                                  floor_area_m2=b.floor_area_m2,
                                  kwh_per_m2=_round(kwh / b.floor_area_m2, 4) if kwh is not None and b.floor_area_m2
                                  else None))
    by_area = all(b.kwh_per_m2 is not None for b in out)
    return sorted(out, key=lambda b: -((b.kwh_per_m2 if by_area else b.electricity_kwh) or 0))


def _subitems(reports: Sequence[EnergyReport]) -> list[SubitemUse]:
    """Each sub-item's months with readings summed, as its category's total is (a month
    without readings adds nothing), as the last month lists them."""
    months: dict[tuple[str, str | None], list[float | None]] = defaultdict(list)
    for r in reports:
        for s in r.subitems:
            months[s.code, s.building_id].append(s.total)
    out = []
    for s in reports[-1].subitems:
        total = _known_sum(months[s.code, s.building_id])
        out.append(subitem_use(s.code, s.building_id, s.utility, total, s.plus, s.minus))
    return out


def _metering(months: list[Metering]) -> Metering:
    m = months[-1]
    return Metering.of(m.utility, m.buildings, m.metered, _known_sum(x.main for x in months),
                       _known_sum(x.zoned for x in months), _known_sum(x.subitemized for x in months))


def _meters(reports: Sequence[EnergyReport]) -> list[PeriodMeter]:
    out = []
    for found in _grouped((m for r in reports for m in r.meters), lambda m: m.device_id):
        m = found[-1]
        records, expected = sum(x.records for x in found), sum(x.expected for x in found)
        share = completeness(records, expected)
        out.append(PeriodMeter(device_id=m.device_id, name=m.name, utility=m.utility, main=m.main,
                               total=_known_sum(x.total for x in found), records=records, expected=expected,
                               completeness=share, complete=share is not None and share >= COMPLETE))
    return out


def _grouped(items: Iterable[T], key: Callable[[T], str]) -> list[list[T]]:
    """`items` by `key`, each group in the order met (a figure's months, oldest first)."""
    groups: dict[str, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return list(groups.values())


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
