"""The durable spool: order, per-sink cursors, bounds, the accounting, and what survives
closing it at any point."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.base import Event, Sample
from gateway.spool.store import DROP_BEFORE_SINK, DROP_REFUSED, DROP_SPOOL_AGE, DROP_SPOOL_FULL, Rejection, Spool

T0 = 1_700_000_000_000
HOUR = 3_600_000


def sample(i: int) -> tuple[int, Sample | Event]:
    return T0 + i, Sample("em-1", T0 + i * 1000, {"energy_kwh": float(i)})


def open_spool(path: Path, sinks: tuple[str, ...] = ("sqlite", "influxdb"), max_messages: int = 1000,
               max_age_ms: int = 24 * HOUR) -> Spool:
    return Spool(path / "spool.db", sinks, max_messages=max_messages, max_age_ms=max_age_ms, rejected_keep=100)


def balanced(spool: Spool) -> None:
    totals = spool.totals()
    for sink in spool.sinks:
        assert totals.unaccounted(sink) == 0, (sink, totals)


def test_each_sink_reads_oldest_first_from_its_own_cursor(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(10)], [], {"mqtt": 10})
    first = spool.read("sqlite", 4)
    assert [r.seq for r in first] == [1, 2, 3, 4]
    assert first[0].item == sample(0)[1]
    assert first[0].received_ms == T0
    assert spool.advance("sqlite", 1, 4) == 4
    assert [r.seq for r in spool.read("sqlite", 100)] == list(range(5, 11))
    assert [r.seq for r in spool.read("influxdb", 2)] == [1, 2]  # untouched by the other sink
    assert spool.totals().pending == {"sqlite": 6, "influxdb": 10}
    balanced(spool)


def test_rows_every_sink_has_are_deleted(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(10)], [], {"mqtt": 10})
    spool.advance("sqlite", 1, 10)
    assert len(spool) == 10
    spool.advance("influxdb", 1, 6)
    assert len(spool) == 4
    with sqlite3.connect(tmp_path / "spool.db") as conn:
        assert conn.execute("SELECT min(seq), count(*) FROM spool").fetchone() == (7, 4)


def test_events_survive_the_round_trip(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    event = Event("gate", T0, "access", {"credential": "卡:7", "granted": True})
    spool.append([(T0, event)], [], {"http": 1})
    spool.close()
    assert open_spool(tmp_path).read("sqlite", 10)[0].item == event  # from the file: nothing in memory yet


def test_a_sink_reads_the_same_from_memory_as_from_the_file(tmp_path: Path) -> None:
    """The newest messages are read from memory, older ones from the file: a sink that falls
    behind the memory's bound reads on from the file and then from memory, and gets every
    message once, in order, as the file has it."""
    spool = Spool(tmp_path / "spool.db", ["sqlite", "influxdb"], max_messages=1000, max_age_ms=24 * HOUR,
                  rejected_keep=100, tail=4)
    for start in (0, 6):
        spool.append([sample(i) for i in range(start, start + 6)], [], {"mqtt": 6})
    read = []
    while rows := spool.read("influxdb", 5):
        read.extend(rows)
        spool.advance("influxdb", rows[0].seq, rows[-1].seq)
    spool.close()
    from_file = open_spool(tmp_path).read("sqlite", 100)
    assert read == from_file
    assert [r.seq for r in read] == list(range(1, 13))



_STEPS = st.lists(st.one_of(  # (what, which sink, how many)
    st.tuples(st.just("append"), st.just(""), st.integers(0, 9)),
    st.tuples(st.just("read"), st.sampled_from(["sqlite", "influxdb"]), st.integers(1, 7)),
    st.tuples(st.just("enforce"), st.just(""), st.integers(0, 100)),  # drops the oldest past 15 messages
    st.tuples(st.just("reopen"), st.just(""), st.just(0)),  # the memory starts empty
), max_size=60)


@settings(max_examples=300, deadline=None, database=None)
@given(_STEPS)
def test_whatever_the_order_of_calls_a_read_from_memory_is_the_file_s(steps: list[tuple[str, str, int]]) -> None:
    """The messages kept in memory are the file's newest, each with its own sequence number and
    time of receipt, through appends, reads, cursor moves, the bounds' drops and reopenings."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "spool.db"

        def opened() -> Spool:
            return Spool(path, ["sqlite", "influxdb"], max_messages=15, max_age_ms=24 * HOUR, rejected_keep=10, tail=5)

        spool, appended = opened(), 0
        for what, sink, n in steps:
            if what == "append":
                spool.append([sample(appended + i) for i in range(n)], [], {"mqtt": n})
                appended += n
            elif what == "read":
                rows = spool.read(sink, n)
                from_file = opened()  # nothing in memory: read from the file
                assert rows == from_file.read(sink, n)
                from_file.close()
                assert all(r.received_ms == T0 + r.seq - 1 for r in rows)  # message n is the n-th appended
                if rows:
                    spool.advance(sink, rows[0].seq, rows[-1].seq)
            elif what == "enforce":
                spool.enforce(T0 + n)
            else:
                spool.close()
                spool = opened()
        balanced(spool)
        spool.close()

def test_everything_survives_a_reopen_and_sequence_numbers_go_on(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(5)], [Rejection(T0, "http", "x", "not_json", "bad", "{")],
                 {"mqtt": 5, "http": 1})
    spool.advance("sqlite", 1, 5)
    spool.advance("influxdb", 1, 5)  # everything taken: the table is empty now
    totals = spool.totals()
    spool.close()

    again = open_spool(tmp_path)
    assert again.totals() == totals
    again.append([sample(5)], [], {"mqtt": 1})
    assert [r.seq for r in again.read("sqlite", 10)] == [6]
    assert again.totals().received == {"mqtt": 6, "http": 1}
    assert again.totals().rejected == {"not_json": 1}
    balanced(again)


