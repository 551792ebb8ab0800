"""Recording in the media worker: a real aiortc client publishing audio and video to a real worker.

What the control plane may rely on: StartRecording makes a track file per track
with the packets as they arrived and the sender reports, the video from a key
frame on; two starts and a stop with nothing running are refused by name; a
quota ends the recording by itself with a RecordingEnded event and the call
goes on; a worker killed mid-recording leaves its files readable up to the
last flush.
"""

from __future__ import annotations

import os
import signal

import av
import pytest
import trio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from testsupport.media_bot import Pattern, Tone, media_thread
from videoroomd.media.dataplane.rtp_packets import vp8_starts_keyframe
from videoroomd.media.webrtc.compat.ice import limit_host_addresses
from videoroomd.media.workers.client import MediaError
from videoroomd.media.workers.commands import Answer, StartRecording, StopRecording
from videoroomd.media.workers.events import EndpointState, RecordingEnded, RoomLost
from videoroomd.media.workers.plane import MediaPlane
from videoroomd.recording.export import export_recording
from videoroomd.recording.trackfile import read_track

pytestmark = pytest.mark.slow


async def publishing_client(media, link, endpoint: str, events: list):
    """An aiortc client publishing a tone and a moving picture as ``endpoint``, once connected."""
    async def offer():
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver(Tone(), direction="sendonly")
        pc.addTransceiver(Pattern(), direction="sendonly")
        limit_host_addresses(pc, ("127.0.0.1",))
        await pc.setLocalDescription(await pc.createOffer())
        return pc, pc.localDescription.sdp, [t.mid for t in pc.getTransceivers()]

    pc, sdp, (audio_mid, video_mid) = await media.call(offer)
    sending = {audio_mid: f"{endpoint}-mic", video_mid: f"{endpoint}-cam"}
    answered = await link.call(Answer(link.key, endpoint, sdp, sending, ()), timeout=10)
    await media.call(pc.setRemoteDescription, RTCSessionDescription(answered.sdp, "answer"))
    with trio.fail_after(10):
        while EndpointState(link.key, endpoint, "connected") not in events:
            await trio.sleep(0.05)
    return pc


def played(path) -> tuple[float, int, int, int]:
    """(duration in seconds, video frames in the file, of them decoded, audio frames decoded) as PyAV reads the WebM."""
    with av.open(str(path)) as container:
        duration = container.duration / 1e6
        packets = sum(1 for p in container.demux(video=0) if p.size)
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = sum(1 for _ in container.decode(audio=0))
    return duration, packets, decoded, audio


def _tracks(path: str) -> dict[str, object]:
    return {name: read_track(open(os.path.join(path, name), "rb").read())
            for name in sorted(os.listdir(path)) if name.endswith(".vrtrack")}


@pytest.mark.parametrize("mode", ["thread", "process"])
async def test_a_recording_keeps_every_track_from_a_keyframe_with_sender_reports(mode, tmp_path):
    plane = MediaPlane(1, mode)
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        events: list = []
        link = await plane.open_room("lobby", events.append, ice_servers=[], certificate=None,
                                     addresses=["127.0.0.1"])
        pc = await publishing_client(media, link, "e1", events)
        with pytest.raises(MediaError, match="no recording runs"):
            await link.call(StopRecording(link.key), timeout=5)
        with pytest.raises(MediaError, match="does not exist"):
            await link.call(StartRecording(link.key, str(tmp_path / "missing"), "room1", "r1", 10 ** 9), timeout=5)
        path = await link.call(StartRecording(link.key, str(tmp_path), "room1", "r1", 10 ** 9,
                                              {"room": "lobby"}), timeout=5)
        assert path == str(tmp_path / "room1" / "r1")
        with pytest.raises(MediaError, match="runs already"):
            await link.call(StartRecording(link.key, str(tmp_path), "room1", "r2", 10 ** 9), timeout=5)
        await trio.sleep(4)
        summary = await link.call(StopRecording(link.key), timeout=5)
        assert summary.tracks == 2 and summary.ended == "stopped" and summary.bytes > 10_000
        tracks = _tracks(path)
        assert sorted(tracks) == ["e1.e1-cam.vrtrack", "e1.e1-mic.vrtrack"]
        audio, video = tracks["e1.e1-mic.vrtrack"], tracks["e1.e1-cam.vrtrack"]
        assert audio.complete and video.complete
        assert audio.header.kind == "audio" and audio.header.clock_rate == 48000
        assert 150 < len(audio.packets) < 260            # 50 a second for ~4 s
        assert any(vp8_starts_keyframe(p.payload) for p in video.packets)
        span = (audio.packets[-1].arrival_us - audio.packets[0].arrival_us) / 1e6
        assert 3.0 < span < 4.6
        assert audio.sender_reports and video.sender_reports  # aiortc reports every 0.5 to 1.5 s
        assert sum(os.path.getsize(os.path.join(path, n)) for n in tracks) == summary.bytes
        # the call went on: the recording stopped, the room did not
        assert not [e for e in events if isinstance(e, (RecordingEnded, RoomLost))]
        if mode == "thread":  # the export, once: remuxed, the duration right, every frame decodes
            (made,) = await trio.to_thread.run_sync(export_recording, path)
            duration, packets, decoded, audio_frames = played(made.path)
            assert made.path.name == "e1.webm" and abs(duration - 4) < 1 and abs(made.duration - duration) < 0.1
            assert packets > 40 and decoded == packets and audio_frames > 150
        await media.call(pc.close)
        nursery.cancel_scope.cancel()


