"""What the rules learned, from the state store: every replica, and a restarted gateway,
reads the same base loads, each site its own."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import yaml
from sqlalchemy import BigInteger, Column, Float, MetaData, Table, Text, select

from gateway.clock import ManualClock
from gateway.config import parse
from gateway.rules.learned import LEARNED_BASE_LOADS, BaseLoad, LearnedStore
from gateway.rules.power import LoadAfterHoursRule
from gateway.runtime import Gateway
from gateway.storage.state import StateDatabase
from tests.rule_scenarios import DEMO

SITE = "kg"


def updated(db: StateDatabase) -> dict[str, int]:
    t = LEARNED_BASE_LOADS
    with db.read() as conn:
        return {row.device_id: row.updated_ms
                for row in conn.execute(select(t.c.device_id, t.c.updated_ms).where(t.c.site == SITE))}


def test_another_replica_reads_what_the_rules_learned(state_url: str) -> None:
    writer_db, reader_db = StateDatabase(state_url), StateDatabase(state_url)
    try:
        writer, reader = LearnedStore(writer_db, SITE), LearnedStore(reader_db, SITE)
        writer.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(None, None)}, 1_000)
        assert reader.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(None, None)}
    finally:
        writer_db.close()
        reader_db.close()


def test_only_what_changed_is_written(state_db: StateDatabase) -> None:
    store = LearnedStore(state_db, SITE)
    store.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(500.0, 800.0)}, 1_000)
    store.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(520.0, 820.0)}, 2_000)
    assert updated(state_db) == {"em-main": 1_000, "em-dorm": 2_000}
    assert store.base_loads()["em-dorm"] == BaseLoad(520.0, 820.0)


def test_a_restarted_rule_that_has_not_learned_yet_keeps_what_was_learned(state_url: str) -> None:
    before_db = StateDatabase(state_url)
    LearnedStore(before_db, SITE).save_base_loads({"em-main": BaseLoad(2400.0, 2880.0)}, 1_000)
    before_db.close()
    after_db = StateDatabase(state_url)  # the process restarted: its rule has heard no night yet
    try:
        after = LearnedStore(after_db, SITE)
        after.save_base_loads({"em-main": BaseLoad(None, None), "em-new": BaseLoad(None, None)}, 2_000)
        assert after.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0), "em-new": BaseLoad(None, None)}
        after.save_base_loads({"em-main": BaseLoad(2600.0, 3100.0)}, 3_000)  # learned again: it moves on
        assert after.base_loads()["em-main"] == BaseLoad(2600.0, 3100.0)
    finally:
        after_db.close()


def test_each_site_reads_what_its_own_rules_learned(state_db: StateDatabase) -> None:
    kg, other = LearnedStore(state_db, SITE), LearnedStore(state_db, "other")
    kg.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0)}, 1_000)
    other.save_base_loads({"em-main": BaseLoad(900.0, 1100.0), "em-gym": BaseLoad(None, None)}, 2_000)
    assert kg.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0)}
    assert other.base_loads() == {"em-main": BaseLoad(900.0, 1100.0), "em-gym": BaseLoad(None, None)}
    assert LearnedStore(state_db, SITE).base_loads() == kg.base_loads()  # a restart of one site reads its own
    assert updated(state_db) == {"em-main": 1_000}


def test_a_state_database_from_before_sites_keeps_what_was_learned(state_db: StateDatabase) -> None:
    old = Table("learned_base_loads", MetaData(), Column("device_id", Text, primary_key=True),
                Column("base_w", Float), Column("limit_w", Float), Column("updated_ms", BigInteger, nullable=False))
    old.create(state_db.engine)
    with state_db.write() as conn:
        conn.execute(old.insert().values(device_id="em-main", base_w=2400.0, limit_w=2880.0, updated_ms=1_000))
    store = LearnedStore(state_db, SITE)
    assert store.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0)}
    store.save_base_loads({"em-main": BaseLoad(2600.0, 3100.0)}, 2_000)  # its old key still takes a new load
    assert (store.base_loads(), updated(state_db)) == ({"em-main": BaseLoad(2600.0, 3100.0)}, {"em-main": 2_000})


async def test_a_gateway_started_again_or_taking_over_keeps_the_base_load_learned_before(
        tmp_path: Path, state_url: str) -> None:
    """Before, a restart forgot the learned base load and load left on after hours went
    unnoticed until the nights were learned again."""
    data = yaml.safe_load(DEMO.read_text(encoding="utf-8"))
    data["storage"] = {"data_dir": str(tmp_path / "data"), "state_url": state_url}
    site = parse(yaml.safe_dump(data, allow_unicode=True), "site.yaml")
    circuit = next(d.id for d in site.devices if d.kind == "electricity_meter")
    db = StateDatabase(state_url)
    try:
        LearnedStore(db, site.id).save_base_loads({circuit: BaseLoad(2400.0, 2880.0)}, 1_000)
    finally:
        db.close()
    async with Gateway(site, ManualClock(datetime(2026, 10, 15, 8, tzinfo=UTC)), mqtt=False) as gateway:
        rule = gateway.engine.rule(circuit, LoadAfterHoursRule)
        assert rule is not None
        assert rule.params.base_load_w is None  # learned, not configured
        assert rule.base_w() == 2400.0
        assert rule.limit_w() == 2880.0
        # a circuit with nothing saved has still learned nothing
        unsaved = [r for d in site.devices if d.id != circuit
                   and (r := gateway.engine.rule(d.id, LoadAfterHoursRule)) is not None
                   and r.params.base_load_w is None]
        assert unsaved
        assert all(r.base_w() is None for r in unsaved)
