"""The rooms of a daemon hold leases in the room directory: a room whose lease is lost ends alone.

So does a room whose directory calls fail: a claim that raises or never
answers fails that room only, a renewal that never comes back stops it, and
a release that never comes back delays neither a reload nor a stop."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from videoroomd.config.load import parse
from videoroomd.rooms import JoinRefused, Lease, LocalRoomDirectory, RoomRegistry
from videoroomd.rooms.directory import LEASE_TTL
from videoroomd.rooms.leases import DIRECTORY_TIMEOUT
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
    lease = await registry.directory.lookup("lobby")
    assert lease is not None and lease.owner == "node-a" and lease == registry.entries["lobby"].lease
    await trio.sleep(TTL * 2)  # outlives its first expiry: it was renewed
    renewed = await registry.directory.lookup("lobby")
    assert renewed is not None and renewed.token == lease.token and renewed.expires > lease.expires
    registry.apply(parse("[rooms.keep]\n", "test.toml", Path(".")), drain_timeout=0)
    with trio.fail_after(1):  # removed: given up at once
        while await registry.directory.lookup("lobby") is not None:
            await trio.sleep(0.02)


async def test_a_room_whose_lease_is_lost_stops_alone_with_a_clear_log_line(registry):
    _, ann = await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    _, bob = await registry.join("keep", "Bob", None, kind="rtc", address="127.0.0.1")
    # Another server takes the room over (as after this one stalled past the lease's expiry).
    await registry.directory.release(registry.entries["lobby"].lease)
    theirs = await registry.directory.claim("lobby", "node-b", ttl=60)
    with capture_logs() as logs:
        await wait_until(lambda: ann.closed_reason is not None)
    assert (ann.closed_reason, ann.rejoin) == (LEASE_LOST, True)
    (line,) = [entry for entry in logs if entry["event"] == "room lease lost; stopping the room"]
    assert line["log_level"] == "error" and line["room"] == "lobby" and "node-b" in line["why"]
    await trio.sleep(TTL)
    assert bob.closed_reason is None and registry.get("keep").peer_count() == 1  # the other room never noticed
    assert await registry.directory.lookup("lobby") == theirs  # the room's new holder keeps it
    assert "lobby" not in registry.entries
    with pytest.raises(JoinRefused) as refused:
        await registry.join("lobby", "Cy", None, kind="rtc", address="127.0.0.1")
    assert refused.value.code == "room_unavailable" and "runs elsewhere" in refused.value.reason
    await registry.directory.release(theirs)  # once it is free, the room runs here again
    _, cy = await registry.join("lobby", "Cy", None, kind="rtc", address="127.0.0.1")
    assert cy.closed_reason is None and (await registry.directory.lookup("lobby")).owner == "node-a"


class FlakyDirectory(LocalRoomDirectory):
    """The local directory, whose calls for some rooms fail the way a network's do.

    ``failing[(call, room)]`` is "raise" (the client's error), "hang" (no
    answer, ever) or "slow" (an answer after a while); ``calls`` lists them all."""

    def __init__(self) -> None:
        super().__init__(trio.current_time)
        self.failing: dict[tuple[str, str], str] = {}
        self.calls: list[tuple[str, str]] = []

    async def _as_told(self, call: str, room: str) -> None:
        self.calls.append((call, room))
        how = self.failing.get((call, room))
        if how == "slow":
            await trio.sleep(DIRECTORY_TIMEOUT / 2)
        elif how == "raise":
            raise ConnectionError(f"directory unreachable ({call})")
        if how == "hang":
            await trio.sleep_forever()

    async def claim(self, room: str, owner: str, *, ttl: float = LEASE_TTL) -> Lease:
        await self._as_told("claim", room)
        return await super().claim(room, owner, ttl=ttl)

    async def renew(self, lease: Lease, *, ttl: float = LEASE_TTL, worker: str | None = None) -> Lease:
        await self._as_told("renew", lease.room)
        return await super().renew(lease, ttl=ttl, worker=worker)

    async def release(self, lease: Lease) -> None:
        await self._as_told("release", lease.room)
        await super().release(lease)


async def start_flaky(nursery, failing: dict[tuple[str, str], str], rooms: str = ROOMS) -> RoomRegistry:
    directory = FlakyDirectory()
    directory.failing.update(failing)
    rooms = RoomRegistry(parse(rooms, "test.toml", Path(".")), directory=directory, owner="node-a", lease_ttl=TTL)
    await nursery.start(rooms.run)
    return rooms


async def test_joins_of_a_new_room_whose_claim_is_on_its_way_land_in_one_room(nursery, autojump_clock):
    registry = await start_flaky(nursery, {("claim", "pop-up"): "slow"}, rooms="[server]\ndynamic_rooms = true\n")
    joined = []

    async def join(who: str) -> None:
        joined.append(await registry.join("pop-up", who, None, kind="rtc", address="127.0.0.1"))

    async with trio.open_nursery() as joins:
        for who in ("Ann", "Bob", "Cy"):
            joins.start_soon(join, who)
        await trio.sleep(DIRECTORY_TIMEOUT / 4)  # the claim is on its way: the room is starting
        assert [(row["name"], row["status"], row["dynamic"]) for row in registry.snapshot()] == [
            ("pop-up", "starting", True)]
    (room,) = {room for room, _ in joined}
    assert room.peer_count() == 3 and registry.directory.calls.count(("claim", "pop-up")) == 1
    assert [(row["name"], row["status"], row["peers"]) for row in registry.snapshot()] == [("pop-up", "running", 3)]


@pytest.mark.parametrize("how", ["raise", "hang"])
async def test_a_claim_the_directory_does_not_answer_fails_that_room_alone(nursery, autojump_clock, how):
    with capture_logs() as logs:
        registry = await start_flaky(nursery, {("claim", "lobby"): how})
        with pytest.raises(JoinRefused) as refused:
            await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    assert (refused.value.code, refused.value.reason) == (
        "room_unavailable", "room 'lobby' cannot be opened right now; try again in a moment")
    unanswered = "room not started: the room directory did not answer its claim"
    lines = [entry for entry in logs if entry["event"] == unanswered]
    assert len(lines) == 2 and {line["room"] for line in lines} == {"lobby"}  # at start, and for Ann's join
    assert lines[0]["log_level"] == "error"
    assert ("ConnectionError: directory unreachable (claim)" if how == "raise" else "no answer") in lines[0]["why"]
    _, bob = await registry.join("keep", "Bob", None, kind="rtc", address="127.0.0.1")  # the other room runs on
    assert bob.closed_reason is None
    assert [(row["name"], row["status"], row["peers"]) for row in registry.snapshot()] == [("keep", "running", 1)]
    del registry.directory.failing[("claim", "lobby")]  # the directory is back: the next join opens the room
    _, ann = await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    assert ann.closed_reason is None and (await registry.directory.lookup("lobby")).owner == "node-a"
    assert [row["name"] for row in registry.snapshot()] == ["keep", "lobby"]


async def test_a_lease_the_directory_stops_renewing_stops_that_room_alone(nursery, autojump_clock):
    registry = await start_flaky(nursery, {})
    _, ann = await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
    _, bob = await registry.join("keep", "Bob", None, kind="rtc", address="127.0.0.1")
    registry.directory.failing[("renew", "lobby")] = "raise"
    with capture_logs() as logs:
        await wait_until(lambda: ann.closed_reason is not None)
    assert (ann.closed_reason, ann.rejoin) == (LEASE_LOST, True)
    retries = [entry for entry in logs if entry["event"] == "room lease not renewed; trying again"]
    assert retries and all(entry["log_level"] == "warning" for entry in retries)  # tried again before giving up
    (line,) = [entry for entry in logs if entry["event"] == "room lease lost; stopping the room"]
    assert line["room"] == "lobby" and "did not answer" in line["why"] and "expired" in line["why"]
    assert bob.closed_reason is None and registry.get("keep").peer_count() == 1


async def test_a_release_the_directory_does_not_answer_holds_up_neither_a_reload_nor_a_stop(nursery, autojump_clock):
    registry = await start_flaky(nursery, {("release", "lobby"): "hang", ("release", "keep"): "hang"})
    await registry.join("keep", "Bob", None, kind="rtc", address="127.0.0.1")
    old, keep = registry.entries["lobby"].lease, registry.entries["keep"].lease
    with capture_logs() as logs:
        registry.apply(parse("[rooms.keep]\n", "test.toml", Path(".")), drain_timeout=0)  # lobby removed
        registry.apply(parse(ROOMS, "test.toml", Path(".")), drain_timeout=0)  # and back at once
        # Its old lease was never given back, and no longer renewed: the room runs again once it expired.
        _, ann = await registry.join("lobby", "Ann", None, kind="rtc", address="127.0.0.1")
        new = await registry.directory.lookup("lobby")
        assert ann.closed_reason is None and new.owner == "node-a" and new.token > old.token
        stopping = trio.current_time()
        registry.stop_all("the server is shutting down")
        await wait_until(lambda: not registry.entries)
    assert trio.current_time() - stopping <= DIRECTORY_TIMEOUT + 0.1
    unreleased = [entry for entry in logs if entry["event"] == "room lease not released: the room directory did "
                                                               "not answer in time; it will expire"]
    assert sorted((entry["room"], entry["token"]) for entry in unreleased) == sorted(
        [("lobby", old.token), ("lobby", new.token), ("keep", keep.token)])
    assert all(entry["log_level"] == "warning" for entry in unreleased)


async def test_rooms_cancelled_by_a_shutdown_still_give_their_leases_back(autojump_clock):
    directory = LocalRoomDirectory(trio.current_time)
    rooms = RoomRegistry(parse(ROOMS, "test.toml", Path(".")), directory=directory, owner="node-a", lease_ttl=TTL)
    async with trio.open_nursery() as nursery:
        await nursery.start(rooms.run)
        assert await directory.lookup("lobby") is not None
        nursery.cancel_scope.cancel()
    # Given back at once: another server may run them now, without waiting for them to expire.
    assert await directory.lookup("lobby") is None and await directory.lookup("keep") is None
