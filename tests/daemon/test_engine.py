"""The SFU with aiortc participants on 127.0.0.1: publish, receive, leave, late join, voice activity."""

from __future__ import annotations

import pytest
import trio

from testsupport.media_bot import bot, media_thread
from videoroomd.engine import engine
from testsupport.metrics import read, sample
from testsupport.signalling_helpers import running_daemon

ROOMS = "[ice]\naddresses = [\"127.0.0.1\"]\n[rooms.lobby]\nmax_peers = 8\n"


SETTINGS = {"thread": "workers = 0", "process": "workers = 1", "native": 'workers = 1\ndata_plane = "native"'}


@pytest.fixture(params=["thread", "process"])
def media_setting(request) -> str:
    """The same scenario with the media on a thread of the daemon and in a worker process."""
    return SETTINGS[request.param]


@pytest.fixture(params=["thread", "process", "native"])
def media_setting_or_native(request) -> str:
    """As media_setting, and in a worker process whose media sockets the compiled module reads."""
    return SETTINGS[request.param]


def of_type(kind: str):
    return lambda event: event["type"] == kind


def media_metric(daemon, name: str, room: str = "lobby") -> float:
    """One room's ``videoroomd_media_<name>_total`` as /metrics shows it."""
    value = sample(read(daemon), f"videoroomd_media_{name}_total", None, room=room)
    if value is None:
        raise AssertionError(f'/metrics has no videoroomd_media_{name}_total{{room="{room}"}}')
    return value


async def test_connect_lists_the_others_and_announces_the_newcomer(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Ann", media=media) as ann:
            async with bot(daemon, "Bob", media=media) as bob:
                connected = next(e for e in bob.events if e["type"] == "connected")["data"]
                assert connected["otherEndpoints"] == [
                    {"id": ann.id, "type": "webrtc", "metadata": {"displayName": "Ann"}, "tracks": {}}]
                added = await ann.wait_for(of_type("endpointAdded"))
                assert added["data"] == {"id": bob.id, "type": "webrtc", "metadata": {"displayName": "Bob"}}
            removed = await ann.wait_for(of_type("endpointRemoved"))
            assert removed["data"] == {"id": bob.id}


async def test_published_media_reaches_the_others_and_stops_when_the_publisher_leaves(tmp_path, media_setting_or_native):
    async with running_daemon(tmp_path, ROOMS, media=media_setting_or_native) as daemon, media_thread() as media:
        async with bot(daemon, "Viewer", media=media) as viewer:
            async with bot(daemon, "Speaker", media=media) as speaker:
                audio_id, video_id = await speaker.publish()
                added = await viewer.wait_for(of_type("tracksAdded"))
                assert added["data"]["endpointId"] == speaker.id
                assert set(added["data"]["tracks"]) == {audio_id, video_id}
                assert added["data"]["tracks"][video_id]["metadata"] == {"name": "Speaker"}
                await viewer.frames_from(video_id, at_least=15)
                await viewer.frames_from(audio_id, at_least=25)
                room = daemon.rooms.get("lobby")
                assert room.track_count() == 2
                # what an operator sees of it (the counters come with the media worker's heartbeat)
                with trio.fail_after(5):
                    while media_metric(daemon, "packets_forwarded") == 0:
                        await trio.sleep(0.1)
                received, forwarded = media_metric(daemon, "packets_received"), media_metric(daemon, "packets_forwarded")
                assert received > 0 and forwarded > 0 and media_metric(daemon, "bytes_forwarded") > 10 * forwarded
            # the speaker left: its tracks are removed first, then the endpoint
            removed = await viewer.wait_for(of_type("tracksRemoved"))
            assert set(removed["data"]["trackIds"]) == {audio_id, video_id}
            await viewer.wait_for(of_type("endpointRemoved"))
            kinds = [e["type"] for e in viewer.events]
            assert kinds.index("tracksRemoved") < kinds.index("endpointRemoved")
            frames = viewer.received[video_id]
            await trio.sleep(1)
            assert viewer.received[video_id] <= frames + 2  # nothing more arrives
            assert daemon.rooms.get("lobby").track_count() == 0


async def test_three_participants_each_receive_the_other_two(tmp_path, media_setting_or_native):
    async with running_daemon(tmp_path, ROOMS, media=media_setting_or_native) as daemon, media_thread() as media:
        async with bot(daemon, "A", media=media) as a, bot(daemon, "B", media=media) as b, \
                bot(daemon, "C", media=media) as c:
            published = {}
            for participant in (a, b, c):
                (published[participant.name],) = await participant.publish(audio=False)
            for viewer in (a, b, c):
                for name, track_id in published.items():
                    if name != viewer.name:
                        await viewer.frames_from(track_id, at_least=10, timeout=30)


@pytest.mark.slow
async def test_late_joiner_gets_video_at_once(tmp_path, media_setting):
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "Early", media=media) as early:
            (video_id,) = await early.publish(audio=False)
            async with bot(daemon, "Watcher", media=media) as watcher:
                await watcher.frames_from(video_id, at_least=5)
            await trio.sleep(3)  # long past the first keyframe
            async with bot(daemon, "Late", media=media) as late:
                connected = next(e for e in late.events if e["type"] == "connected")["data"]
                assert list(connected["otherEndpoints"][0]["tracks"]) == [video_id]
                # decodable frames need a keyframe: the server asked the publisher for one
                await late.frames_from(video_id, at_least=5, timeout=10)


