"""The room directory's contract: every implementation runs these (today: the local one).

A new implementation (Redis, for several daemons) is one more entry in
IMPLEMENTATIONS: a function that takes a clock and returns a directory.
"""

from __future__ import annotations

import pytest

from videoroomd.rooms.directory import Lease, LeaseLost, LocalRoomDirectory, RoomTaken

TTL = 10.0


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


IMPLEMENTATIONS = {"local": LocalRoomDirectory}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def directory(request, clock):
    return IMPLEMENTATIONS[request.param](clock)


def test_a_claimed_room_is_found_with_its_owner(directory, clock):
    assert directory.lookup("lobby") is None
    lease = directory.claim("lobby", "node-a", ttl=TTL)
    assert (lease.room, lease.owner, lease.expires) == ("lobby", "node-a", clock.now + TTL)
    assert directory.lookup("lobby") == lease
    assert directory.lookup("other") is None


def test_a_second_claim_is_refused_while_the_lease_lives(directory, clock):
    lease = directory.claim("lobby", "node-a", ttl=TTL)
    clock.advance(TTL - 0.1)
    for owner in ("node-b", "node-a"):  # the holder too: one claim, one lease
        with pytest.raises(RoomTaken) as taken:
            directory.claim("lobby", owner, ttl=TTL)
        assert taken.value.holder == lease and "node-a" in str(taken.value)
    assert directory.claim("other", "node-b", ttl=TTL).owner == "node-b"  # other rooms are free


def test_renewing_keeps_the_room_and_notes_its_worker(directory, clock):
    lease = directory.claim("lobby", "node-a", ttl=TTL)
    for _ in range(5):
        clock.advance(TTL * 0.6)
        lease = directory.renew(lease, ttl=TTL, worker="2")
    assert lease.expires == clock.now + TTL
    found = directory.lookup("lobby")
    assert found is not None and (found.owner, found.worker, found.token) == ("node-a", "2", lease.token)
    with pytest.raises(RoomTaken):
        directory.claim("lobby", "node-b", ttl=TTL)
    assert directory.renew(lease, ttl=TTL).worker == "2"  # a renewal without a worker keeps the one noted


def test_a_released_room_can_be_claimed_again_with_a_larger_token(directory):
    first = directory.claim("lobby", "node-a", ttl=TTL)
    directory.release(first)
    assert directory.lookup("lobby") is None
    second = directory.claim("lobby", "node-b", ttl=TTL)
    assert second.owner == "node-b" and second.token > first.token


def test_an_expired_lease_is_taken_by_another_owner_and_its_old_holder_is_told(directory, clock):
    old = directory.claim("lobby", "node-a", ttl=TTL)
    clock.advance(TTL)
    assert directory.lookup("lobby") is None  # expired: nobody runs it
    new = directory.claim("lobby", "node-b", ttl=TTL)
    assert new.token > old.token  # the fencing token tells the two holders apart
    with pytest.raises(LeaseLost) as lost:
        directory.renew(old, ttl=TTL)
    assert lost.value.lease == old and "node-b" in lost.value.why
    assert directory.lookup("lobby") == new  # the failed renewal changed nothing


def test_an_expired_lease_cannot_be_renewed_even_when_nobody_took_it(directory, clock):
    lease = directory.claim("lobby", "node-a", ttl=TTL)
    clock.advance(TTL + 1)
    with pytest.raises(LeaseLost) as lost:
        directory.renew(lease, ttl=TTL)
    assert "expired" in lost.value.why
    assert directory.claim("lobby", "node-a", ttl=TTL).token > lease.token  # claiming again works


def test_a_release_by_a_stale_token_is_refused_and_frees_nothing(directory, clock):
    old = directory.claim("lobby", "node-a", ttl=TTL)
    clock.advance(TTL)
    new = directory.claim("lobby", "node-b", ttl=TTL)
    with pytest.raises(LeaseLost):
        directory.release(old)
    assert directory.lookup("lobby") == new
    forged = Lease("lobby", "node-b", new.token + 1, new.expires)  # a token never given out
    with pytest.raises(LeaseLost):
        directory.release(forged)
    directory.release(new)
    with pytest.raises(LeaseLost):  # twice is once too many
        directory.release(new)
    assert directory.lookup("lobby") is None
