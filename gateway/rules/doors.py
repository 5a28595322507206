"""Door rules: open while the building is closed (按时关锁大门), open too long in the day where
configured (kitchen, stores), and a card used after hours by someone not allowed then."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Annotated, Final, TypeVar

from pydantic import Field

from devices.base import MINUTES, Event, Label, Sample
from gateway.alerting.severity import Severity
from gateway.alerting.trade import Trade
from gateway.reports.judging import (
    MIN_MS,
    Judge,
    after_hours,
    disabled,
    longest_of,
    missing,
    record_item,
    utc,
    verdict,
)
from gateway.reports.judging import minutes as record_minutes
from gateway.reports.safety_model import (
    Category,
    DoorFacts,
    Item,
    ItemStatus,
)
from gateway.reports.safety_series import total_ms
from gateway.rules.base import Context, Finding, Rule, RuleSpec, minutes, with_metric
from gateway.rules.params import RuleParams, SeverityLevel

if TYPE_CHECKING:
    from gateway.site import Device

P = TypeVar("P", bound=RuleParams)


class DoorAfterHours(RuleParams):
    """按时关锁大门: a door open while its building is closed, past a grace period."""

    severity: SeverityLevel = Severity.MAJOR
    grace_min: Annotated[float, Label(
        "关门时段门开着多久才报警", "Alarm after a door is open after hours for", *MINUTES,
    )] = Field(5, ge=0)


class DoorOpenTooLong(RuleParams):
    """A door (kitchen, stores) open longer than this while the building is open; off unless set."""

    max_open_min: Annotated[float | None, Label(
        "开放时段门最多可开多久（不填则不查）",
        "Longest a door may stay open in opening hours (unset: not checked)",
        *MINUTES,
    )] = Field(None, gt=0)


class AfterHoursAccess(RuleParams):
    """A card used while the building is closed by a credential not allowed then."""

    severity: SeverityLevel = Severity.MAJOR
    allowed: Annotated[list[str], Label(
        "关门时段允许刷的卡号", "Cards allowed after hours",
    )] = Field(default_factory=list, description="credentials allowed after hours")



# After a start, how long a door known open only from its stored reading waits for what the
# broker held for the site before the watchdog judges it (the messages of a resumed session
# arrive in the first seconds).
SETTLE_MS: Final = 30_000


class _OpenRule(Rule[P]):
    """A door open longer than allowed: its open minutes, one definition for the alert and
    the daily record, run from the first reading that shows it open (while the rule's
    condition holds) to the first that shows it closed.

    A door sensor may report only when the door moves: when its limit passes with no word
    from the door since it was received open, the watchdog raises it, at the moment the limit
    passed. Not for a reading received after its limit had passed (history sent late): the
    readings after it say whether it stayed open. A door known open only from the stored
    reading a start primed it with waits `SETTLE_MS` of the watchdog's clock first: what the
    broker held for the site while no gateway ran it (the door closing, say) comes first."""

    evidence = "open"

    def __init__(self, ctx: Context, params: P) -> None:
        super().__init__(ctx, params)
        self._since: int | None = None
        self._heard_ms: int | None = None  # when the newest message was received
        self._primed = False  # known open from a stored reading only, no live word yet
        self._settled_ms: int | None = None  # when a primed door may be judged by the watchdog

    @abstractmethod
    def judged(self, ts: int) -> bool:
        """Whether an opening at `ts` counts: after hours, or in opening hours."""

    @abstractmethod
    def limit_min(self) -> float | None:
        """Open this long and it is raised; None: the rule is not set for this door."""

    @abstractmethod
    def words(self, name: str) -> tuple[str, str]:
        """The title while open."""

    def on_sample(self, sample: Sample) -> Finding | None:
        limit = self.limit_min()
        is_open = sample.values.get("open")
        if limit is None or is_open is None:
            return None
        ts = sample.ts_ms
        if not is_open or not self.judged(ts):
            opened, self._since = self._since, None
            return self._closed(opened, ts) if self.raised else None
        if self._since is None:
            self._since = ts
        if not self.raised and ts - self._since < limit * 60_000:
            return None
        return self._open(self._since, ts)

    def _open(self, since_ms: int, ts: int) -> Finding:
        """Open from `since_ms` to `ts`: raised, or the open alert's figures."""
        name, since, held = self.ctx.name, self.ctx.stamp(since_ms), minutes(ts - since_ms)
        detail = (f"自 {since} 起开着, 已 {held} 分钟, 请检查并关好",
                  f"open since {since}, {held} min so far: check it and close it")
        facts: dict[str, float | str] = {"since_ms": since_ms, "minutes": held}
        if self.raised:
            return self.update(since_ms, ts, self.words(name), detail, facts)
        return self.finding(True, since_ms, ts, self.words(name), detail, facts)

    def heard(self, received_ms: int) -> Finding | None:
        self._heard_ms = received_ms
        self._primed = False
        return None

    def prime(self, sample: Sample) -> Finding | None:
        found = self.on_sample(sample)
        self._heard_ms = sample.ts_ms  # received no earlier than its own time
        self._primed, self._settled_ms = True, None
        return found

    def on_clock(self, now_ms: int) -> Finding | None:
        limit = self.limit_min()
        if limit is None or self._since is None or self.raised or self._heard_ms is None:
            return None
        if self._primed:
            if self._settled_ms is None:  # the watchdog's first look since the start
                self._settled_ms = now_ms + SETTLE_MS
            if now_ms < self._settled_ms:
                return None
        due = self._since + round(limit * 60_000)
        if now_ms < due or self._heard_ms >= due or not self.judged(due):
            return None
        return self._open(self._since, due)

    def _closed(self, since: int | None, ts: int) -> Finding:
        if since is None:  # raised before a restart: nothing known of the opening
            return self.clear(ts, {"closed_ms": ts})
        n, span = minutes(ts - since), f"{self.ctx.stamp(since)}–{self.ctx.clock(ts)}"
        return self.clear(ts, {"since_ms": since, "minutes": n, "closed_ms": ts},
                          (f"{span} 开着 {n} 分钟", f"open {span}, {n} min"),
                          (f"{self.ctx.name} 开着 {n} 分钟后已关", f"{self.ctx.name} was open {n} min, now closed"))


