"""Rooms that ride out a room directory that does not answer (``ride_out``, as a cluster's rooms do).

While the directory (Redis) is away, the calls go on; once it answers, each
room's lease is renewed, or claimed again with a new token when the
directory lost it, unless another node holds the room by then: only then
does the room stop.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from videoroomd.config.load import parse
from videoroomd.rooms import LocalRoomDirectory, RoomRegistry
from videoroomd.rooms.registry import LEASE_LOST

TTL = 0.3


class AwayDirectory(LocalRoomDirectory):
    """The local directory, which stops answering (raises) while ``away``."""

    away = False

    async def _maybe_away(self) -> None:
        await trio.lowlevel.checkpoint()
        if self.away:
            raise ConnectionError("the directory is away")

    async def lookup(self, room):
        await self._maybe_away()
        return await super().lookup(room)

    async def claim(self, room, owner, *, ttl):
        await self._maybe_away()
        return await super().claim(room, owner, ttl=ttl)

    async def renew(self, lease, *, ttl, worker=None):
        await self._maybe_away()
        return await super().renew(lease, ttl=ttl, worker=worker)

    async def release(self, lease):
        await self._maybe_away()
        await super().release(lease)


@pytest.fixture
async def rooms(nursery):
    registry = RoomRegistry(parse("[rooms.lobby]\n", "test.toml", Path(".")), directory=AwayDirectory(trio.current_time),
                            owner="node-a", lease_ttl=TTL, ride_out=True)
    await nursery.start(registry.run)
    return registry


async def test_a_room_goes_on_while_the_directory_is_away_and_keeps_its_lease_after(rooms, autojump_clock):
    _, ann = await rooms.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    lease = rooms.entries["lobby"].lease
    with capture_logs() as logs:
        rooms.directory.away = True
        await trio.sleep(TTL * 20)
        assert ann.closed_reason is None and rooms.get("lobby").peer_count() == 1
        rooms.directory.away = False
        await trio.sleep(TTL)
    assert ann.closed_reason is None
    away = [e for e in logs if "does not answer" in e["event"]]
    assert len(away) == 1 and away[0]["log_level"] == "warning"  # said once, not at every renewal
    # The local table kept its lease past expiry unclaimed: renewing it failed, and it was claimed again.
    assert rooms.entries["lobby"].lease.token > lease.token
    assert (await rooms.directory.lookup("lobby")).owner == "node-a"


async def test_a_lease_the_directory_lost_is_claimed_again_with_a_larger_token(rooms, autojump_clock):
    _, ann = await rooms.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    old = rooms.entries["lobby"].lease
    rooms.directory.table._leases.clear()  # a directory that restarted empty
    with capture_logs() as logs:
        await trio.sleep(TTL)
    new = rooms.entries["lobby"].lease
    assert ann.closed_reason is None and new.token > old.token
    found = await rooms.directory.lookup("lobby")
    assert (found.owner, found.token) == ("node-a", rooms.entries["lobby"].lease.token)
    assert any(e["event"] == "room lease claimed again: the room directory had lost it" for e in logs)


async def test_a_room_another_node_took_meanwhile_stops_here(rooms, autojump_clock):
    _, ann = await rooms.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    rooms.directory.table._leases.clear()
    taken = await rooms.directory.claim("lobby", "node-b", ttl=TTL * 10)  # node-b was faster
    with trio.fail_after(5):
        while ann.closed_reason is None:
            await trio.sleep(0.01)
    assert (ann.closed_reason, ann.rejoin) == (LEASE_LOST, True)
    assert await rooms.directory.lookup("lobby") == taken and "lobby" not in rooms.entries