async def test_audio_level_turns_into_voice_activity(tmp_path, media_setting):
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "Listener", media=media) as listener, bot(daemon, "Talker", media=media) as talker:
            (audio_id,) = await talker.publish(video=False, loud=True)
            event = await listener.wait_for(lambda e: e["type"] == "vadNotification")
            assert event["data"] == {"trackId": audio_id, "status": "speech"}


async def test_a_participant_whose_negotiation_fails_is_removed_alone(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Steady", media=media) as steady, bot(daemon, "Broken", media=media) as broken:
            (video_id,) = await steady.publish(audio=False)
            await broken.wait_for(of_type("tracksAdded"))
            # an offer aiortc cannot take (no codec in common) raises inside the media thread
            await broken.send({"type": "custom", "data": {"type": "sdpOffer", "data": {
                "sdpOffer": {"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
                             "m=video 9 UDP/TLS/RTP/SAVPF 120\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n"
                             "a=rtpmap:120 NOPE/90000\r\na=ice-ufrag:x\r\na=ice-pwd:yyyyyyyyyyyyyyyyyyyyyy\r\n"
                             "a=fingerprint:sha-256 00\r\na=setup:actpass\r\n"},
                "midToTrackId": {}, "trackIdToTrackMetadata": {}}}})
            error = await broken.wait_for(of_type("error"))
            assert error["data"]["message"].startswith("the server could not accept this offer")
            removed = await steady.wait_for(of_type("endpointRemoved"))
            assert removed["data"]["id"] == broken.id
            # the room, its engine and the other participant go on
            before = steady.received.get(video_id, 0)
            async with bot(daemon, "Newcomer", media=media) as newcomer:
                await newcomer.frames_from(video_id, at_least=5)
            assert daemon.rooms.entries["lobby"].state.restarts == 0


def fingerprints(sdp: str) -> set[str]:
    return {line.split(":", 1)[1].strip() for line in sdp.splitlines() if line.startswith("a=fingerprint:")}


async def test_every_connection_uses_the_configured_dtls_certificate(tmp_path, media_setting):
    from videoroomd.certs.generate import generate

    made = generate(tmp_path / "dtls.crt", tmp_path / "dtls.key", cn="media", days=1)
    expected = made.fingerprint  # what `videoroomd gen-cert` prints, as SDP writes it
    rooms = ROOMS.replace("[rooms.lobby]", f'[defaults]\ndtls_cert = "{tmp_path}/dtls.crt"\ndtls_key = "{tmp_path}/dtls.key"\n[rooms.lobby]')
    async with running_daemon(tmp_path, rooms, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "A", media=media) as a, bot(daemon, "B", media=media) as b:
            (video_id,) = await a.publish(audio=False)
            await b.frames_from(video_id, at_least=3)
            answers = [e["data"]["sdp"] for p in (a, b) for e in p.events if e["type"] == "sdpAnswer"]
            assert answers and all(expected in fingerprints(sdp) for sdp in answers)


async def test_without_a_configured_certificate_one_is_made_for_all_connections(tmp_path, media_setting):
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "A", media=media) as a, bot(daemon, "B", media=media) as b:
            (video_id,) = await a.publish(audio=False)
            await b.frames_from(video_id, at_least=3)
            answers = [e["data"]["sdp"] for p in (a, b) for e in p.events if e["type"] == "sdpAnswer"]
            assert len({frozenset(fingerprints(sdp)) for sdp in answers}) == 1