def test_a_sink_taking_rows_twice_counts_them_once(tmp_path: Path) -> None:
    """A writer that stored rows but died before moving its cursor writes them again."""
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(10)], [], {"mqtt": 10})
    assert spool.advance("sqlite", 1, 6) == 6
    assert spool.advance("sqlite", 1, 10) == 4
    assert spool.advance("sqlite", 1, 10) == 0
    assert spool.totals().stored == {"sqlite": 10}
    balanced(spool)


def test_refused_messages_count_as_dropped_for_that_sink(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(10)], [], {"mqtt": 10})
    spool.advance("influxdb", 1, 10, refused=3)
    totals = spool.totals()
    assert totals.stored == {"influxdb": 7}
    assert totals.dropped == {("influxdb", DROP_REFUSED): 3}
    balanced(spool)


def test_beyond_its_size_the_spool_drops_the_oldest_for_the_sinks_behind(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, max_messages=100)
    spool.append([sample(i) for i in range(150)], [], {"mqtt": 150})
    spool.advance("sqlite", 1, 150)  # sqlite keeps up, influxdb is down
    (overflow,) = spool.enforce(T0)
    assert overflow.reason == DROP_SPOOL_FULL
    assert overflow.dropped == {"influxdb": 50}
    assert [r.seq for r in spool.read("influxdb", 1)] == [51]  # the newest 100 are kept
    assert len(spool) == 100
    totals = spool.totals()
    assert totals.dropped == {("influxdb", DROP_SPOOL_FULL): 50}
    assert totals.stored == {"sqlite": 150}
    balanced(spool)
    assert spool.enforce(T0) == []


def test_a_writer_finishing_rows_the_bounds_dropped_meanwhile_counts_only_the_rest(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, max_messages=100)
    spool.append([sample(i) for i in range(150)], [], {"mqtt": 150})
    rows = spool.read("influxdb", 150)
    spool.enforce(T0)  # drops 1..50 for influxdb while its write of 1..150 is under way
    assert spool.advance("influxdb", rows[0].seq, rows[-1].seq) == 100
    balanced(spool)


def test_messages_older_than_the_age_bound_are_dropped(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, max_age_ms=HOUR)
    spool.append([(T0, Sample("em-1", T0, {"energy_kwh": 1.0}))] * 3, [], {"mqtt": 3})
    spool.append([(T0 + HOUR, Sample("em-1", T0 + HOUR, {"energy_kwh": 2.0}))], [], {"mqtt": 1})
    assert spool.enforce(T0 + HOUR) == []  # exactly an hour old: kept
    (overflow,) = spool.enforce(T0 + HOUR + 1)
    assert (overflow.reason, overflow.dropped) == (DROP_SPOOL_AGE, {"sqlite": 3, "influxdb": 3})
    assert [r.seq for r in spool.read("sqlite", 10)] == [4]
    balanced(spool)


def test_a_sink_added_later_starts_at_the_head_and_balances(tmp_path: Path) -> None:
    spool = open_spool(tmp_path, sinks=("sqlite",))
    spool.append([sample(i) for i in range(10)], [Rejection(T0, "http", "", "not_json", "", "")],
                 {"mqtt": 10, "http": 1})
    spool.close()
    spool = open_spool(tmp_path, sinks=("sqlite", "influxdb"))
    assert spool.read("influxdb", 10) == []
    assert spool.totals().dropped == {("influxdb", DROP_BEFORE_SINK): 10}
    balanced(spool)


def test_a_sink_removed_from_the_site_file_no_longer_holds_rows(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(i) for i in range(10)], [], {"mqtt": 10})
    spool.close()
    spool = open_spool(tmp_path, sinks=("sqlite",))
    spool.advance("sqlite", 1, 10)
    assert len(spool) == 0
    assert spool.sinks == ["sqlite"]


def test_a_failed_commit_changes_nothing(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    spool.append([sample(0)], [], {"mqtt": 1})
    before = spool.totals()
    with pytest.raises(sqlite3.DatabaseError, match="simulated"):
        _failing_append(spool)
    assert spool.totals() == before
    spool.append([sample(2)], [], {"mqtt": 1})
    assert [r.seq for r in spool.read("sqlite", 10)] == [1, 2]  # the failed ones took no numbers


def _failing_append(spool: Spool) -> None:
    """An append of two messages whose transaction fails at the second (the full disk
    itself is in tests/test_faults.py)."""
    with sqlite3.connect(spool.path) as other:
        other.execute("CREATE TRIGGER fail BEFORE INSERT ON spool WHEN NEW.seq = 3 "
                      "BEGIN SELECT RAISE(ABORT, 'disk full, simulated'); END")
    try:
        spool.append([sample(1), sample(2)], [], {"mqtt": 2})
    finally:
        with sqlite3.connect(spool.path) as other:
            other.execute("DROP TRIGGER fail")


def test_the_dead_letter_log_is_newest_first_and_bounded(tmp_path: Path) -> None:
    spool = open_spool(tmp_path)
    for batch in range(3):
        spool.append([], [Rejection(T0 + batch * 100 + i, "http", f"d{i}", "wrong_type" if i % 2 else "not_json",
                                    "detail", "{") for i in range(60)], {"http": 60})
    newest = spool.rejections(1000)
    assert len(newest) == 100
    assert newest[0].at_ms == T0 + 200 + 59
    assert [r.reason for r in spool.rejections(5, "not_json")] == ["not_json"] * 5
    assert spool.totals().rejected == {"not_json": 90, "wrong_type": 90}
    balanced(spool)
