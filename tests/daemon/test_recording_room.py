"""Recording a room through the daemon with aiortc participants: who may start and stop, what everyone hears.

The page's request is the custom media event ``recording``; everyone connected
gets ``recordingStarted`` / ``recordingStopped`` and a chat line with who; a
participant who connects mid-recording is told at once; a wrong password, a
second start and a stop with nothing running are refused to the asker alone.
"""

from __future__ import annotations

import os

import av
import pytest
import trio

from testsupport.media_bot import bot, media_thread
from testsupport.signalling_helpers import running_daemon
from testsupport.webhook_receiver import webhook_receiver
from videoroomd.recording.export import export_recording
from videoroomd.recording.store import recordings
from videoroomd.recording.trackfile import read_track

pytestmark = pytest.mark.slow


def rooms(directory, mode: str = "manual", extra: str = "") -> str:
    return (f'[recording]\ndirectory = "{directory}"\n{extra}\n'
            f'[rooms.lobby]\nmax_peers = 4\nrecording = "{mode}"\nrecording_password = "tape"\n')


RECORDING_EVENTS = 'events = ["recording.started", "recording.stopped", "recording.ready"]'


def webhooks(url: str, extra: str = "") -> str:
    return f'[webhooks]\nurls = ["{url}"]\nkey = "{"k" * 32}"\n{extra}\n'


def request(action: str, password: str | None = "tape") -> dict:
    data = {"action": action} if password is None else {"action": action, "password": password}
    return {"type": "custom", "data": {"type": "recording", "data": data}}


def of_type(kind: str):
    return lambda event: event["type"] == kind


def chat_lines(participant) -> list[str]:
    return [payload["text"] for event, payload in participant.client.pushes if event == "chat"]


async def test_a_manual_recording_is_started_and_stopped_by_the_password_and_everyone_knows(tmp_path):
    store = tmp_path / "recordings"
    store.mkdir()
    async with webhook_receiver() as app, \
            running_daemon(tmp_path, webhooks(app.url, extra=RECORDING_EVENTS) + rooms(store)) as daemon, \
            media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann, bot(daemon, "Bob", media=media) as bob:
            await ann.publish()
            await bob.send(request("start", "wrong"))
            refused = await bob.wait_for(of_type("recordingRefused"))
            assert refused["data"]["reason"] == "wrong recording password"
            await bob.send(request("stop"))
            refused = await bob.wait_for(lambda e: e["type"] == "recordingRefused" and e["data"]["action"] == "stop")
            assert refused["data"]["reason"] == "no recording runs in this room"
            assert not [e for e in ann.events if e["type"].startswith("recording")]  # nobody else heard
            await bob.send(request("start"))
            for person in (ann, bob):
                started = await person.wait_for(of_type("recordingStarted"))
                assert started["data"]["by"] == "Bob"
            await bob.send(request("start"))
            again = await bob.wait_for(lambda e: e["type"] == "recordingRefused" and "runs already" in e["data"]["reason"])
            assert again
            async with bot(daemon, "Cy", media=media) as cy:  # joins mid-recording: told at once
                told = await cy.wait_for(of_type("recordingStarted"))
                assert told["data"] == started["data"]
                await trio.sleep(3)
                await ann.send(request("stop"))
                for person in (ann, bob, cy):
                    stopped = await person.wait_for(of_type("recordingStopped"))
                    assert stopped["data"]["by"] == "Ann" and stopped["data"]["reason"] == "stopped"
                with trio.fail_after(5):
                    while len(chat_lines(cy)) < 1 or len(chat_lines(ann)) < 2:
                        await trio.sleep(0.05)
                assert chat_lines(ann) == ["Bob started recording this call.", "Ann stopped the recording."]
        told = await app.wait_for(lambda events: "recording.ready" in [e["event"] for e in events], timeout=60)
    (found,) = recordings(store)
    assert found.room == "lobby" and found.by == "Bob" and found.participants == [ann.id]
    assert "lobby" not in os.listdir(store)  # ids, never names, on disk
    tracks = [read_track((found.path / name).read_bytes()) for name in found.tracks]
    assert sorted(t.header.kind for t in tracks) == ["audio", "video"]
    assert all(t.complete and len(t.packets) > 20 for t in tracks)
    # the app heard of it too (webhooks): who started and stopped it, and when its files were ready
    assert [(e["event"], e.get("by"), e["recording"]) for e in told] == [
        ("recording.started", "Bob", found.path.name), ("recording.stopped", "Ann", found.path.name),
        ("recording.ready", None, found.path.name)]


async def test_an_always_room_records_from_its_start_and_a_tiny_quota_stops_it_with_the_call_going_on(tmp_path):
    store = tmp_path / "recordings"
    (store / "rother" / "older").mkdir(parents=True)  # an earlier recording takes all of the 1 MiB but 60 kB
    (store / "rother" / "older" / "p.t.vrtrack").write_bytes(bytes(2 ** 20 - 60_000))
    async with running_daemon(tmp_path, rooms(store, "always", "quota = 1")) as daemon, media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann, bot(daemon, "Bob", media=media) as bob:
            await ann.wait_for(of_type("recordingStarted"))
            audio, video = await ann.publish()
            await bob.send(request("stop"))
            refused = await bob.wait_for(of_type("recordingRefused"))
            assert "records always" in refused["data"]["reason"]
            stopped = await bob.wait_for(of_type("recordingStopped"), timeout=20)
            assert stopped["data"]["reason"] == "quota"
            frames = await bob.frames_from(video, at_least=5)
            await trio.sleep(1)
            assert bob.received[video] > frames  # the call went on
            with trio.fail_after(5):
                while not any("quota" in line for line in chat_lines(ann)):
                    await trio.sleep(0.05)
    older, found = recordings(store)
    tracks_bytes = sum((found.path / name).stat().st_size for name in found.tracks)
    assert older.id == "older" and 50_000 < tracks_bytes <= 60_000  # (the export's files come on top)
    assert all(read_track((found.path / name).read_bytes()).complete for name in found.tracks)