class DoorAfterHoursRule(_OpenRule[DoorAfterHours]):
    name = "door_after_hours"

    def judged(self, ts: int) -> bool:
        return not self.ctx.is_open(ts)

    def limit_min(self) -> float | None:
        return self.params.grace_min

    def words(self, name: str) -> tuple[str, str]:
        return f"{name} 在闭园时段开着", f"{name} is open after hours"


class DoorOpenTooLongRule(_OpenRule[DoorOpenTooLong]):
    name = "door_open_too_long"

    def judged(self, ts: int) -> bool:
        return self.ctx.is_open(ts)

    def limit_min(self) -> float | None:
        return self.params.max_open_min

    def words(self, name: str) -> tuple[str, str]:
        limit = self.params.max_open_min
        return f"{name} 开门超过 {limit:g} 分钟", f"{name} open longer than {limit:g} min"


class AfterHoursAccessRule(Rule[AfterHoursAccess]):
    name = "after_hours_access"

    def on_event(self, event: Event) -> Finding | None:
        if event.type != "access" or self.ctx.is_open(event.ts_ms):
            return None
        credential = str(event.data.get("credential", ""))
        if credential in self.params.allowed:
            return None
        granted = bool(event.data.get("granted"))
        name, at = self.ctx.name, self.ctx.stamp(event.ts_ms)
        result_zh, result_en = ("已开门", "let in") if granted else ("被拒绝", "refused")
        return self.finding(
            True, event.ts_ms, event.ts_ms,
            (f"{name} 闭园时段刷卡 ({credential})", f"{name}: card used after hours ({credential})"),
            (f"{at} 凭证 {credential} 刷卡{result_zh}; 该凭证闭园时段未获授权",
             f"at {at} credential {credential} was {result_en}; it is not allowed after hours"),
            {"credential": credential, "granted": str(granted).lower()},
        )

    def on_sample(self, sample: Sample) -> Finding | None:
        # The after-hours episode ends when the building opens again.
        if self.raised and self.ctx.is_open(sample.ts_ms):
            return self.clear(sample.ts_ms)
        return None

