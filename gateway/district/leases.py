"""Which replica owns which site: leases in the shared state store.

Each site is owned by exactly one replica at a time. A lease is a row (site, owner, epoch,
expiry); its owner renews it every turn (a third of its time to live). A replica that dies
stops renewing, its leases expire, and the others take its sites within one time to live and
one turn. A site that changes hands gets a new epoch (a fencing token: what a replica did
under an older epoch is known to be stale).

Every replica keeps a row of its own too (a heartbeat), so that each knows how many are alive
and takes no more than its fair share (sites ÷ replicas alive, rounded up): a replica that
joins gets sites as the others give up what they hold beyond their share; the survivors of a
dead one split its sites.

Times are the database's clock, never the replicas' own: two machines whose clocks disagree
still agree on when a lease ends. Taking a lease is one conditional statement (INSERT … ON
CONFLICT DO UPDATE … WHERE expired), so two replicas that race for a free site cannot both
win it."""

from __future__ import annotations

import math
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import BigInteger, Column, Connection, Integer, Table, Text, and_, cast, func, literal_column, select

from gateway.storage.state import METADATA, StateDatabase

LEASES: Final = Table(
    "site_leases", METADATA,
    Column("site", Text, primary_key=True),
    Column("owner", Text, nullable=False),            # a replica's id
    Column("epoch", BigInteger, nullable=False),      # +1 each time the site changes hands
    Column("expires_at", BigInteger, nullable=False),  # Unix ms, the database's clock
    Column("acquired_at", BigInteger, nullable=False),
)

