"""The fire patrols (消防巡查) of the demo kindergarten: the rounds of a day by the school
calendar, recording and signing them with their refusals, their items in the daily record,
and a round nobody recorded reaching the person on duty through a real webhook receiver, once,
on a manual clock, across a restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pytest
import yaml

from gateway.auth.audit import AuditTrail
from gateway.auth.people import People
from gateway.auth.store import AuthStore
from gateway.clock import ManualClock, to_ms
from gateway.config import SiteConfig, parse
from gateway.reports.fire_patrol import PatrolRegister
from gateway.rules.base import Finding
from gateway.runtime import Gateway
from gateway.schedule.patrols import FirePatrols, ItemResult, PatrolRefused
from gateway.schedule.roster import Roster
from gateway.schedule.school_calendar import SchoolCalendar
from gateway.storage.state import StateDatabase
from tests.receivers import HttpReceiver
from tests.rule_scenarios import DEMO

SHANGHAI: Final = ZoneInfo("Asia/Shanghai")
THU: Final = date(2026, 10, 15)  # a school day
SAT: Final = date(2026, 10, 17)
EXPECTED_TEXTS: Final = Path(__file__).with_name("test_patrols.expected.txt")


def at(day: date, hh_mm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hh_mm), SHANGHAI)


def site_with(data_dir: Path, **changes: Any) -> SiteConfig:
    """The demo site without its devices (nothing here reads them: none goes offline)."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["storage"] = {"data_dir": str(data_dir)}
    data.pop("derived_subitems")  # declared of the demo's meters, which are not here
    data["devices"] = []
    for key, value in changes.items():
        data[key] = data.get(key, {}) | value
    return parse(yaml.safe_dump(data, allow_unicode=True), "site.yaml")


def all_ok(site: SiteConfig, **problems: str) -> dict[str, tuple[ItemResult, str]]:
    return {i.id: ("problem", problems[i.id]) if i.id in problems else ("ok", "") for i in site.fire_patrol.items}


@dataclass
class Patrols:
    site: SiteConfig
    clock: ManualClock
    db: StateDatabase
    patrols: FirePatrols
    audit: AuditTrail
    register: PatrolRegister
    findings: list[Finding] = field(default_factory=list)

    def items(self, day: date) -> dict[str, tuple[str, str, str]]:
        cal = SchoolCalendar(self.site)
        start, end = cal.day_bounds_ms(day)
        found = self.register.items(self.site, cal.day(day), start, end, min(to_ms(self.clock.now()), end))
        return {i.id: (i.status.value, i.detail_zh, i.detail_en) for i in found}


@pytest.fixture
def kept(tmp_path: Path, state_db: StateDatabase) -> Patrols:
    site = site_with(tmp_path)
    clock = ManualClock(at(THU, "07:00"))
    audit = AuditTrail(state_db, site.id)
    auth = AuthStore(state_db, site.auth, audit)
    findings: list[Finding] = []
    patrols = FirePatrols(state_db, site, SchoolCalendar(site), audit, clock, lambda f, _: findings.append(f))
    return Patrols(site, clock, state_db, patrols, audit, PatrolRegister(patrols, People(auth, site.duty.people)),
                   findings)


def test_the_rounds_follow_the_school_calendar(kept: Patrols) -> None:
    assert [r.label for r in kept.patrols.rounds(THU)] == ["02:00", "08:00", "16:30", "21:00"]
    assert [r.label for r in kept.patrols.rounds(SAT)] == ["02:00", "21:00"]  # no school: the night rounds
    # A site where nobody sleeps gets no night rounds unless its file asks for them.
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    del data["fire_patrol"]
    for b in data["buildings"]:
        for r in b["rooms"]:
            r["type"] = "classroom" if r["type"] == "nap_room" else r["type"]
    school = parse(yaml.safe_dump(data, allow_unicode=True), "site.yaml")
    patrols = FirePatrols(kept.db, school, SchoolCalendar(school), kept.audit, kept.clock, lambda f, e: None)
    assert [r.label for r in patrols.rounds(THU)] == ["08:00", "16:30"]