# ------------------------------------------------------------ the daily record's judge


def door(j: Judge, d: Device) -> Item:
    """Closed after hours: fails on an opening during closed hours that lasted the
    after-hours door rule's grace or longer."""
    params = DOOR_AFTER_HOURS.params_for(d)
    item_id = f"door:{d.id}"
    if not params.enabled:
        return disabled(item_id, Category.DOOR, d, j.site, DOOR_AFTER_HOURS)
    grace_ms = round(params.grace_min * MIN_MS)
    c = after_hours(j, d, lambda lo, hi: j.points(d.id, "open", lo, hi), grace_ms, bool)
    failed = [r for r in c.episodes if r[1] - r[0] >= grace_ms]
    [last_closed] = j.store.runs_since("open", 0.0, [(d.id, j.judged[1] - 1)])
    longest = longest_of(c.episodes)
    open_min = record_minutes(total_ms([(h.start, h.end) for h in c.inside]))
    facts = DoorFacts(
        closing=None if (closing := j.day.closing_ms[j.site.building_of(d.room).id]) is None else utc(closing),
        closed_since=None if last_closed is None else utc(last_closed), open_after_hours=bool(c.inside),
        openings=len(c.episodes), minutes_open=open_min, grace_min=params.grace_min,
        longest=None if longest is None else j.span(longest),
    )
    status = verdict(bool(failed), c.holes, c.readings)
    if status is ItemStatus.FAIL:
        worst = longest_of(failed)
        assert worst is not None
        detail = (f"闭园时段开着 {record_minutes(worst[1] - worst[0]):g} 分钟（{j.spans([worst], '、')}），超过 "
                  f"{params.grace_min:g} 分钟宽限",
                  f"open for {record_minutes(worst[1] - worst[0]):g} min after hours ({j.spans([worst])}), "
                  f"past the {params.grace_min:g}-min grace")
    elif status is ItemStatus.MANUAL:
        detail = missing(j, c.holes, c.readings)
    elif c.episodes:
        detail = (f"闭园时段开启 {len(c.episodes)} 次，共 {open_min:g} 分钟，均短于 {params.grace_min:g} 分钟宽限",
                  f"opened {len(c.episodes)} times after hours, {open_min:g} min in all, each under the "
                  f"{params.grace_min:g}-min grace")
    else:
        detail = "闭园时段未开启", "not opened after hours"
    if last_closed is not None and status is not ItemStatus.MANUAL:
        detail = detail[0] + f"; {j.clock(last_closed)} 起关闭", detail[1] + f"; closed since {j.clock(last_closed)}"
    return record_item(item_id, Category.DOOR, d, j.site, status, detail).model_copy(
        update={"facts": facts, "gaps": [j.span(g) for g in c.holes]})


DOOR_AFTER_HOURS: RuleSpec[DoorAfterHours] = RuleSpec(DoorAfterHoursRule, DoorAfterHours,
    "闭园后门未关", "Door open after hours", with_metric("open"), judge=door)
RULES = (
    DOOR_AFTER_HOURS,
    # A door that does not close: its closer or lock, for the carpenter.
    RuleSpec(DoorOpenTooLongRule, DoorOpenTooLong, "门开太久", "Door open too long", with_metric("open"),
             trade=Trade.CARPENTRY),
    RuleSpec(AfterHoursAccessRule, AfterHoursAccess, "非开放时段刷卡", "After-hours access", with_metric("open")),
)