async def test_a_quota_ends_the_recording_by_itself_and_the_call_goes_on(tmp_path):
    plane = MediaPlane(1, "thread")
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        events: list = []
        link = await plane.open_room("lobby", events.append, ice_servers=[], certificate=None,
                                     addresses=["127.0.0.1"])
        pc = await publishing_client(media, link, "e1", events)
        path = await link.call(StartRecording(link.key, str(tmp_path), "room1", "r1", 40_000), timeout=5)
        with trio.fail_after(10):
            while not [e for e in events if isinstance(e, RecordingEnded)]:
                await trio.sleep(0.05)
        (ended,) = [e for e in events if isinstance(e, RecordingEnded)]
        assert ended.room == link.key and ended.recording == "r1" and ended.reason == "quota"
        total = sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path) if n.endswith(".vrtrack"))
        assert 30_000 < total <= 40_000
        assert all(t.complete and t.packets for t in _tracks(path).values())
        with pytest.raises(MediaError, match="no recording runs"):
            await link.call(StopRecording(link.key), timeout=5)
        # another recording may start; the connection never noticed
        await link.call(StartRecording(link.key, str(tmp_path), "room1", "r2", 10 ** 9), timeout=5)
        assert EndpointState(link.key, "e1", "connected") in events and not [e for e in events if isinstance(e, RoomLost)]
        await link.call(StopRecording(link.key), timeout=5)
        await media.call(pc.close)
        nursery.cancel_scope.cancel()


async def test_a_worker_killed_mid_recording_leaves_every_file_readable(tmp_path):
    plane = MediaPlane(1, "process")
    async with trio.open_nursery() as nursery, media_thread() as media:
        await nursery.start(plane.run)
        events: list = []
        link = await plane.open_room("lobby", events.append, ice_servers=[], certificate=None,
                                     addresses=["127.0.0.1"])
        pc = await publishing_client(media, link, "e1", events)
        path = await link.call(StartRecording(link.key, str(tmp_path), "room1", "r1", 10 ** 9), timeout=5)
        await trio.sleep(3.3)
        os.kill(link.worker.pid, signal.SIGKILL)
        with trio.fail_after(10):
            while not [e for e in events if isinstance(e, RoomLost)]:
                await trio.sleep(0.05)
        tracks = _tracks(path)
        assert len(tracks) == 2
        for track in tracks.values():
            assert len(track.packets) > 20  # two flushes at least reached the files
        audio = tracks["e1.e1-mic.vrtrack"]
        span = (audio.packets[-1].arrival_us - audio.packets[0].arrival_us) / 1e6
        assert span > 1.5
        (made,) = await trio.to_thread.run_sync(export_recording, path)  # what was flushed plays
        duration, packets, decoded, audio_frames = played(made.path)
        assert abs(duration - span) < 1 and packets > 10 and decoded == packets and audio_frames > 50
        await media.call(pc.close)
        nursery.cancel_scope.cancel()
