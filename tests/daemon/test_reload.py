"""Reloading the config touches only the rooms that changed, and a bad file changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from structlog.testing import capture_logs

from videoroomd.config import Location, load
from videoroomd.daemon.daemon import Daemon
from videoroomd.daemon.supervisor import RestartPolicy
from videoroomd.rooms import JoinRefused
from videoroomd.config.keys import ROOM_KEYS
from videoroomd.rooms.registry import diff_rooms

from testsupport.daemon import config_text

ROOMS = """
[rooms.keep]
max_peers = 4
[rooms.change]
max_peers = 4
[rooms.drop]
max_peers = 4
"""
NEW_ROOMS = """
[rooms.keep]
max_peers = 4
[rooms.change]
max_peers = 2
[rooms.fresh]
max_peers = 3
"""


def write(path: Path, rooms: str, server: str = "drain_timeout = 0.5") -> None:
    path.write_text(config_text(rooms, server=server))


async def start(nursery: trio.Nursery, path: Path, **kwargs) -> Daemon:
    daemon = Daemon(Location(path), load(Location(path)), **kwargs)
    await nursery.start(daemon.run)
    return daemon


async def test_diff_rooms_sorts_rooms_into_four_kinds(tmp_path):
    path = tmp_path / "a.toml"
    write(path, ROOMS)
    old = load(Location(path)).rooms
    write(path, NEW_ROOMS)
    new = load(Location(path)).rooms
    summary = diff_rooms(old, new)
    assert (summary.added, summary.removed, summary.changed, summary.untouched) == (
        ("fresh",), ("drop",), ("change",), ("keep",))


async def test_reload_starts_added_restarts_changed_drains_removed_and_leaves_the_rest(tmp_path):
    path = tmp_path / "videoroomd.toml"
    write(path, ROOMS)
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, path, watch_interval=0)
        keep, change, drop = [await daemon.rooms.open_room(n) for n in ("keep", "change", "drop")]
        alice = keep.join("alice", None)
        bob = change.join("bob", None)
        carol = drop.join("carol", None)

        write(path, NEW_ROOMS)
        assert await daemon.reload("test") is True

        # untouched: the same room object, and alice is still in her call
        assert daemon.rooms.get("keep") is keep and alice.closed_reason is None and alice.id in keep.peers
        # changed: bob is told to rejoin, and the new room has the new limit
        with trio.fail_after(5):
            while bob.closed_reason is None:
                await trio.sleep(0.01)
        assert bob.closed_reason == "room settings changed; please rejoin" and bob.rejoin
        new_change = await daemon.rooms.open_room("change")
        assert new_change is not change and new_change.config.max_peers == 2
        # added
        assert (await daemon.rooms.open_room("fresh")).config.max_peers == 3
        # removed: no new joins, carol's call goes on until the drain timeout, then ends
        with pytest.raises(JoinRefused, match="no room called 'drop'"):
            await daemon.rooms.open_room("drop")
        with pytest.raises(JoinRefused, match="removed from the configuration"):
            drop.join("dave", None)
        assert carol.closed_reason is None
        with trio.fail_after(5):
            while carol.closed_reason is None:
                await trio.sleep(0.05)
        assert carol.closed_reason == "room was removed from the configuration"
        nursery.cancel_scope.cancel()


async def test_bad_file_on_reload_keeps_the_running_configuration(tmp_path):
    path = tmp_path / "videoroomd.toml"
    write(path, ROOMS)
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, path, watch_interval=0)
        keep = await daemon.rooms.open_room("keep")
        alice = keep.join("alice", None)
        path.write_text(path.read_text() + "\n[rooms.keep.oops]\nmax_peers = 0\n")
        with capture_logs() as logs:
            assert await daemon.reload("test") is False
        refused = [e for e in logs if e["event"] == "reload refused; still running the previous configuration"]
        line = path.read_text().splitlines().index("[rooms.keep.oops]") + 1
        assert refused and refused[0]["problems"] == [
            f"{path}:{line}: rooms.keep.oops: unknown key (known keys here: {', '.join(ROOM_KEYS)})"
        ]
        assert daemon.rooms.get("keep") is keep and alice.closed_reason is None
        assert sorted(daemon.rooms.entries) == ["change", "drop", "keep"]
        nursery.cancel_scope.cancel()


async def test_saving_the_file_reloads_it(tmp_path):
    path = tmp_path / "videoroomd.toml"
    write(path, ROOMS)
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, path, watch_interval=0.05)
        write(path, NEW_ROOMS)
        with trio.fail_after(10):
            while "fresh" not in daemon.rooms.entries:
                await trio.sleep(0.05)
        assert "drop" not in daemon.rooms.entries
        nursery.cancel_scope.cancel()


class CrashingEngine:
    """An engine that fails a while after it starts, as a buggy engine would."""

    runs = 0
    healthy = False

    async def run(self, room, *, task_status=trio.TASK_STATUS_IGNORED):
        CrashingEngine.runs += 1
        task_status.started()
        await trio.sleep(0.01)
        if not CrashingEngine.healthy:
            raise RuntimeError("engine exploded")
        await trio.sleep_forever()

    def peer_joined(self, peer): ...
    def peer_left(self, peer): ...
    def media_event(self, peer, data): ...


async def test_crashing_room_is_restarted_and_given_up_while_other_rooms_run(tmp_path, autojump_clock):
    path = tmp_path / "videoroomd.toml"
    write(path, ROOMS)
    CrashingEngine.runs = 0
    CrashingEngine.healthy = False

    def engines(room_config):
        return CrashingEngine() if room_config.name == "drop" else None

    async with trio.open_nursery() as nursery:
        with capture_logs() as logs:
            daemon = await start(nursery, path, watch_interval=0, engine_factory=engines,
                                 policy=RestartPolicy(first_delay=0.5, max_crashes=3, window=60))
            peer = (await daemon.rooms.open_room("drop")).join("victim", None)
            alice = (await daemon.rooms.open_room("keep")).join("alice", None)
            await trio.sleep(30)
        # the peer of the crashed room was told, the room was restarted, then given up on
        assert peer.closed_reason == "room 'drop' failed; please rejoin"
        assert CrashingEngine.runs == 3
        assert daemon.rooms.entries["drop"].state.status == "failed"
        with pytest.raises(JoinRefused, match="out of order"):
            await daemon.rooms.open_room("drop")
        # the other rooms never noticed
        assert alice.closed_reason is None and daemon.rooms.entries["keep"].state.status == "running"
        assert any(e["event"] == "giving up: crashed too often" and e["child"] == "room:drop" for e in logs)
        # the operator fixes the cause and reloads: the failed room gets another chance, the rest stay as they are
        CrashingEngine.healthy = True
        keep = daemon.rooms.get("keep")
        assert await daemon.reload("fixed")
        assert (await daemon.rooms.open_room("drop")).join("again", None).closed_reason is None
        assert daemon.rooms.get("keep") is keep and alice.closed_reason is None
        nursery.cancel_scope.cancel()


async def test_shutdown_refuses_joins_and_drains_until_the_timeout(tmp_path):
    path = tmp_path / "videoroomd.toml"
    write(path, ROOMS, server="drain_timeout = 1.5")
    async with trio.open_nursery() as nursery:
        daemon = await start(nursery, path, watch_interval=0)
        room = await daemon.rooms.open_room("keep")
        alice = room.join("alice", None)
        nursery.start_soon(daemon.shutdown, "test")
        await trio.sleep(0.5)
        assert daemon.draining
        with pytest.raises(JoinRefused, match="shutting down"):
            await daemon.rooms.open_room("keep")
        with pytest.raises(JoinRefused, match="shutting down"):
            room.join("bob", None)
        assert alice.closed_reason is None  # calls go on during the drain
        with trio.fail_after(5):
            while alice.closed_reason is None:
                await trio.sleep(0.05)
        assert alice.closed_reason == "the server is shutting down" and alice.rejoin  # told to come back
