"""What the rules learned, from the state store: every replica, and a restarted gateway,
reads the same base loads."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from gateway.rules.learned import BaseLoad, LearnedStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


def updated(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return dict(conn.execute("SELECT device_id, updated_ms FROM learned_base_loads").fetchall())


def test_another_replica_reads_what_the_rules_learned(path: Path) -> None:
    writer, reader = LearnedStore(path), LearnedStore(path)
    try:
        writer.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(None, None)}, 1_000)
        assert reader.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(None, None)}
    finally:
        writer.close()
        reader.close()


def test_only_what_changed_is_written(path: Path) -> None:
    store = LearnedStore(path)
    try:
        store.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(500.0, 800.0)}, 1_000)
        store.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0), "em-dorm": BaseLoad(520.0, 820.0)}, 2_000)
        assert updated(path) == {"em-main": 1_000, "em-dorm": 2_000}
    finally:
        store.close()


def test_a_restarted_rule_that_has_not_learned_yet_keeps_what_was_learned(path: Path) -> None:
    before = LearnedStore(path)
    before.save_base_loads({"em-main": BaseLoad(2400.0, 2880.0)}, 1_000)
    before.close()
    after = LearnedStore(path)  # the process restarted: its rule has heard no night yet
    try:
        after.save_base_loads({"em-main": BaseLoad(None, None), "em-new": BaseLoad(None, None)}, 2_000)
        assert after.base_loads() == {"em-main": BaseLoad(2400.0, 2880.0), "em-new": BaseLoad(None, None)}
        after.save_base_loads({"em-main": BaseLoad(2600.0, 3100.0)}, 3_000)  # learned again: it moves on
        assert after.base_loads()["em-main"] == BaseLoad(2600.0, 3100.0)
    finally:
        after.close()
