"""The rooms of a daemon hold leases in the room directory: a room whose lease is lost ends alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from videoroomd.config.load import parse
from videoroomd.rooms import JoinRefused, LocalRoomDirectory, RoomRegistry
from videoroomd.rooms.registry import LEASE_LOST

ROOMS = "[rooms.lobby]\n[rooms.keep]\n"
TTL = 0.3  # renewed every 0.1 s


async def wait_until(predicate, timeout: float = 5.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.02)


@pytest.fixture
async def registry(nursery):
    directory = LocalRoomDirectory(trio.current_time)
    rooms = RoomRegistry(parse(ROOMS, "test.toml", Path(".")), directory=directory, owner="node-a", lease_ttl=TTL)
    await nursery.start(rooms.run)
    return rooms


async def test_running_rooms_hold_renewed_leases_and_release_them(registry):
    lease = registry.directory.lookup("lobby")
    assert lease is not None and lease.owner == "node-a" and lease == registry.entries["lobby"].lease
    await trio.sleep(TTL * 2)  # outlives its first expiry: it was renewed
    renewed = registry.directory.lookup("lobby")
    assert renewed is not None and renewed.token == lease.token and renewed.expires > lease.expires
    registry.apply(parse("[rooms.keep]\n", "test.toml", Path(".")), drain_timeout=0)
    await wait_until(lambda: registry.directory.lookup("lobby") is None)  # removed: given up at once


async def test_a_room_whose_lease_is_lost_stops_alone_with_a_clear_log_line(registry):
    _, ann = await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    _, bob = await registry.join("keep", "Bob", None, kind="rtc", address="127.0.0.1")
    # Another server takes the room over (as after this one stalled past the lease's expiry).
    registry.directory.release(registry.entries["lobby"].lease)
    theirs = registry.directory.claim("lobby", "node-b", ttl=60)
    with capture_logs() as logs:
        await wait_until(lambda: ann.closed_reason is not None)
    assert (ann.closed_reason, ann.rejoin) == (LEASE_LOST, True)
    (line,) = [entry for entry in logs if entry["event"] == "room lease lost; stopping the room"]
    assert line["log_level"] == "error" and line["room"] == "lobby" and "node-b" in line["why"]
    await trio.sleep(TTL)
    assert bob.closed_reason is None and registry.get("keep").peer_count() == 1  # the other room never noticed
    assert registry.directory.lookup("lobby") == theirs  # the room's new holder keeps it
    assert "lobby" not in registry.entries
    with pytest.raises(JoinRefused) as refused:
        await registry.join("lobby", "Cy", None, kind="rtc", address="127.0.0.1")
    assert refused.value.code == "room_unavailable"
    registry.directory.release(theirs)  # once it is free, the room runs here again
    _, cy = await registry.join("lobby", "Cy", None, kind="rtc", address="127.0.0.1")
    assert cy.closed_reason is None and registry.directory.lookup("lobby").owner == "node-a"