REPLICAS: Final = Table(
    "replicas", METADATA,
    Column("id", Text, primary_key=True),
    Column("started_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # alive until then, unless it beats again
    Column("url", Text),  # where the other replicas reach its API (a district replica's), if anywhere
)


@dataclass(frozen=True, slots=True)
class Lease:
    site: str
    owner: str
    epoch: int
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class Turn:
    """What one turn found and did. `gained`: sites taken this turn, with their epoch;
    `lost`: sites held before that are not any more (taken by another after this replica
    failed to renew in time, or no longer configured); `excess`: sites still held beyond this
    replica's share, which it should stop running and then `release`, for the balance."""

    held: dict[str, int]
    gained: dict[str, int]
    lost: frozenset[str]
    excess: frozenset[str]
    replicas: int
    share: int
    now_ms: int


class Leases:
    """The leases of one replica (`replica`: an id unique among the replicas, e.g. the host
    name and the process id)."""

    def __init__(self, db: StateDatabase, replica: str, ttl_s: float = 30.0, url: str | None = None) -> None:
        self.db = db
        self.replica = replica
        self.url = url
        self.ttl_ms = int(ttl_s * 1000)
        self._held: dict[str, int] = {}
        db.create(LEASES, REPLICAS)

    @property
    def held(self) -> dict[str, int]:
        """The sites this replica held at its last turn, with their epoch."""
        return dict(self._held)

    def turn(self, sites: Collection[str]) -> Turn:
        """Beats, renews what it holds, names what it holds beyond its share (`Turn.excess`), and
        takes free sites up to its share. `sites`: every site of the deployment."""
        wanted = set(sites)
        with self.db.write() as conn:
            now = self._now(conn)
            expires = now + self.ttl_ms
            self._beat(conn, now, expires)
            replicas = conn.execute(select(func.count()).select_from(REPLICAS)
                                    .where(REPLICAS.c.expires_at > now)).scalar_one()
            share = math.ceil(len(wanted) / max(replicas, 1))
            held = self._renew(conn, expires)
            for site in [s for s in held if s not in wanted]:
                self._release(conn, site)
                del held[site]
            # The sites to give up are chosen by a stable order, not at random: with the same
            # view, two turns name the same ones. They stay held until released: the caller
            # stops running them first, so that no two replicas ever run a site at once.
            excess = frozenset(sorted(held, key=lambda s: (_spread(self.replica, s), s))[:max(0, len(held) - share)])
            gained = {}
            if len(held) < share:
                free = self._free(conn, wanted - held.keys(), now)
                # Taken in the sites' order: two replicas that want some of the same sites lock
                # their rows in one order, and cannot deadlock.
                for site in sorted(free[: share - len(held)]):
                    epoch = self._take(conn, site, now, expires)
                    if epoch is not None:
                        gained[site] = epoch
                        held[site] = epoch
        lost = frozenset(self._held.keys() - held.keys())
        self._held = held
        return Turn(held=dict(held), gained=gained, lost=lost, excess=excess, replicas=replicas, share=share,
                    now_ms=now)

    def release(self, sites: Collection[str]) -> None:
        """Gives up sites this replica has stopped running: the others take them at their next turn."""
        with self.db.write() as conn:
            for site in sorted(sites):
                self._release(conn, site)
        for site in sites:
            self._held.pop(site, None)

    def release_all(self) -> None:
        """A clean stop: the sites are free at once (the others take them at their next turn,
        not after a time to live) and this replica is no longer counted."""
        with self.db.write() as conn:
            conn.execute(LEASES.update().where(LEASES.c.owner == self.replica).values(expires_at=0))
            conn.execute(REPLICAS.delete().where(REPLICAS.c.id == self.replica))
        self._held = {}

    def leases(self) -> list[Lease]:
        """Every site's lease, for /health and the operations view."""
        with self.db.read() as conn:
            rows = conn.execute(select(LEASES).order_by(LEASES.c.site)).all()
        return [Lease(r.site, r.owner, r.epoch, r.expires_at) for r in rows]

    def runner_url(self, site: str) -> str | None:
        """Where the replica that runs `site` now answers, if it is alive and said where."""
        with self.db.read() as conn:
            now = self._now(conn)
            return conn.execute(
                select(REPLICAS.c.url).join(LEASES, LEASES.c.owner == REPLICAS.c.id)
                .where(LEASES.c.site == site, LEASES.c.expires_at > now, REPLICAS.c.expires_at > now)
            ).scalar_one_or_none()

    def _now(self, conn: Connection) -> int:
        if self.db.dialect == "postgresql":
            # clock_timestamp, not now(): now() is the transaction's start
            expression: Any = cast(func.floor(func.extract("epoch", func.clock_timestamp()) * 1000), BigInteger)
        else:
            expression = cast((func.julianday("now") - literal_column("2440587.5")) * 86_400_000, Integer)
        return int(conn.execute(select(expression)).scalar_one())

    def _beat(self, conn: Connection, now: int, expires: int) -> None:
        insert = self.db.insert(REPLICAS).values(id=self.replica, started_at=now, expires_at=expires, url=self.url)
        conn.execute(insert.on_conflict_do_update(index_elements=[REPLICAS.c.id],
                                                  set_={"expires_at": expires, "url": self.url}))
        # Replicas long gone leave no rows behind.
        conn.execute(REPLICAS.delete().where(REPLICAS.c.expires_at < now - 10 * self.ttl_ms))

    def _renew(self, conn: Connection, expires: int) -> dict[str, int]:
        rows = conn.execute(LEASES.update().where(LEASES.c.owner == self.replica).values(expires_at=expires)
                            .returning(LEASES.c.site, LEASES.c.epoch)).all()
        return {r.site: r.epoch for r in rows}

    def _release(self, conn: Connection, site: str) -> None:
        conn.execute(LEASES.update().where(and_(LEASES.c.site == site, LEASES.c.owner == self.replica))
                     .values(expires_at=0))

    def _free(self, conn: Connection, candidates: set[str], now: int) -> list[str]:
        """Sites with no lease or an expired one, never leased first, then the longest expired."""
        rows = conn.execute(select(LEASES.c.site, LEASES.c.expires_at)
                            .where(LEASES.c.site.in_(sorted(candidates)))).all()
        expiry = {r.site: r.expires_at for r in rows}
        free = [s for s in candidates if expiry.get(s, -1) < now]
        return sorted(free, key=lambda s: (expiry.get(s, -1), _spread(self.replica, s), s))

    def _take(self, conn: Connection, site: str, now: int, expires: int) -> int | None:
        insert = self.db.insert(LEASES).values(site=site, owner=self.replica, epoch=1, expires_at=expires,
                                                acquired_at=now)
        taken = insert.on_conflict_do_update(
            index_elements=[LEASES.c.site],
            set_={"owner": self.replica, "epoch": LEASES.c.epoch + 1, "expires_at": expires, "acquired_at": now},
            where=LEASES.c.expires_at < now,
        ).returning(LEASES.c.epoch)
        epoch = conn.execute(taken).scalar_one_or_none()
        return None if epoch is None else int(epoch)


def _spread(replica: str, site: str) -> int:
    """A stable spread of sites over replicas (Python's own hash of a str changes per process)."""
    return zlib.crc32(f"{replica}/{site}".encode())
