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
        links = [await open_room(plane, name, []) for name in ("lobby", "hall")]  # the second starts worker 2
        pids = [w.pid for w in plane.workers]
        assert {link.worker.pid for link in links} == set(pids) and None not in pids
        nursery.cancel_scope.cancel()
    assert all(gone(pid) for pid in pids)


def children() -> set[int]:
    """This process's child processes now."""
    found = set()
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as file:
            found.update(int(pid) for pid in file.read().split())
    return found


async def test_only_the_first_worker_starts_with_the_plane_and_the_others_when_a_room_needs_them():
    before = children()
    plane = MediaPlane(3, "process")
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        await trio.sleep(0.5)
        first = plane.workers[0].pid
        assert children() - before == {first}
        assert [(row["worker"], row["running"], row["started"], row["pid"]) for row in plane.snapshot()] == [
            ("1", True, True, first), ("2", False, False, None), ("3", False, False, None)]
        lobby = await open_room(plane, "lobby", [])
        assert lobby.worker.pid == first and children() - before == {first}
        check = await plane.open_room("check", lambda _event: None, ice_servers=[], certificate=None,
                                      addresses=["127.0.0.1"], may_start=False)  # as the connectivity check does
        assert check.worker.pid == first and children() - before == {first}
        await check.close(5)
        hall = await open_room(plane, "hall", [])  # the least loaded is worker 2, not started: it starts now
        assert hall.worker_name == "2" and children() - before == {first, hall.worker.pid}
        await hall.call(Ping(), timeout=5)
        assert [(row["running"], row["started"], row["rooms"]) for row in plane.snapshot()] == [
            (True, True, 1), (True, True, 1), (False, False, 0)]
        await hall.close(5)
        await lobby.close(5)
        again = await open_room(plane, "again", [])  # a started worker stays: no third process for this
        assert again.worker_name in ("1", "2") and plane.states[2] == "waiting"
        nursery.cancel_scope.cancel()


async def test_a_worker_that_cannot_start_when_a_room_needs_it_leaves_the_room_to_one_that_runs(monkeypatch):
    """Worker 2 fails its first start (as a worker would whose process cannot run, say, out of memory):
    the daemon runs already, so the room goes to worker 1, and worker 2 is retried like a lost one."""
    from videoroomd.media.workers import plane as plane_module
    from videoroomd.media.workers.client import MediaWorker

    class FailingSecond(MediaWorker):
        async def run(self, *, task_status=trio.TASK_STATUS_IGNORED):
            if self.name == "2":
                raise WorkerLost("it could not start")
            await super().run(task_status=task_status)

    monkeypatch.setattr(plane_module, "MediaWorker", FailingSecond)
    plane = MediaPlane(2, "thread")
    async with trio.open_nursery() as nursery:
        await nursery.start(plane.run)
        lobby = await open_room(plane, "lobby", [])
        with trio.fail_after(5):
            hall = await open_room(plane, "hall", [])
        assert lobby.worker_name == hall.worker_name == "1"
        with trio.fail_after(5):
            while plane.restarts[1] < 2:  # retried with its backoff, never given up
                await trio.sleep(0.05)
        assert [(row["running"], row["started"]) for row in plane.snapshot()] == [(True, True), (False, True)]
        nursery.cancel_scope.cancel()


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