def test_a_patrol_is_recorded_signed_and_audited_with_its_refusals(kept: Patrols) -> None:
    p, clock = kept.patrols, kept.clock

    def refused(action: Any) -> tuple[int, str, str]:
        with pytest.raises(PatrolRefused) as caught:
            action()
        return caught.value.status, caught.value.zh, caught.value.en

    assert refused(lambda: p.submit(THU, "0800", all_ok(kept.site), "guard-wang")) == (
        409, "08:00 的巡查还没到时间，不能提前登记。",
        "The 08:00 patrol is not due yet: it cannot be recorded in advance.")
    assert refused(lambda: p.submit(THU, "0930", all_ok(kept.site), "guard-wang"))[:2] == (
        404, "2026-10-15 没有 09:30 的消防巡查。")
    assert refused(lambda: p.submit(SAT, "0800", all_ok(kept.site), "guard-wang"))[0] == 404  # no school
    assert refused(lambda: p.sign(THU, "0800", "logistics-li")) == (
        409, "08:00 的巡查还没有登记，不能审核签字。",
        "The 08:00 patrol has not been recorded yet: there is nothing to sign.")
    clock.set(at(THU, "07:40"))  # a guard may start a little early
    assert refused(lambda: p.submit(THU, "0800", all_ok(kept.site, extinguishers=" "), "guard-wang")) == (
        422, "「灭火器材完好有效」有问题：请写明是什么问题。",
        "“Extinguishers in place and in date” has a problem: please say what it is.")
    partial = all_ok(kept.site)
    del partial["exits"]
    assert refused(lambda: p.submit(THU, "0800", partial, "guard-wang"))[0] == 422
    patrol = p.submit(THU, "0800", all_ok(kept.site, extinguishers="二楼走廊灭火器压力不足"), "guard-wang")
    assert [(c.id, c.note) for c in patrol.problems] == [("extinguishers", "二楼走廊灭火器压力不足")]
    assert refused(lambda: p.submit(THU, "0800", all_ok(kept.site), "logistics-li"))[:2] == (
        409, "08:00 的巡查已于 07:40 登记过了。")
    clock.set(at(THU, "08:20"))
    assert refused(lambda: p.sign(THU, "0800", "guard-wang")) == (
        409, "不能审核签字自己的巡查，请由另一位负责人签字。",
        "You cannot sign your own patrol: another person in charge signs it.")
    signed = p.sign(THU, "0800", "logistics-li")
    assert (signed.supervisor, signed.supervised_ms) == ("logistics-li", to_ms(at(THU, "08:20")))
    assert refused(lambda: p.sign(THU, "0800", "principal-zhao"))[:2] == (409, "08:00 的巡查已于 08:20 审核签字。")
    trail = [(e.actor, e.action, e.target, dict(e.detail)) for e in reversed(kept.audit.about("fire_patrol:2026-10-15:0800"))]
    assert trail == [
        ("guard-wang", "fire_patrol.patrolled", "fire_patrol:2026-10-15:0800",
         {"problems": [{"item": "extinguishers", "note": "二楼走廊灭火器压力不足"}]}),
        ("logistics-li", "fire_patrol.supervised", "fire_patrol:2026-10-15:0800", {"patroller": "guard-wang"}),
    ]
    assert p.of_day(THU)["0800"] == signed


def test_the_daily_record_has_an_item_per_round(kept: Patrols) -> None:
    """Its sentences are checked as text, against the file next to this test."""
    p, clock = kept.patrols, kept.clock
    lines = []

    def show(moment: str, day: date) -> None:
        lines.append(f"{day} {moment}")
        for item_id, (status, zh, en) in kept.items(day).items():
            lines.append(f"  {item_id} {status}: {zh} | {en}")

    clock.set(at(THU, "07:50"))
    show("07:50, nothing recorded", THU)
    p.submit(THU, "0800", all_ok(kept.site), "guard-wang")
    clock.set(at(THU, "16:40"))
    p.submit(THU, "1630", all_ok(kept.site, electricity="大一班插座松动", exits="后门堆放杂物"), "guard-wang")
    clock.set(at(THU, "17:05"))
    p.sign(THU, "0800", "logistics-li")
    clock.set(at(THU, "22:30"))
    p.submit(THU, "2100", all_ok(kept.site), "guard-wang")  # late
    clock.set(at(SAT, "12:00"))
    show("Saturday noon", THU)
    show("Saturday noon", SAT)
    text = "\n".join(lines) + "\n"
    assert text == EXPECTED_TEXTS.read_text(encoding="utf-8")


