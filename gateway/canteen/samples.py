"""The 留样 register: every dish of every meal, weighed, labelled and kept in a sample fridge
for its retention, then discarded (《学校食品安全与营养健康管理规定》; settings `samples:`,
gateway/config/samples.py).

One row per sample in the state database, each commit fsync'd: who took it and who discarded
it are the signed-in logins, and every action is also an audit-trail entry. The register is
a `Register` of the daily record (one item per meal, `sample:<meal>`) and judges the 留样
rules (gateway/rules/samples.py) on the watchdog's clock from its table, so that another
replica or a restarted gateway raises and clears the same alerts. The fridge's temperature
over each sample's retention is computed in one place (`retained`), for the register's page
and the canteen record alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any, Final, TypeVar

from sqlalchemy import BigInteger, Column, Float, Index, Table, Text, select, update

from devices import kinds
from gateway.alerting.alerts import Alert, AlertFilter, AlertStore
from gateway.auth.audit import AuditTrail
from gateway.auth.people import Directory
from gateway.clock import Clock, from_ms, to_ms
from gateway.config import Device, SiteConfig
from gateway.config.samples import Meal
from gateway.refused import Refused
from gateway.reports.judging import MAX_POINTS, record_item
from gateway.reports.safety_model import Category, Item, ItemStatus, RetainedSample, RetentionTemperature
from gateway.reports.safety_series import gaps, held, total_ms, where
from gateway.rules.base import Finding, RuleSpec
from gateway.rules.engine import Evidence
from gateway.rules.health import silent_after_ms
from gateway.rules.params import RuleParams
from gateway.rules.samples import RULES, SAMPLE_DISCARDED_EARLY, SAMPLE_MISSING, discarded_early, ended, missing
from gateway.schedule.school_calendar import SchoolCalendar, SchoolDay
from gateway.storage.readings import ReadingStore
from gateway.storage.state import ID, METADATA, StateDatabase

# A sample's time may be set a little ahead of the gateway's clock (a phone's clock is off).
AHEAD_MS: Final = 5 * 60_000

P = TypeVar("P", bound=RuleParams)

FOOD_SAMPLES = Table(
    "food_samples", METADATA,
    Column("id", ID, primary_key=True, autoincrement=True),
    Column("day", Text, nullable=False),                # the meal's local date, ISO 8601
    Column("meal", Text, nullable=False),               # the meal's id in samples.meals
    Column("dish", Text, nullable=False),
    Column("weight_g", Float, nullable=False),
    Column("fridge", Text, nullable=False),             # a sample_fridge device
    Column("taken_ms", BigInteger, nullable=False),
    Column("taken_by", Text, nullable=False),           # the login that registered it
    Column("discard_after_ms", BigInteger, nullable=False),
    Column("discarded_ms", BigInteger),
    Column("discarded_by", Text),
    Column("early_reason", Text),                       # why it was discarded before discard_after_ms
    Column("site", Text, nullable=False, server_default=""),
    Index("food_samples_day", "day", "meal"),
    Index("food_samples_discarded", "discarded_ms"),
    sqlite_autoincrement=True,  # a sample's id is never reused
)
_COLUMNS: Final = tuple(c for c in FOOD_SAMPLES.c if c.name != "site")


@dataclass(frozen=True, slots=True)
class FoodSample:
    id: int
    day: date
    meal: str
    dish: str
    weight_g: float
    fridge: str
    taken_ms: int
    taken_by: str
    discard_after_ms: int
    discarded_ms: int | None
    discarded_by: str | None
    early_reason: str | None


class SampleRegister:
    """The register of one site. Its writes and the alerts it judges run on the event loop's
    thread; `retained` reads the fridges' readings in a worker thread."""

    page = "samples"  # the dashboard's view where it is kept

    def __init__(self, db: StateDatabase, site: SiteConfig, calendar: SchoolCalendar, audit: AuditTrail,
                 clock: Clock, alerts: AlertStore) -> None:
        self._db = db
        self._site_id = site.id  # the rows' site: a site's id does not change with its settings
        db.create(FOOD_SAMPLES, site=site.id)
        self._calendar = calendar
        self._audit = audit
        self._clock = clock
        self._alerts = alerts
        self.reconfigure(site)

    def reconfigure(self, site: SiteConfig) -> None:
        self._site = site
        self._settings = site.samples
        self.fridges: list[Device] = [d for d in site.devices if kinds()[d.kind].keeps_samples]

    # --- people's actions ------------------------------------------------------------------

    def register(self, day: date, meal_id: str, dish: str, weight_g: float, fridge_id: str, taken_ms: int | None,
                 by: str) -> FoodSample:
        """Registers one dish's sample of `day`'s meal, taken by the signed-in `by`."""
        s = self._settings
        now = to_ms(self._clock.now())
        meal = s.meal(meal_id)
        if meal is None:
            raise Refused(409, "没有这一餐次，请从列表中选择餐次。", "There is no such meal: choose one from the list.")
        if weight_g < s.min_weight_g:
            raise Refused(409, f"留样重量不足：每样至少 {s.min_weight_g:g} 克，本次只有 {weight_g:g} 克。"
                               "请补足后再登记。",
                          f"Too little kept: at least {s.min_weight_g:g} g of each dish, this is {weight_g:g} g. "
                          "Add more, then register it.")
        fridge = next((d for d in self.fridges if d.id == fridge_id), None)
        if fridge is None:
            raise Refused(409, "所选冰箱不是本园的留样冰箱，请从列表中选择留样冰箱。",
                          "That is not one of the site's sample fridges: choose one from the list.")
        info = self._calendar.day(day)
        if not served(meal, info):
            word_zh, word_en = self._site.day_word()
            raise Refused(409, f"{day:%m月%d日}不是{word_zh}，不供应{meal.label_zh}，无需留样。",
                          f"{day:%d %b} is not a {word_en}: no {meal.label_en.lower()} is served, so no sample.")
        start, _ = self._calendar.day_bounds_ms(day)
        taken = now if taken_ms is None else taken_ms
        if taken > now + AHEAD_MS:
            raise Refused(409, "留样时间不能晚于现在。", "The time taken cannot be later than now.")
        if taken < start:
            raise Refused(409, f"留样时间早于{day:%m月%d日}：请填写这一餐留样的实际时间。",
                          f"The time taken is before {day:%d %b}: give when this meal's sample was taken.")
        after = taken + round(s.keep_h * 3_600_000)
        with self._db.write(durable=True) as conn:
            sample_id: int = conn.execute(FOOD_SAMPLES.insert().values(
                day=day.isoformat(), meal=meal.id, dish=dish, weight_g=weight_g, fridge=fridge.id, taken_ms=taken,
                taken_by=by, discard_after_ms=after, site=self._site_id).returning(FOOD_SAMPLES.c.id)).scalar_one()
        self._audit.record(now, by, "sample.registered", f"sample:{sample_id}", {
            "day": day.isoformat(), "meal": meal.id, "dish": dish, "weight_g": weight_g, "fridge": fridge.id,
            "taken_ms": taken})
        return FoodSample(sample_id, day, meal.id, dish, weight_g, fridge.id, taken, by, after, None, None, None)

    def discard(self, sample_id: int, by: str, reason: str | None) -> FoodSample:
        """Records that `by` discarded the sample now. Before its retention ended only with a
        reason, and that raises the early-discard alert."""
        now = to_ms(self._clock.now())
        sample = self.get(sample_id)
        if sample.discarded_ms is not None:
            raise Refused(409, f"这份留样已于 {self._stamp(sample.discarded_ms)} 处理，不能重复处理。",
                          f"This sample was discarded already, at {self._stamp(sample.discarded_ms)}.")
        reason = (reason or "").strip() or None
        early = now < sample.discard_after_ms
        if early and reason is None:
            raise Refused(409, f"未到可处理时间（{self._stamp(sample.discard_after_ms)}）：提前处理须写明原因。",
                          f"Not due until {self._stamp(sample.discard_after_ms)}: discarding it early needs a reason.")
        kept_reason = reason if early else None
        with self._db.write(durable=True) as conn:
            changed = conn.execute(
                update(FOOD_SAMPLES).where(self._mine(), FOOD_SAMPLES.c.id == sample_id,
                                           FOOD_SAMPLES.c.discarded_ms.is_(None))
                .values(discarded_ms=now, discarded_by=by, early_reason=kept_reason)).rowcount
        if not changed:  # discarded by someone else in between
            return self.discard(sample_id, by, reason)
        self._audit.record(now, by, "sample.discarded", f"sample:{sample_id}",
                           {"early": early, **({"reason": kept_reason} if early else {})})
        return self.get(sample_id)

    def _stamp(self, ms: int) -> str:
        return f"{from_ms(ms, self._site.tz):%m-%d %H:%M}"

    # --- reading ---------------------------------------------------------------------------

    def get(self, sample_id: int) -> FoodSample:
        rows = self._select(FOOD_SAMPLES.c.id == sample_id)
        if not rows:
            raise Refused(404, "没有这份留样记录。", "There is no such sample.")
        return rows[0]

    def on_day(self, day: date) -> list[FoodSample]:
        """The samples of `day`'s meals, in the order they were taken."""
        return self._select(FOOD_SAMPLES.c.day == day.isoformat(), order=FOOD_SAMPLES.c.taken_ms)

    def kept(self) -> list[FoodSample]:
        """The samples in the fridges now (not discarded), oldest first."""
        return self._select(FOOD_SAMPLES.c.discarded_ms.is_(None), order=FOOD_SAMPLES.c.taken_ms)

    def _discarded_early(self, lo: int, hi: int) -> dict[str, list[FoodSample]]:
        """The samples discarded early from `lo` to `hi`, by fridge, in the order discarded."""
        c = FOOD_SAMPLES.c
        by_fridge: dict[str, list[FoodSample]] = {}
        for x in self._select(c.discarded_ms >= lo, c.discarded_ms < hi, c.early_reason.is_not(None),
                              order=c.discarded_ms):
            by_fridge.setdefault(x.fridge, []).append(x)
        return by_fridge

    def _mine(self) -> Any:
        return FOOD_SAMPLES.c.site == self._site_id

    def _select(self, *conditions: Any, order: Any = None) -> list[FoodSample]:
        """The site's samples that meet `conditions`, by `order` then id."""
        query = select(*_COLUMNS).where(self._mine(), *conditions)
        with self._db.read() as conn:
            rows = conn.execute(query.order_by(*([] if order is None else [order]), FOOD_SAMPLES.c.id)).all()
        return [FoodSample(i, date.fromisoformat(d), *rest) for i, d, *rest in rows]

    def deadline_ms(self, day: date, meal: Meal) -> int:
        return self._calendar.local_ms(day, meal.deadline)

    # --- the daily record ------------------------------------------------------------------

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]:
        """One item per meal: pass with a sample of at least the minimum weight, fail without
        one after the deadline, pending before it; not required where the meal is not served."""
        s = site.samples
        samples = self.on_day(day.date)
        # The meals' items stand in the room of the fridge their samples go to (the kitchen).
        room = site.room(self.fridges[0].room) if self.fridges else None
        place = {} if room is None else {"subject": room.name, "building": site.building_of(room.id).id,
                                         "room": room.id}
        out = []
        for meal in s.meals:
            kept = [x for x in samples if x.meal == meal.id and x.weight_g >= s.min_weight_g]
            deadline = self.deadline_ms(day.date, meal)
            due = f"{from_ms(deadline, site.tz):%H:%M}"
            if not served(meal, day):
                closed_zh, closed_en = site.day_word(school_day=False)
                status, detail = ItemStatus.NOT_REQUIRED, (f"{closed_zh}，不供应{meal.label_zh}",
                                                           f"{closed_en}: no {meal.label_en.lower()} served")
            elif kept:
                dishes_zh = "、".join(f"{x.dish} {x.weight_g:g} 克" for x in kept)
                dishes_en = ", ".join(f"{x.dish} {x.weight_g:g} g" for x in kept)
                first = f"{from_ms(kept[0].taken_ms, site.tz):%H:%M}"
                when = (f"{first} 起登记", f"registered from {first}") if len(kept) > 1 else \
                    (f"{first} 登记", f"registered at {first}")
                status, detail = ItemStatus.PASS, (f"已留样 {len(kept)} 样：{dishes_zh}（{when[0]}）",
                                                   f"{len(kept)} kept: {dishes_en} ({when[1]})")
            elif as_of_ms < deadline:
                status, detail = ItemStatus.PENDING, (f"{due} 前留样", f"due by {due}")
            else:
                status, detail = ItemStatus.FAIL, (f"{due} 截止时未留样", f"no sample registered by {due}")
            item = record_item(f"sample:{meal.id}", Category.CANTEEN, None, site, status, detail, **place)
            out.append(item.model_copy(update={
                "check_zh": f"留样：{meal.label_zh}（每样 ≥{s.min_weight_g:g} 克，冷藏 ≥{s.keep_h:g} 小时）",
                "check_en": f"Food samples: {meal.label_en.lower()} (≥{s.min_weight_g:g} g of each dish, "
                            f"refrigerated ≥{s.keep_h:g} h)"}))
        return out

    # --- the 留样 rules ---------------------------------------------------------------------

    def judge(self, now_ms: int) -> None:
        """Raises, updates and clears today's 留样 alerts (the watchdog calls this every tick,
        on the injected clock; the routes right after a person changed the register). Four
        queries however many fridges: a district's large site has hundreds, judged every second."""
        if not self.fridges:
            return
        current = self._open_alerts()
        cal, s = self._calendar, self._settings
        day = cal.local_date(now_ms)
        info = cal.day(day)
        start, end = cal.day_bounds_ms(day)
        home = self.fridges[0]  # where the register keeps its meals' alerts
        params = self._params(SAMPLE_MISSING, home)
        if params is not None:
            samples = self.on_day(day)
            late = [(m, deadline) for m in s.meals if served(m, info)
                    and (deadline := self.deadline_ms(day, m)) <= now_ms
                    and not any(x.meal == m.id and x.weight_g >= s.min_weight_g for x in samples)]
            found = None if not late else missing(
                params, home.id, day.isoformat(),
                [(m.id, m.label_zh, m.label_en, f"{from_ms(d, self._site.tz):%H:%M}") for m, d in late],
                min(d for _, d in late), now_ms)
            self._settle(current.get((SAMPLE_MISSING.id, home.id)), found, "meals", params, now_ms)
        early_by_fridge = self._discarded_early(start, end)
        for fridge in self.fridges:
            early_params = self._params(SAMPLE_DISCARDED_EARLY, fridge)
            if early_params is None:
                continue
            early = early_by_fridge.get(fridge.id, [])
            found = None if not early else discarded_early(
                early_params, fridge.id, day.isoformat(),
                [(x.id, x.dish, self._stamp(x.discarded_ms or now_ms), x.early_reason or "") for x in early],
                min(x.discarded_ms or now_ms for x in early), now_ms)
            self._settle(current.get((SAMPLE_DISCARDED_EARLY.id, fridge.id)), found, "samples", early_params, now_ms)

    def _params(self, spec: RuleSpec[P], fridge: Device) -> P | None:
        return spec.runs_on(fridge, self._site.room(fridge.room).type)

    def _open_alerts(self) -> dict[tuple[str, str], Alert]:
        """The register's open alerts in the store, by rule and fridge (the newest of each)."""
        found: dict[tuple[str, str], Alert] = {}
        for rule in RULES:
            for alert in self._alerts.find(AlertFilter(rule=rule.id, open_only=True, limit=None)):  # newest first
                found.setdefault((rule.id, alert.device_id), alert)
        return found

    def _settle(self, current: Alert | None, found: Finding | None, key: str, params: RuleParams,
                now_ms: int) -> None:
        """Brings `current`, the open alert of a rule and fridge, to today's finding: raised,
        updated when what it is about changed (a repeat), cleared when it no longer holds or its
        day has ended."""
        same_day = current is not None and found is not None and current.facts.get("day") == found.facts["day"]
        if current is not None and not same_day:
            self._alerts.apply(ended(current.rule, current.device_id, now_ms, params.severity), Evidence())
        if found is not None and not (same_day and current is not None and current.facts.get(key) == found.facts[key]):
            self._alerts.apply(found, Evidence())


