"""The fire patrols in the daily safety record: one item per round the site has
(`fire:<HHMM>`), `done` when it was patrolled with every item in order, `fail` when an item had
a problem (its note shows), `manual` when nobody recorded it `fire_patrol.grace_min` after its
time, `pending` until then, `not_required` on a day the round does not run. The detail names
who patrolled and who signed, by their display names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.clock import from_ms
from gateway.reports.judging import record_item
from gateway.reports.safety_model import Category, Item, ItemStatus
from gateway.schedule.patrols import FirePatrols, Patrol, Round

if TYPE_CHECKING:
    from gateway.auth.people import Directory, People
    from gateway.config import SiteConfig
    from gateway.schedule.school_calendar import SchoolDay


class PatrolRegister:
    """A `gateway.reports.safety.Register` of the fire patrols."""

    page = "patrol"  # the dashboard's view where it is kept

    def __init__(self, patrols: FirePatrols, people: People) -> None:
        self._patrols = patrols
        self._people = people

    def items(self, site: SiteConfig, day: SchoolDay, start_ms: int, end_ms: int, as_of_ms: int) -> list[Item]:
        running = {r.id for r in self._patrols.rounds(day.date)}
        patrols = self._patrols.of_day(day.date)
        names = self._people.directory() if patrols else None  # read only where someone is named
        grace = site.fire_patrol.grace_min
        out = []
        for r in self._patrols.configured(day.date):
            if r.id not in running:
                status, detail = ItemStatus.NOT_REQUIRED, ("这一天不安排这一轮巡查。", "No such round that day.")
            elif (patrol := patrols.get(r.id)) is not None and names is not None:
                status = ItemStatus.FAIL if patrol.problems else ItemStatus.DONE
                detail = _patrolled(site, r, patrol, names)
            elif as_of_ms < r.due_ms:
                status, detail = ItemStatus.PENDING, (f"{r.label} 巡查，还没到时间。", f"Due at {r.label}.")
            elif as_of_ms < r.due_ms + grace * 60_000:
                status, detail = ItemStatus.PENDING, (
                    f"{r.label} 的巡查尚未登记（应在 {grace:g} 分钟内完成）。",
                    f"Due at {r.label}, not recorded yet ({grace:g} minutes allowed).")
            else:
                status, detail = ItemStatus.MANUAL, (
                    f"{r.label} 的巡查无记录：过了 {grace:g} 分钟仍未登记。",
                    f"No record of the {r.label} patrol {grace:g} minutes after it was due.")
            out.append(record_item(item_id(r), Category.FIRE, None, site, status, detail,
                                   subject=r.label))
        return out


def item_id(r: Round) -> str:
    """The round's item in the daily record: fire:0800."""
    return f"{Category.FIRE}:{r.id}"


def _patrolled(site: SiteConfig, r: Round, patrol: Patrol, names: Directory) -> tuple[str, str]:
    who, at = names.display(patrol.patroller), _at(site, r, patrol.patrolled_ms)
    late = patrol.patrolled_ms > r.due_ms + site.fire_patrol.grace_min * 60_000
    zh = f"{who} {at} 巡查{'（补登记）' if late else ''}，"
    en = f"Patrolled by {who} at {at}{' (recorded late)' if late else ''}, "
    if patrol.problems:
        n = len(patrol.problems)
        zh += f"发现 {n} 项问题：" + "、".join(f"{p.zh}（{p.note}）" for p in patrol.problems) + "。"
        en += f"{n} problem{'s' if n > 1 else ''}: " + "; ".join(f"{p.en} ({p.note})" for p in patrol.problems) + "."
    else:
        zh += f"{len(patrol.items)} 项均正常。"
        en += f"all {len(patrol.items)} items in order."
    if patrol.supervisor is None or patrol.supervised_ms is None:
        return zh + "待审核签字。", en + " Awaiting the supervisor's signature."
    boss, signed = names.display(patrol.supervisor), _at(site, r, patrol.supervised_ms)
    return zh + f"{boss} {signed} 审核签字。", en + f" Signed by {boss} at {signed}."


def _at(site: SiteConfig, r: Round, ms: int) -> str:
    """Local time; with the date when it is not the round's day."""
    local = from_ms(ms, site.tz)
    return f"{local:%H:%M}" if local.date() == r.day else f"{local:%m-%d %H:%M}"
