"""The room directory's contract: every implementation runs these (today: the local one).

A new implementation (Redis, for several daemons) is one more entry in
IMPLEMENTATIONS: a function that takes a clock (seconds, trio's here) and
returns a directory. The tests run on trio's autojump clock (each asks for
``autojump_clock``, which is how pytest-trio hands it to the run), so time
passes by sleeping: an implementation with a clock of its own runs them with
a real clock and a short TTL.
"""

from __future__ import annotations

import pytest
import trio

from videoroomd.rooms.directory import Lease, LeaseLost, LeaseTable, LocalRoomDirectory, RoomTaken

TTL = 10.0

IMPLEMENTATIONS = {"local": LocalRoomDirectory}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def directory(request):
    return IMPLEMENTATIONS[request.param](trio.current_time)


async def test_a_claimed_room_is_found_with_its_owner(directory, autojump_clock):
    assert await directory.lookup("lobby") is None
    lease = await directory.claim("lobby", "node-a", ttl=TTL)
    assert (lease.room, lease.owner, lease.expires) == ("lobby", "node-a", trio.current_time() + TTL)
    assert await directory.lookup("lobby") == lease
    assert await directory.lookup("other") is None


async def test_a_second_claim_is_refused_while_the_lease_lives(directory, autojump_clock):
    lease = await directory.claim("lobby", "node-a", ttl=TTL)
    await trio.sleep(TTL - 0.1)
    for owner in ("node-b", "node-a"):  # the holder too: one claim, one lease
        with pytest.raises(RoomTaken) as taken:
            await directory.claim("lobby", owner, ttl=TTL)
        assert taken.value.holder == lease and "node-a" in str(taken.value)
    assert (await directory.claim("other", "node-b", ttl=TTL)).owner == "node-b"  # other rooms are free


async def test_renewing_keeps_the_room_and_notes_its_worker(directory, autojump_clock):
    lease = await directory.claim("lobby", "node-a", ttl=TTL)
    for _ in range(5):
        await trio.sleep(TTL * 0.6)
        lease = await directory.renew(lease, ttl=TTL, worker="2")
    assert lease.expires == trio.current_time() + TTL
    found = await directory.lookup("lobby")
    assert found is not None and (found.owner, found.worker, found.token) == ("node-a", "2", lease.token)
    with pytest.raises(RoomTaken):
        await directory.claim("lobby", "node-b", ttl=TTL)
    assert (await directory.renew(lease, ttl=TTL)).worker == "2"  # a renewal without a worker keeps the one noted


async def test_a_released_room_can_be_claimed_again_with_a_larger_token(directory, autojump_clock):
    first = await directory.claim("lobby", "node-a", ttl=TTL)
    await directory.release(first)
    assert await directory.lookup("lobby") is None
    second = await directory.claim("lobby", "node-b", ttl=TTL)
    assert second.owner == "node-b" and second.token > first.token


async def test_an_expired_lease_is_taken_by_another_owner_and_its_old_holder_is_told(directory, autojump_clock):
    old = await directory.claim("lobby", "node-a", ttl=TTL)
    await trio.sleep(TTL)
    assert await directory.lookup("lobby") is None  # expired: nobody runs it
    new = await directory.claim("lobby", "node-b", ttl=TTL)
    assert new.token > old.token  # the fencing token tells the two holders apart
    with pytest.raises(LeaseLost) as lost:
        await directory.renew(old, ttl=TTL)
    assert lost.value.lease == old and "node-b" in lost.value.why
    assert await directory.lookup("lobby") == new  # the failed renewal changed nothing


async def test_an_expired_lease_cannot_be_renewed_even_when_nobody_took_it(directory, autojump_clock):
    lease = await directory.claim("lobby", "node-a", ttl=TTL)
    await trio.sleep(TTL + 1)
    with pytest.raises(LeaseLost) as lost:
        await directory.renew(lease, ttl=TTL)
    assert "expired" in lost.value.why
    assert (await directory.claim("lobby", "node-a", ttl=TTL)).token > lease.token  # claiming again works


async def test_a_release_by_a_stale_token_is_refused_and_frees_nothing(directory, autojump_clock):
    old = await directory.claim("lobby", "node-a", ttl=TTL)
    await trio.sleep(TTL)
    new = await directory.claim("lobby", "node-b", ttl=TTL)
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


async def test_a_call_made_in_a_cancelled_scope_changes_nothing(directory, autojump_clock):
    with trio.CancelScope() as scope:
        scope.cancel()
        await directory.claim("lobby", "node-a", ttl=TTL)
    assert scope.cancelled_caught and await directory.lookup("lobby") is None
    lease = await directory.claim("lobby", "node-a", ttl=TTL)
    with trio.CancelScope() as scope:
        scope.cancel()
        await directory.release(lease)
    assert await directory.lookup("lobby") == lease


async def test_claims_of_one_room_at_once_give_it_to_exactly_one_owner(directory, autojump_clock):
    won: list[Lease] = []
    refused: list[str] = []

    async def claim(owner: str) -> None:
        try:
            won.append(await directory.claim("lobby", owner, ttl=TTL))
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