def served(meal: Meal, day: SchoolDay) -> bool:
    return meal.days == "every_day" or day.school_day


# ----------------------------------------------------------- the fridge over the retention


def temperature(store: ReadingStore, fridge: Device, lo: int, hi: int) -> RetentionTemperature | None:
    """The fridge's readings from `lo` (taken) to `hi` (discarded, or now) against its kind's
    allowed range; None for a fridge whose kind has no range. Each reading holds until the
    next for at most the fridge's offline threshold, as in the daily record: the lowest and
    highest are of the values that held, the one before `lo` included."""
    metric = next((m for m in kinds()[fridge.kind].metrics if m.allowed is not None), None)
    if metric is None or metric.allowed is None:
        return None
    low, high = metric.allowed.of(fridge.kind_settings())
    hold = round(silent_after_ms(fridge))
    points = [(p.ts_ms, p.value) for p in store.points(fridge.id, metric.key, lo - hold, hi, MAX_POINTS)]
    stretches = held(points, lo, hi, hold)  # the reading before `lo` holds into the retention
    inside = [v for ts, v in points if lo <= ts < hi]
    values = [h.value for h in stretches]
    out_ms = total_ms([(h.start, h.end) for h in where(stretches, lambda v: v < low or v > high)])
    return RetentionTemperature(
        range_min_c=low, range_max_c=high, lowest_c=min(values, default=None), highest_c=max(values, default=None),
        minutes_out=round(out_ms / 60_000, 1), minutes_no_data=round(total_ms(gaps(stretches, [(lo, hi)])) / 60_000, 1),
        readings=len(inside))


