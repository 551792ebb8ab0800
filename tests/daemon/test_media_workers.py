"""Media workers behind the message boundary: real processes, killed, hung and stopped."""

from __future__ import annotations

import os
import signal

import pytest
import trio

from videoroomd.exception_groups import only_kind
from videoroomd.media.workers.client import MediaError, WorkerLost
from videoroomd.media.workers.commands import AddCandidate, Answer, Ping, Slot
from videoroomd.media.workers.events import RoomLost
from videoroomd.media.workers.plane import MediaPlane

from testsupport.engine_attack import real_offer
from testsupport.media_bot import media_thread


def gone(pid: int) -> bool:
    """The process ended and was reaped (no zombie left either)."""
    return not os.path.exists(f"/proc/{pid}")


async def open_room(plane: MediaPlane, name: str, events: list):
    return await plane.open_room(name, events.append, ice_servers=[], certificate=None, addresses=["127.0.0.1"])


@pytest.mark.parametrize("mode", ["process", "thread"])
async def test_a_worker_answers_an_offer_and_refuses_what_it_cannot_do(mode):
    plane = MediaPlane(1, mode)
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        link = await open_room(plane, "lobby", [])
        offer, _sending = await real_offer(media, receive_video=1)
        answered = await link.call(Answer(link.key, "e1", offer, {}, (Slot("2", None, "s"),)), timeout=10)
        assert answered.sdp.startswith("v=0") and "a=fingerprint:sha-256" in answered.sdp
        with pytest.raises(MediaError, match="no media connection for endpoint 'nobody'"):
            await link.call(AddCandidate(link.key, "nobody", "candidate:1 1 udp 1 127.0.0.1 9 typ host", 0), timeout=5)
        (row,) = plane.snapshot()
        assert row["running"] and row["rooms"] == 1 and row["cpu_seconds"] > 0
        nursery.cancel_scope.cancel()


async def test_a_killed_worker_takes_only_its_rooms_and_comes_back():
    plane = MediaPlane(2, "process")
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        lost_events, kept_events = [], []
        doomed = await open_room(plane, "doomed", lost_events)
        kept = await open_room(plane, "kept", kept_events)
        assert doomed.worker is not kept.worker  # placed on the least busy worker
        pid = doomed.worker.pid
        os.kill(pid, signal.SIGKILL)
        with trio.fail_after(5):
            while not lost_events:
                await trio.sleep(0.05)
        assert isinstance(lost_events[0], RoomLost) and "media worker" in lost_events[0].reason
        with pytest.raises(WorkerLost):
            await doomed.call(Ping(), timeout=5)
        await kept.call(Ping(), timeout=5)  # the other worker's room never noticed
        assert kept_events == []
        with trio.fail_after(10):  # restarted, and takes rooms again
            while not all(row["running"] for row in plane.snapshot()):
                await trio.sleep(0.05)
        assert [row["restarts"] for row in plane.snapshot()].count(1) == 1
        again = await open_room(plane, "again", [])
        assert again.worker.pid != pid
        nursery.cancel_scope.cancel()
    assert gone(pid)


@pytest.mark.slow
async def test_a_hung_worker_is_restarted_when_its_heartbeat_stops():
    plane = MediaPlane(1, "process")
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        events = []
        link = await open_room(plane, "lobby", events)
        pid = link.worker.pid
        os.kill(pid, signal.SIGSTOP)
        with trio.fail_after(10):
            while not events:
                await trio.sleep(0.1)
        assert "no heartbeat" in events[0].reason
        with trio.fail_after(10):
            while not (plane.workers[0] and plane.workers[0].alive):
                await trio.sleep(0.05)
        assert plane.workers[0].pid != pid
        nursery.cancel_scope.cancel()
    with trio.fail_after(5):
        while not gone(pid):
            await trio.sleep(0.05)


async def test_no_worker_process_is_left_when_the_plane_stops():
    plane = MediaPlane(2, "process")
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        pids = [w.pid for w in plane.workers]
        await open_room(plane, "lobby", [])
        nursery.cancel_scope.cancel()
    assert all(gone(pid) for pid in pids)


async def test_a_worker_that_sends_what_is_not_a_message_is_given_up_with_a_reason():
    """A real worker never does this; one gone wrong (a bug, memory corruption) might. It stands
    in for one here: a heartbeat, then bytes that are no message. The client gives it up, which
    the plane answers with a restart (as for a killed worker)."""
    import socket as socket_module
    import threading
    from contextlib import asynccontextmanager

    from videoroomd.media.workers.client import MediaWorker
    from videoroomd.media.workers.codec import encode
    from videoroomd.media.workers.events import Stats

    class Babbling(MediaWorker):
        @asynccontextmanager
        async def _launch(self, theirs: socket_module.socket):
            def babble():
                theirs.sendall(encode(Stats(0.0, {})))
                threading.Event().wait(0.3)
                theirs.sendall((5).to_bytes(4, "big") + b"hello")

            threading.Thread(target=babble, daemon=True).start()
            try:
                yield trio.Event()
            finally:
                theirs.close()

    worker = Babbling("babbler", "thread")
    events = []
    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            await nursery.start(worker.run)
            worker.rooms["r#1"] = events.append
            await trio.sleep(10)
    lost = only_kind(caught.value, WorkerLost)
    assert lost is not None and "media worker babbler sent a malformed message: not JSON" in str(lost)
    assert events == [RoomLost(str(lost))]  # its rooms are told
