"""What the rules have learned that others read, kept in the state store: each circuit's base
load (the median of its recent nights) and the limit above which load left on is waste.

The rules learn in the memory of the process that runs them; the daily record and the closing
board read it here instead, so that another replica, or this process after a restart, answers
the same. The gateway saves what changed once a second (`Gateway._watch`); a base load moves
once a night, so that is a handful of rows a day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Float, PrimaryKeyConstraint, Table, Text, select

from gateway.storage.state import METADATA, StateDatabase

LEARNED_BASE_LOADS = Table(
    "learned_base_loads", METADATA,
    Column("site", Text, nullable=False, server_default=""),
    Column("device_id", Text, nullable=False),
    Column("base_w", Float),                   # NULL: not learned yet
    Column("limit_w", Float),
    Column("updated_ms", BigInteger, nullable=False),
    # A state.db from before sites keeps its key, the device alone: it holds one site.
    PrimaryKeyConstraint("site", "device_id"),
)


@dataclass(frozen=True, slots=True)
class BaseLoad:
    base_w: float | None  # None: not enough nights heard yet
    limit_w: float | None


class LearnedStore:
    """What one site's rules learned."""

    def __init__(self, db: StateDatabase, site_id: str) -> None:
        self._db = db
        self._site = site_id
        db.create(LEARNED_BASE_LOADS, site=site_id)
        self._saved = self.base_loads()

    def save_base_loads(self, loads: Mapping[str, BaseLoad], now_ms: int) -> None:
        """Keeps the loads that changed since the last save. A rule that has not learned yet
        (just restarted: its nights are in the memory of the process that stopped) does not
        wipe out what was learned before."""
        changed = [(d, b) for d, b in loads.items()
                   if self._saved.get(d) != b and not (b.base_w is None and d in self._saved)]
        if not changed:
            return
        t = LEARNED_BASE_LOADS
        # Replaced, not upserted: an upsert names the key, which a state.db from before sites has without the site.
        with self._db.write() as conn:
            conn.execute(t.delete().where(t.c.site == self._site, t.c.device_id.in_([d for d, _ in changed])))
            conn.execute(t.insert(), [{"site": self._site, "device_id": d, "base_w": b.base_w, "limit_w": b.limit_w,
                                       "updated_ms": now_ms} for d, b in changed])
        self._saved.update(changed)

    def base_loads(self) -> dict[str, BaseLoad]:
        t = LEARNED_BASE_LOADS
        with self._db.read() as conn:
            rows = conn.execute(select(t.c.device_id, t.c.base_w, t.c.limit_w).where(t.c.site == self._site)).all()
        return {row.device_id: BaseLoad(row.base_w, row.limit_w) for row in rows}