def test_announced_ip_replaces_host_candidate_addresses():
    from videoroomd.sdp.candidates import announce_address

    sdp = ("a=candidate:abc 1 udp 2130706431 10.0.0.5 40000 typ host\r\n"
           "a=candidate:def 1 udp 1694498815 198.51.100.1 40001 typ srflx raddr 10.0.0.5 rport 40000\r\n")
    out = announce_address(sdp, "203.0.113.7")
    assert "a=candidate:abc 1 udp 2130706431 203.0.113.7 40000 typ host" in out
    assert "198.51.100.1 40001 typ srflx" in out  # only host candidates change
    assert announce_address(sdp, None) == sdp


async def test_a_participant_whose_media_connection_ends_is_removed(tmp_path, media_setting):
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "Stays", media=media) as stays, bot(daemon, "Vanishes", media=media) as vanishes:
            (video_id,) = await vanishes.publish(audio=False)
            await stays.frames_from(video_id, at_least=5)
            await vanishes.close()  # its media goes away; its signalling socket stays open
            # its DTLS close ends it at once; were that datagram lost, the silence check's 15 s
            # (engine.SILENCE_TIMEOUT) and a loaded machine's delays: it once took over 30 s
            removed = await stays.wait_for(of_type("endpointRemoved"), timeout=45)
            assert removed["data"]["id"] == vanishes.id
            assert vanishes.id not in daemon.rooms.get("lobby").peers


@pytest.mark.slow
async def test_video_packets_lost_on_the_way_to_a_subscriber_are_sent_again(tmp_path, media_setting):
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "Viewer", media=media) as viewer, bot(daemon, "Speaker", media=media) as speaker:
            (video_id,) = await speaker.publish(audio=False)
            seen = await viewer.frames_from(video_id, at_least=5)
            lost = await viewer.lose_incoming_video(count=6)
            await viewer.frames_from(video_id, at_least=seen + 45, timeout=30)  # 3 s of video later
            assert len(lost) == 6
            missing, retransmitted = await viewer.video_repairs()
            # The viewer asked again (NACK) and the server sent each lost packet again, over RTX.
            assert not missing & lost
            assert retransmitted >= len(lost)
            assert media_metric(daemon, "packets_retransmitted") >= len(lost)


async def test_a_freed_receive_slot_carries_the_next_publisher(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media:
        async with bot(daemon, "Viewer", media=media) as viewer:
            async with bot(daemon, "First", media=media) as first:
                (first_video,) = await first.publish(audio=False)
                await viewer.frames_from(first_video, at_least=5)
                (slot,) = [mid for mid, track in viewer.mid_to_track_id.items() if track == first_video]
            await viewer.wait_for(of_type("tracksRemoved"))
            async with bot(daemon, "Second", media=media) as second:
                (second_video,) = await second.publish(audio=False)
                await viewer.frames_from(second_video, at_least=15, timeout=30)
                # the same slot (same SSRC, sequence numbers going on), another publisher's picture
                assert viewer.mid_to_track_id.get(slot) == second_video


@pytest.mark.slow
async def test_a_participant_whose_network_goes_silent_is_removed(tmp_path, media_setting, monkeypatch):
    monkeypatch.setattr(engine, "SILENCE_TIMEOUT", 3.0)  # instead of 15 s, so the test is short
    async with running_daemon(tmp_path, ROOMS, media=media_setting) as daemon, media_thread() as media:
        async with bot(daemon, "Stays", media=media) as stays, bot(daemon, "Fades", media=media) as fades:
            (video_id,) = await fades.publish(audio=False)
            (stays_video,) = await stays.publish(audio=False)
            await stays.frames_from(video_id, at_least=5)
            await fades.frames_from(stays_video, at_least=5)
            await trio.sleep(4)  # longer than the timeout: a participant that sends is never removed
            assert fades.id in daemon.rooms.get("lobby").peers
            await fades.go_silent()  # its UDP goes quiet; its signalling socket stays open
            removed = await stays.wait_for(of_type("endpointRemoved"), timeout=10)
            assert removed["data"]["id"] == fades.id
            assert fades.id not in daemon.rooms.get("lobby").peers
            # its client is told why, and that joining again (a new connection) may work
            with trio.fail_after(5):
                while ("phx_close", {"reason": "media connection lost", "retry": True}) not in fades.client.pushes:
                    await trio.sleep(0.05)