def retained(store: ReadingStore, site: SiteConfig, samples: Sequence[FoodSample], names: Directory,
             now_ms: int) -> list[RetainedSample]:
    """The samples as people read them, each with its fridge's temperature over its retention
    (reads the readings: call it in a worker thread)."""
    out = []
    for x in samples:
        fridge = site.device(x.fridge)
        meal = site.samples.meal(x.meal)
        hi = now_ms if x.discarded_ms is None else x.discarded_ms
        out.append(RetainedSample(
            id=x.id, day=x.day, meal=x.meal, meal_zh=meal.label_zh if meal else x.meal,
            meal_en=meal.label_en if meal else x.meal, dish=x.dish, weight_g=x.weight_g, fridge=x.fridge,
            fridge_name=(fridge.name or fridge.id) if fridge else x.fridge, taken_at=from_ms(x.taken_ms, UTC),
            taken_by=names.actor(x.taken_by), discard_after=from_ms(x.discard_after_ms, UTC),
            discarded_at=None if x.discarded_ms is None else from_ms(x.discarded_ms, UTC),
            discarded_by=names.maybe(x.discarded_by), early_reason=x.early_reason,
            temperature=None if fridge is None else temperature(store, fridge, x.taken_ms, max(x.taken_ms, hi)),
        ))
    return out