async def test_a_missing_directory_refuses_the_start_saying_so_and_the_call_goes_on(tmp_path):
    async with running_daemon(tmp_path, rooms(tmp_path / "nowhere")) as daemon, media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann:
            await ann.send(request("start"))
            refused = await ann.wait_for(of_type("recordingRefused"))
            assert "does not exist" in refused["data"]["reason"] and str(tmp_path / "nowhere") in refused["data"]["reason"]
            await ann.publish()  # the call is as it was


async def test_an_access_token_granting_record_starts_and_stops_without_the_password(tmp_path):
    import time

    from videoroomd.auth.tokens import Grants, mint

    store = tmp_path / "recordings"
    store.mkdir()
    secret = "r" * 40

    def token(identity: str, grants: Grants) -> str:
        return mint("app", secret, room="lobby", identity=identity, name=identity.title(), now=time.time(), ttl=600,
                    grants=grants)

    keys = f'[auth]\nkeys = {{ app = "{secret}" }}\n'
    async with running_daemon(tmp_path, keys + rooms(store)) as daemon, media_thread() as media:
        async with bot(daemon, "x", media=media, token=token("ann", Grants(record=True))) as ann, \
                bot(daemon, "x", media=media, token=token("bob", Grants())) as bob:
            await bob.send(request("start", None))  # no grant, no password
            refused = await bob.wait_for(of_type("recordingRefused"))
            assert refused["data"]["reason"] == "wrong recording password"
            await ann.send(request("start", None))
            for person in (ann, bob):
                started = await person.wait_for(of_type("recordingStarted"))
                assert started["data"]["by"] == "Ann"
            await ann.send(request("stop", None))
            stopped = await bob.wait_for(of_type("recordingStopped"))
            assert stopped["data"]["by"] == "Ann"
    (found,) = recordings(store)
    assert found.by == "Ann"


async def test_a_daemon_stopped_with_sigterm_mid_recording_leaves_whole_files_that_export(tmp_path, start_daemon):
    store = tmp_path / "recordings"
    store.mkdir()
    daemon = start_daemon(rooms=rooms(store, "always"), media="workers = 1")
    async with media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann:
            await ann.wait_for(of_type("recordingStarted"))
            await ann.publish()
            await trio.sleep(3)
        # Ann left; the room, and its recording, go on until the daemon is told to stop
        assert await trio.to_thread.run_sync(daemon.stop) == 0
    assert '"recording stopped"' in daemon.log() and '"ended": "stopped"' in daemon.log()  # closed by the room's end
    (found,) = recordings(store)
    assert found.ended == "stopped"  # its state says so too
    tracks = [read_track((found.path / name).read_bytes()) for name in found.tracks]
    assert len(tracks) == 2 and all(t.complete and len(t.packets) > 20 for t in tracks)  # closed, not cut
    (made,) = await trio.to_thread.run_sync(export_recording, found.path)
    assert made.duration > 1.5 and made.video_frames > 10 and made.audio_frames > 50


async def test_a_daemon_stopped_during_an_export_leaves_no_half_file_and_runs_it_again_when_it_starts(
        tmp_path, start_daemon):
    store = tmp_path / "recordings"
    store.mkdir()
    config = dict(rooms=rooms(store), media="workers = 1")
    daemon = start_daemon(**config)
    async with media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann:
            await ann.publish()
            await ann.send(request("start"))
            await ann.wait_for(of_type("recordingStarted"))
            await trio.sleep(4)
            await ann.send(request("stop"))
            await ann.wait_for(of_type("recordingStopped"))
        # Ann left; the room stays open, its export job at work: stopped once its first file is on the way
        (found,) = recordings(store)
        with trio.fail_after(30):
            while not list(found.path.glob("*.part")):
                await trio.sleep(0.02)
        assert await trio.to_thread.run_sync(daemon.stop) == 0
    (found,) = recordings(store)
    assert not list(found.path.glob("*.part"))        # the job, stopped, removed its half file
    assert found.export_pending and "meeting.webm" not in found.exports  # and says it did not finish
    tracks = [read_track((found.path / name).read_bytes()) for name in found.tracks]
    assert all(t.complete for t in tracks)
    again = start_daemon(**config, port=daemon.port)  # started again: the export is made
    with trio.fail_after(120):
        while recordings(store)[0].export_pending:
            await trio.sleep(0.2)
    assert "running an unfinished export again" in again.log()
    (found,) = recordings(store)
    assert sorted(found.exports) == sorted([f"{ann.id}.webm", "meeting.webm"]) and not list(found.path.glob("*.part"))
    with av.open(str(found.path / f"{ann.id}.webm")) as container:
        assert abs(container.duration / 1e6 - 4) < 1
        assert sum(1 for _ in container.decode(video=0)) > 20
