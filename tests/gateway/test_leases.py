"""Sites owned by replicas through leases in the state store, on SQLite and PostgreSQL: one
owner a site at any moment, the survivors take a dead replica's sites after its leases
expire, a replica that joins gets its share, and racing replicas never both win a site."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pytest

from gateway.district.leases import Leases, Turn
from gateway.district.ownership import LeaseLost, SiteHold
from gateway.storage.state import StateDatabase

SITES = [f"school-{i:02d}" for i in range(10)]
TTL_S = 0.5


def owners(*replicas: Leases) -> dict[str, str]:
    """Each site's owner as the leases say, checked against what each replica believes."""
    table = {lease.site: lease.owner for lease in replicas[0].leases() if lease.expires_at_ms > 0}
    believed = Counter(site for r in replicas for site in r.held)
    assert all(n == 1 for n in believed.values()), f"a site held by two replicas: {believed}"
    for r in replicas:
        assert all(table[site] == r.replica for site in r.held)
    return table


def turn(r: Leases, sites: list[str]) -> Turn:
    """A turn as the district runner takes it: what it holds beyond its share is stopped, then given up."""
    done = r.turn(sites)
    r.release(done.excess)
    return done


def test_one_replica_owns_every_site_and_keeps_them(state_db: StateDatabase) -> None:
    a = Leases(state_db, "a", TTL_S)
    first = a.turn(SITES)
    assert first.gained == dict.fromkeys(SITES, 1)
    again = a.turn(SITES)
    assert (again.gained, again.lost, set(again.held)) == ({}, frozenset(), set(SITES))
    assert set(owners(a).values()) == {"a"}


def test_a_replica_that_joins_gets_its_share_from_the_others(state_db: StateDatabase) -> None:
    a, b = Leases(state_db, "a", 30), Leases(state_db, "b", 30)
    a.turn(SITES)
    assert b.turn(SITES).gained == {}  # a's leases are alive: b waits for a to give some up
    given = a.turn(SITES)
    assert len(given.excess) == 5
    assert given.share == 5
    # Named, not yet given up: a still runs them until it has stopped them.
    assert b.turn(SITES).gained == {}
    assert set(owners(a, b).values()) == {"a"}
    a.release(given.excess)
    taken = b.turn(SITES)
    assert set(taken.gained) == given.excess
    assert set(taken.gained.values()) == {2}  # a new epoch for each site that changed hands
    for _ in range(3):  # balanced: further turns move nothing
        assert not a.turn(SITES).excess
        assert not b.turn(SITES).gained
    assert Counter(owners(a, b).values()) == {"a": 5, "b": 5}


def test_the_survivors_take_a_dead_replicas_sites_once_its_leases_expire(state_db: StateDatabase) -> None:
    a, b, c = (Leases(state_db, name, TTL_S) for name in "abc")
    for _ in range(4):
        for r in (a, b, c):
            turn(r, SITES)
    dead = set(c.held)
    assert dead, "c never got a share"
    # c is gone (no more turns); a and b turn every quarter of the time to live, as they would
    died = time.monotonic()
    gained: dict[str, float] = {}
    while time.monotonic() - died < TTL_S * 2:
        for r in (a, b):
            gained |= dict.fromkeys(turn(r, SITES).gained, time.monotonic() - died)
        time.sleep(TTL_S / 4)
    assert set(gained) == dead
    assert min(gained.values()) >= TTL_S * 0.9, "taken while c's leases were alive"
    assert max(gained.values()) <= TTL_S * 1.6  # one time to live and a turn or two
    assert Counter(owners(a, b).values()) == {"a": 5, "b": 5}
    # c comes back from a long pause: its next turn says what it lost and it holds nothing
    back = c.turn(SITES)
    assert back.lost == dead
    assert back.gained == {}


def test_a_clean_stop_frees_the_sites_at_once(state_db: StateDatabase) -> None:
    a, b = Leases(state_db, "a", 30), Leases(state_db, "b", 30)
    a.turn(SITES)
    b.turn(SITES)
    a.release_all()
    assert set(b.turn(SITES).gained) == set(SITES)  # no wait for the 30 s leases


def test_replicas_racing_for_free_sites_never_both_win_one(state_db: StateDatabase) -> None:
    replicas = [Leases(state_db, f"r{i}", 30) for i in range(4)]
    for r in replicas:  # every replica is known alive before the race: the share is 3 each
        r.turn([])
    barrier = threading.Barrier(len(replicas))
    won: list[dict[str, int]] = []

    def race(r: Leases) -> None:
        barrier.wait()
        won.append(r.turn(SITES).gained)

    threads = [threading.Thread(target=race, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = Counter(site for gained in won for site in gained)
    assert set(taken.values()) <= {1}
    table = owners(*replicas)
    assert set(table) == set(taken)
    assert max(Counter(table.values()).values()) <= 3


def test_a_site_no_longer_configured_is_given_up(state_db: StateDatabase) -> None:
    a = Leases(state_db, "a", 30)
    a.turn(SITES)
    turn = a.turn(SITES[:-1])
    assert turn.lost == {SITES[-1]}


async def test_a_district_site_not_renewed_in_time_stops_by_itself() -> None:
    """One of a district replica's sites: its runner renews it each turn; with no turn in time
    (the state store away, the replica too busy) it ends itself before the lease may expire."""
    ttl = 0.6
    hold = SiteHold("school-00", "a", 1, ttl, time.monotonic() + ttl, lambda: 0)
    keeping = asyncio.create_task(hold.keep())
    for _ in range(4):  # renewed every third of the time to live: it keeps going
        await asyncio.sleep(ttl / 3)
        assert not keeping.done()
        hold.renewed(time.monotonic() + ttl)
    started = time.monotonic()
    with pytest.raises(LeaseLost, match="not renewed in time"):
        async with asyncio.timeout(ttl * 2):
            await keeping
    assert time.monotonic() - started <= ttl * 5 / 6 + 0.1
    lost = SiteHold("school-01", "a", 1, ttl, time.monotonic() + ttl, lambda: 0)
    lost.lose("taken over by another replica")
    with pytest.raises(LeaseLost, match="taken over"):
        await lost.keep()
