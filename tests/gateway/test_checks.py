"""What people write into the daily record (gateway/reports/checks.py) on both engines: the
last check and the last text of a stage win, a role signs a day once, each site keeps its own
rows, and a state.db of an earlier version (keys without a site, a typed name) still takes
them."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pytest

from gateway.auth.audit import AuditTrail
from gateway.clock import ManualClock, to_ms
from gateway.reports.checks import AlreadySigned, ManualChecks
from gateway.storage.state import StateDatabase, sqlite_url

DAY: Final = date(2026, 11, 18)
NOON: Final = datetime(2026, 11, 18, 12, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def checks_of(db: StateDatabase, site: str, clock: ManualClock) -> tuple[ManualChecks, AuditTrail]:
    audit = AuditTrail(db, site)
    return ManualChecks(db, site, audit, clock), audit


def test_the_last_check_and_text_win_and_a_role_signs_once(state_db: StateDatabase) -> None:
    clock = ManualClock(NOON)
    checks, audit = checks_of(state_db, "kg", clock)
    checks.complete(DAY, "canteen:tableware", "problem", "消毒柜未开", "canteen-chen")
    checks.rectify(DAY, "canteen:tableware", "problem", "消毒柜未开", "canteen-chen")
    clock.advance(timedelta(minutes=5))
    checks.complete(DAY, "canteen:tableware", "ok", "已补消毒", "logistics-li")
    checks.complete(DAY + timedelta(days=1), "canteen:tableware", "ok", "", "canteen-chen")
    checks.rectify(DAY, "canteen:tableware", "measure", "重新消毒", "canteen-chen")
    checks.rectify(DAY, "canteen:tableware", "problem", "消毒柜未按时开启", "logistics-li")
    assert [(c.day, c.result, c.note, c.by, c.at_ms) for c in checks.between(DAY, DAY)] == [
        (DAY, "ok", "已补消毒", "logistics-li", to_ms(clock.now()))]
    assert [c.day for c in checks.between(DAY, DAY + timedelta(days=1))] == [DAY, DAY + timedelta(days=1)]
    assert [(w.stage, w.text, w.by) for w in checks.rectifications(DAY, DAY)] == [
        ("measure", "重新消毒", "canteen-chen"), ("problem", "消毒柜未按时开启", "logistics-li")]
    checks.sign(DAY, "inspector", "guard-wang")
    clock.advance(timedelta(minutes=1))
    checks.sign(DAY, "responsible", "logistics-li")
    with pytest.raises(AlreadySigned):
        checks.sign(DAY, "inspector", "logistics-li")
    assert [(s.role, s.by) for s in checks.signatures(DAY, DAY)] == [
        ("inspector", "guard-wang"), ("responsible", "logistics-li")]
    # Nothing replaced is lost: the audit trail has every write, the refused signature not.
    assert [e.action for e in reversed(audit.newest(20))] == [
        "safety_check.completed", "safety_check.rectified", "safety_check.completed", "safety_check.completed",
        "safety_check.rectified", "safety_check.rectified", "safety_record.signed", "safety_record.signed"]


def test_two_sites_on_one_database_see_only_their_own_record(state_db: StateDatabase) -> None:
    clock = ManualClock(NOON)
    ours, _ = checks_of(state_db, "kg", clock)
    theirs, _ = checks_of(state_db, "other-kg", clock)
    ours.complete(DAY, "canteen:tableware", "ok", "", "canteen-chen")
    theirs.complete(DAY, "canteen:tableware", "problem", "消毒柜坏了", "canteen-li")
    ours.rectify(DAY, "canteen:tableware", "problem", "无", "canteen-chen")
    ours.sign(DAY, "inspector", "guard-wang")
    theirs.sign(DAY, "inspector", "guard-zhang")  # the same day and role: each site's own signature
    assert [(c.result, c.by) for c in ours.between(DAY, DAY)] == [("ok", "canteen-chen")]
    assert [(c.result, c.by) for c in theirs.between(DAY, DAY)] == [("problem", "canteen-li")]
    assert theirs.rectifications(DAY, DAY) == []
    assert [s.by for s in ours.signatures(DAY, DAY)] == ["guard-wang"]
    assert [s.by for s in theirs.signatures(DAY, DAY)] == ["guard-zhang"]


def test_a_state_file_of_an_earlier_version_takes_the_checks(tmp_path: Path) -> None:
    """SQLite only: the file is as an earlier version left it (keys without a site, the
    typed name of a check), which only the embedded store has."""
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as old:
        old.executescript("""
            CREATE TABLE manual_checks (day TEXT NOT NULL, item TEXT NOT NULL, result TEXT NOT NULL,
                note TEXT NOT NULL, name TEXT NOT NULL, recorded_by TEXT NOT NULL, at_ms INTEGER NOT NULL,
                PRIMARY KEY (day, item)) WITHOUT ROWID;
            CREATE TABLE rectifications (day TEXT NOT NULL, item TEXT NOT NULL, stage TEXT NOT NULL,
                text TEXT NOT NULL, recorded_by TEXT NOT NULL, at_ms INTEGER NOT NULL,
                PRIMARY KEY (day, item, stage)) WITHOUT ROWID;
            CREATE TABLE ledger_signatures (day TEXT NOT NULL, role TEXT NOT NULL, signed_by TEXT NOT NULL,
                at_ms INTEGER NOT NULL, PRIMARY KEY (day, role)) WITHOUT ROWID;
            INSERT INTO manual_checks VALUES ('2026-11-18', 'canteen:tableware', 'problem', '', '陈师傅',
                'canteen-chen', 1);
            INSERT INTO rectifications VALUES ('2026-11-18', 'canteen:tableware', 'problem', '未消毒',
                'canteen-chen', 1);
            INSERT INTO ledger_signatures VALUES ('2026-11-18', 'inspector', 'guard-wang', 1);
        """)
    old.close()
    db = StateDatabase(sqlite_url(path))
    try:
        checks, _ = checks_of(db, "kg", ManualClock(NOON))
        assert [(c.result, c.by) for c in checks.between(DAY, DAY)] == [("problem", "canteen-chen")]
        checks.complete(DAY, "canteen:tableware", "ok", "已补消毒", "logistics-li")
        checks.rectify(DAY, "canteen:tableware", "problem", "消毒柜未开", "logistics-li")
        with pytest.raises(AlreadySigned):
            checks.sign(DAY, "inspector", "logistics-li")
        checks.sign(DAY, "responsible", "logistics-li")
        assert [(c.result, c.by) for c in checks.between(DAY, DAY)] == [("ok", "logistics-li")]
        assert [(w.text, w.by) for w in checks.rectifications(DAY, DAY)] == [("消毒柜未开", "logistics-li")]
        assert [s.role for s in checks.signatures(DAY, DAY)] == ["inspector", "responsible"]
    finally:
        db.close()
