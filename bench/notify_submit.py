"""What `Notifier.submit` costs the event loop: a notice for two channels written to the
outbox in one transaction, on SQLite (as the embedded gateway commits: WAL,
synchronous=NORMAL) and on the tests' PostgreSQL server (fsync off: the driver's and the
round trips' cost, not a disk's). Nothing delivers meanwhile, so the channels' backlogs grow
to `--notices` (the count behind the queue bound grows with them): a worst case.

    .venv/bin/python -m bench.notify_submit --notices 1000
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway import config
from gateway.alerting.alerts import Alert, AlertState, Notice, Transition
from gateway.alerting.severity import Severity
from gateway.clock import ManualClock
from gateway.counters import Counters
from gateway.notify.notifier import Notifier
from gateway.storage.state import StateDatabase, sqlite_url
from tests.services import start_postgres

SITE = """\
id: bench
name: 测试学校
buildings: [{id: main, name: 教学楼, rooms: [{id: kitchen, name: 厨房, type: kitchen}]}]
notifications:
  channels:
    - {id: office, type: webhook, url: "http://127.0.0.1:9/office", queue: 10000}
    - {id: guard, type: webhook, url: "http://127.0.0.1:9/guard", queue: 10000}
"""


def notice(i: int) -> Notice:
    alert = Alert(i, "door_after_hours", "kitchen-door", "main", "kitchen", Severity.CRITICAL, AlertState.ACTIVE,
                  "厨房门 在闭园时段开着", "Kitchen door open after hours", "自 21:03 起, 已 12 分钟",
                  "since 21:03, 12 min", {"since_ms": 1_746_536_580_000}, 1_746_536_580_000, 1_746_536_700_000, 1)
    return Notice(Transition.RAISED, alert, 1_746_537_300_000)


def submit_us(url: str, notices: int) -> list[float]:
    db = StateDatabase(url)
    try:
        notifier = Notifier(config.parse(SITE, "bench.yaml"), Counters(), ManualClock(datetime.now(UTC)), db)
        took = []
        for i in range(notices):
            one = notice(i)
            started = time.perf_counter_ns()
            notifier.submit(one)
            took.append((time.perf_counter_ns() - started) / 1000)
        return took
    finally:
        db.close()


def show(engine: str, took: list[float]) -> None:
    took.sort()
    print(f"{engine:<11} median {statistics.median(took):6.0f} µs   p95 {took[len(took) * 95 // 100]:6.0f} µs   "
          f"max {took[-1]:7.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        show("SQLite", submit_us(sqlite_url(Path(directory) / "state.db"), args.notices))
    server = start_postgres()
    try:
        show("PostgreSQL", submit_us(server.new_schema(), args.notices))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