def test_two_sites_on_one_database_keep_their_own_rounds(kept: Patrols) -> None:
    other_site = kept.site.model_copy(update={"id": "other-kg"})
    found: list[Finding] = []
    other = FirePatrols(kept.db, other_site, SchoolCalendar(other_site), AuditTrail(kept.db, other_site.id),
                        kept.clock, lambda f, _: found.append(f))
    kept.clock.set(at(THU, "08:05"))
    kept.patrols.submit(THU, "0800", all_ok(kept.site), "guard-wang")
    assert other.of_day(THU) == {}
    with pytest.raises(PatrolRefused) as caught:
        other.sign(THU, "0800", "logistics-li")
    assert caught.value.zh == "08:00 的巡查还没有登记，不能审核签字。"
    theirs = other.submit(THU, "0800", all_ok(other_site, exits="后门堆放杂物"), "guard-zhang")
    kept.clock.set(at(THU, "08:30"))
    other.sign(THU, "0800", "logistics-li")
    assert kept.patrols.of_day(THU)["0800"].supervisor is None
    assert [c.id for c in other.of_day(THU)["0800"].problems] == [c.id for c in theirs.problems] == ["exits"]
    # Neither recorded the 16:30 round: each site is reminded of its own.
    kept.clock.set(at(THU, "17:31"))
    kept.patrols.tick()
    other.tick()
    assert [f.device_id for f in kept.findings if f.active] == [f.device_id for f in found if f.active] == [
        "fire-patrol-2026-10-15-1630"]


# ----------------------------------------------------------------- the missed-round reminder


async def _requests(hook: HttpReceiver, n: int) -> list[dict[str, Any]]:
    await hook.wait_for(n)
    return [r.json() for r in hook.requests]


async def test_a_missed_round_reminds_the_person_on_duty_once(tmp_path: Path, state_url: str) -> None:
    with HttpReceiver() as hook:
        site = site_with(tmp_path / "data", fire_patrol={"night_rounds": False},
                         notifications={"channels": [{"id": "office", "type": "webhook", "url": hook.url}]},
                         storage={"state_url": state_url})
        clock = ManualClock(at(THU, "08:30"))
        on_duty = Roster(site, SchoolCalendar(site))
        async with Gateway(site, clock, mqtt=False) as gw:
            await asyncio.sleep(1.5)  # a watchdog tick: 08:00 is still within its hour
            assert hook.requests == []
            clock.set(at(THU, "09:01"))
            [raised] = await _requests(hook, 1)
            assert raised["transition"] == "raised"
            alert = raised["alert"]
            assert (alert["rule"], alert["title_zh"]) == ("fire_patrol_missed", "10-15 08:00 的消防巡查未按时完成")
            assert alert["detail_zh"] == "10-15 08:00 的消防巡查过了 60 分钟仍无记录，请安排巡查并在「消防巡查」中登记。"
            expected = on_duty.chain(to_ms(at(THU, "09:01")))[0]
            assert [p["id"] for p in raised["recipients"]] == [expected.id] == ["logistics-li"]
            assert "位置: 向日葵幼儿园" in raised["text"]
            clock.set(at(THU, "09:05"))
            await asyncio.sleep(1.5)
            assert len(hook.requests) == 1, "reminded once, not on every tick"
            # Recorded late: the alert clears, and the record says so.
            gw.patrols.submit(THU, "0800", all_ok(site), "guard-wang")
            cleared = (await _requests(hook, 2))[1]
            assert (cleared["transition"], cleared["alert"]["state"]) == ("cleared", "cleared")
            clock.set(at(THU, "17:31"))
            third = (await _requests(hook, 3))[2]
            assert (third["transition"], third["alert"]["title_en"]) == (
                "raised", "The 10-15 16:30 fire patrol was not done on time")
            assert [p["id"] for p in third["recipients"]] == [on_duty.chain(to_ms(at(THU, "17:31")))[0].id]
        # Another process (or this one restarted) does not remind again of the same round.
        async with Gateway(site, clock, mqtt=False):
            await asyncio.sleep(1.5)
        assert len(hook.requests) == 3
