"""The room directory's contract: every implementation runs these (the local one, and Redis).

An implementation is one entry in IMPLEMENTATIONS: how to open a directory
on a clock (seconds, trio's here), the lease TTL its tests use, and the
trio clock they run on. The local directory runs on trio's autojump clock,
so its time passes by sleeping and costs nothing; Redis keeps real time, so
its tests run on a :class:`StepClock` (time still while calls are on the
wire, real seconds when the tests sleep) with a short real TTL.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing

from testsupport.contracts import Implementation, implementation_fixtures, needed
from testsupport.step_clock import StepClock
from videoroomd.rooms.directory import Lease, LeaseLost, LeaseTable, LocalRoomDirectory, RoomTaken

TTL = 10.0


@asynccontextmanager
async def _local(_needed, clock):
    yield LocalRoomDirectory(clock)


@asynccontextmanager
async def _redis(needed, clock):
    from videoroomd.cluster.redis_client import open_redis
    from videoroomd.cluster.redis_directory import RedisRoomDirectory

    server, prefix = needed
    async with open_redis(server.url) as client:
        yield RedisRoomDirectory(client, clock, prefix=prefix)


IMPLEMENTATIONS = {
    "local": Implementation(_local, TTL, lambda: trio.testing.MockClock(autojump_threshold=0)),
    # 1 s: the tests sleep a few TTLs; the margins they keep (0.1 TTL) stay above the wire's delays.
    "redis": Implementation(_redis, 1.0, StepClock, needs="redis"),
}


implementation, clock, ttl = implementation_fixtures(IMPLEMENTATIONS)


@pytest.fixture
async def directory(request, implementation, clock):
    async with implementation.open(needed(request, implementation), trio.current_time) as opened:
        yield opened


async def test_a_claimed_room_is_found_with_its_owner(directory, ttl, clock):
    assert await directory.lookup("lobby") is None
    lease = await directory.claim("lobby", "node-a", ttl=ttl)
    assert (lease.room, lease.owner, lease.expires) == ("lobby", "node-a", trio.current_time() + ttl)
    assert await directory.lookup("lobby") == lease
    assert await directory.lookup("other") is None


async def test_a_second_claim_is_refused_while_the_lease_lives(directory, ttl, clock):
    lease = await directory.claim("lobby", "node-a", ttl=ttl)
    await trio.sleep(ttl - 0.1)
    for owner in ("node-b", "node-a"):  # the holder too: one claim, one lease
        with pytest.raises(RoomTaken) as taken:
            await directory.claim("lobby", owner, ttl=ttl)
        assert taken.value.holder == lease and "node-a" in str(taken.value)
    assert (await directory.claim("other", "node-b", ttl=ttl)).owner == "node-b"  # other rooms are free


async def test_renewing_keeps_the_room_and_notes_its_worker(directory, ttl, clock):
    lease = await directory.claim("lobby", "node-a", ttl=ttl)
    for _ in range(5):
        await trio.sleep(ttl * 0.6)
        lease = await directory.renew(lease, ttl=ttl, worker="2")
    assert lease.expires == trio.current_time() + ttl
    found = await directory.lookup("lobby")
    assert found is not None and (found.owner, found.worker, found.token) == ("node-a", "2", lease.token)
    with pytest.raises(RoomTaken):
        await directory.claim("lobby", "node-b", ttl=ttl)
    assert (await directory.renew(lease, ttl=ttl)).worker == "2"  # a renewal without a worker keeps the one noted


async def test_a_released_room_can_be_claimed_again_with_a_larger_token(directory, ttl, clock):
    first = await directory.claim("lobby", "node-a", ttl=ttl)
    await directory.release(first)
    assert await directory.lookup("lobby") is None
    second = await directory.claim("lobby", "node-b", ttl=ttl)
    assert second.owner == "node-b" and second.token > first.token


async def test_an_expired_lease_is_taken_by_another_owner_and_its_old_holder_is_told(directory, ttl, clock):
    old = await directory.claim("lobby", "node-a", ttl=ttl)
    await trio.sleep(ttl)
    assert await directory.lookup("lobby") is None  # expired: nobody runs it
    new = await directory.claim("lobby", "node-b", ttl=ttl)
    assert new.token > old.token  # the fencing token tells the two holders apart
    with pytest.raises(LeaseLost) as lost:
        await directory.renew(old, ttl=ttl)
    assert lost.value.lease == old and "node-b" in lost.value.why
    assert await directory.lookup("lobby") == new  # the failed renewal changed nothing


async def test_an_expired_lease_cannot_be_renewed_even_when_nobody_took_it(directory, ttl, clock):
    lease = await directory.claim("lobby", "node-a", ttl=ttl)
    await trio.sleep(ttl + 1)
    with pytest.raises(LeaseLost) as lost:
        await directory.renew(lease, ttl=ttl)
    assert "expired" in lost.value.why
    assert (await directory.claim("lobby", "node-a", ttl=ttl)).token > lease.token  # claiming again works


async def test_a_release_by_a_stale_token_is_refused_and_frees_nothing(directory, ttl, clock):
    old = await directory.claim("lobby", "node-a", ttl=ttl)
    await trio.sleep(ttl)
    new = await directory.claim("lobby", "node-b", ttl=ttl)
    with pytest.raises(LeaseLost):
        await directory.release(old)
    assert await directory.lookup("lobby") == new
    forged = Lease("lobby", "node-b", new.token + 1, new.expires)  # a token never given out
    with pytest.raises(LeaseLost):
        await directory.release(forged)
    await directory.release(new)
    with pytest.raises(LeaseLost):  # twice is once too many
        await directory.release(new)
    assert await directory.lookup("lobby") is None


async def test_a_call_made_in_a_cancelled_scope_changes_nothing(directory, ttl, clock):
    with trio.CancelScope() as scope:
        scope.cancel()
        await directory.claim("lobby", "node-a", ttl=ttl)
    assert scope.cancelled_caught and await directory.lookup("lobby") is None
    lease = await directory.claim("lobby", "node-a", ttl=ttl)
    with trio.CancelScope() as scope:
        scope.cancel()
        await directory.release(lease)
    assert await directory.lookup("lobby") == lease


async def test_claims_of_one_room_at_once_give_it_to_exactly_one_owner(directory, ttl, clock):
    won: list[Lease] = []
    refused: list[str] = []

    async def claim(owner: str) -> None:
        try:
            won.append(await directory.claim("lobby", owner, ttl=ttl))
        except RoomTaken as taken:
            refused.append(taken.holder.owner)

    async with trio.open_nursery() as nursery:
        for owner in ("node-a", "node-b", "node-c"):
            nursery.start_soon(claim, owner)
    (lease,) = won
    assert refused == [lease.owner, lease.owner] and await directory.lookup("lobby") == lease


def test_the_lease_table_is_the_rules_on_a_clock_of_its_own():
    now = [1000.0]
    table = LeaseTable(lambda: now[0])
    lease = table.claim("lobby", "node-a", TTL)
    assert lease.expires == 1000.0 + TTL and table.lookup("lobby") == lease
    now[0] += TTL
    assert table.lookup("lobby") is None and table.claim("lobby", "node-b", TTL).token > lease.token
