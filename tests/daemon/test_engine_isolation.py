"""One participant's media events, offers and media connection end at most that participant:
a room with two bots in a call, and a third participant sending what it should not."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import trio
from aioice import stun

from testsupport.engine_attack import ROOMS, call, intruder, mutate_offer, real_offer
from testsupport.media_bot import media_thread, nack_everything
from testsupport.metrics import families, read
from testsupport.signalling_helpers import running_daemon
from testsupport.wait import until
from test_engine import media_metric
from videoroomd.media.dataplane import subscriber
from videoroomd.media.workers.commands import ListEndpoints
from videoroomd.media.webrtc.compat import ice as aioice_hooks
from videoroomd.engine import engine as engine_module
from videoroomd.sdp import offer as sdp_module
from videoroomd.engine import session as session_module
from videoroomd.media.webrtc.connections import EndpointConnection
from videoroomd.engine.session import Session


def error_text(event: dict) -> str:
    assert event["type"] == "error", event
    return event["data"]["message"]


async def test_simulcast_events_about_tracks_that_are_not_simulcast_are_taken_quietly_and_the_call_goes_on(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            track = f"{third.id}:00000000-0000-0000-0000-000000000000"
            # as the official client sends them (setTrackBandwidth, simulcast controls)
            for kind, data in [("trackVariantBitrates", {"trackId": track, "variantBitrates": {"h": 1500, "m": 500}}),
                               ("setTargetTrackVariant", {"trackId": track, "variant": "h"})]:
                await third.send({"type": "custom", "data": {"type": kind, "data": data}})
            for kind in ("enableTrackEncoding", "disableTrackEncoding"):
                await third.send({"type": kind, "data": {"trackId": track, "encoding": "l"}})
            # still served, and nothing was refused
            await third.send({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": "Third"}}})
            updated = await room.a.wait_for(lambda e: e["type"] == "endpointUpdated")
            assert updated["data"] == {"id": third.id, "metadata": {"displayName": "Third"}}
            assert not [e for e in third.events if e["type"] == "error"]
        await room.goes_on()


async def test_an_offer_bundling_a_mid_it_does_not_have_ends_only_its_sender(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        sdp, sending = await real_offer(media)
        (group,) = [line for line in sdp.splitlines() if line.startswith("a=group:BUNDLE")]
        async with intruder(daemon) as third:
            error = await third.offer(sdp.replace(group, group + " 7"), sending)
            assert "a=group:BUNDLE names mid '7', which no m-line has" in error_text(error)
            assert (await third.closed())["reason"].startswith("offer refused")
            removed = await room.a.wait_for(lambda e: e["type"] == "endpointRemoved" and e["data"]["id"] == third.id)
            assert removed
        await room.goes_on()


@pytest.mark.parametrize("text, expected", [
    ("[" * 1000 + "]" * 1000, "nested"),
    ('{"type": "connect", "data": {"metadata": {"n": 1' + "0" * 5000 + "}}}", "not JSON"),
    ('{"type": "connect", "data": {"metadata": {"n": 1e999}}}', "not JSON"),
    ('{"type": "connect", "data": {"metadata": "\\ud800"}}', "not JSON"),
])
async def test_media_events_too_deep_or_with_numbers_too_big_are_refused_with_an_error(tmp_path, text, expected):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon, connect=False) as third:
            await third.send_text(text)
            assert expected in error_text(await third.next(("error",)))
            # the same participant may go on, and the others still hear of it
            await third.connect({"displayName": "Third"})
            added = await room.a.wait_for(lambda e: e["type"] == "endpointAdded" and e["data"]["id"] == third.id)
            assert added["data"]["metadata"] == {"displayName": "Third"}
        await room.goes_on()


async def test_connect_metadata_that_parses_always_reaches_the_next_participant(tmp_path):
    # With the standard library's json these parsed, and encoding them again for the
    # next participant's "connected" raised inside the engine.
    metadata = '{"big": 18446744073709551616, "long": 1' + "0" * 300 + ', "tiny": 1e-320, "text": "\\u0000\\udbff\\udfff"}'
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon, connect=False) as third:
            await third.send_text('{"type": "connect", "data": {"metadata": ' + metadata + "}}")
            third.id = (await third.next(("connected",)))["data"]["id"]
            async with intruder(daemon, connect=False) as fourth:
                others = (await fourth.connect() and fourth.events[-1])["data"]["otherEndpoints"]
                (seen,) = [o["metadata"] for o in others if o["id"] == third.id]
                assert seen["big"] == 18446744073709551616 and seen["text"] == "\u0000\U0010ffff"
        await room.goes_on()


async def test_metadata_larger_than_4_kib_is_refused_and_never_reaches_the_others(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon, connect=False) as third:
            big = {"displayName": "x" * 5000}
            await third.send({"type": "connect", "data": {"metadata": big}})
            assert error_text(await third.next(("error",))) == "connect: metadata is 5018 bytes as JSON; at most 4096 are accepted"
            await third.connect({"displayName": "Third"})
            await third.send({"type": "updateEndpointMetadata", "data": {"metadata": big}})
            assert "at most 4096" in error_text(await third.next(("error",)))
            sdp, sending = await real_offer(media, receive_video=0)
            mids = {mid: f"{third.id}:track-{mid}" for mid in sending}
            await third.send({"type": "custom", "data": {"type": "sdpOffer", "data": {
                "sdpOffer": {"type": "offer", "sdp": sdp}, "midToTrackId": mids,
                "trackIdToTrackMetadata": {t: big for t in mids.values()}}}})
            assert "trackIdToTrackMetadata" in error_text(await third.next(("error",)))
        assert not [e for e in room.a.events + room.b.events
                    if e["type"] in ("endpointUpdated", "tracksAdded") and "x" * 5000 in json.dumps(e)]
        await room.goes_on()


async def test_refused_media_events_are_answered_with_what_was_wrong(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon, connect=False) as third:
            cases = [
                ({"type": "renegotiateTracks"}, "unknown media event 'renegotiateTracks'"),
                ({"type": "custom", "data": {"type": "renegotiateTracks"}}, "send connect first"),
                ({"type": "custom", "data": {"type": "candidate", "data": {}}}, "candidate: candidate is missing"),
                ({"type": "custom", "data": {"type": "candidate", "data": {"candidate": "x", "sdpMLineIndex": True}}},
                 "candidate: sdpMLineIndex has the wrong type"),
                ({"type": "custom", "data": {"type": "candidate", "data": {"candidate": "x", "sdpMLineIndex": 10**9}}},
                 "candidate: sdpMLineIndex 1000000000 is not an m-line index"),
                ({"type": "updateTrackMetadata", "data": {"trackMetadata": {}}}, "updateTrackMetadata: trackId is missing"),
                ({"type": "connect", "data": []}, "connect: data must be an object"),
            ]
            for event, expected in cases:
                await third.send(event)
                assert expected in error_text(await third.next(("error",)))
            await third.connect()
            await third.send({"type": "connect", "data": {}})
            assert error_text(await third.next(("error",))) == "already connected"
            await third.send({"type": "updateTrackMetadata", "data": {"trackId": "nope", "trackMetadata": {}}})
            assert error_text(await third.next(("error",))) == "no published track 'nope'"
        await room.goes_on()


async def test_candidates_before_any_offer_are_kept_up_to_a_bound(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            limit = engine_module.MAX_CANDIDATES
            line = "candidate:1 1 udp 2130706431 127.0.0.1 {} typ host"
            for port in range(1000, 1000 + limit + 100):
                await third.send({"type": "custom", "data": {"type": "candidate", "data": {
                    "candidate": line.format(port), "sdpMLineIndex": 0}}})
            errors = []
            with trio.move_on_after(3):
                while len(errors) < 100:
                    errors.append(error_text(await third.next(("error",))))
            assert len(errors) == 100 and set(errors) == {f"candidate: more than {limit} candidates before the first offer"}
            assert len(daemon.rooms.get("lobby").engine._early_candidates[third.id]) == limit
            # an offer still works, and takes the kept candidates
            sdp, sending = await real_offer(media)
            assert (await third.offer(sdp, sending))["type"] == "sdpAnswer"
        await room.goes_on()


async def test_an_error_nobody_foresaw_ends_only_the_participant_it_happened_for(tmp_path, monkeypatch):
    def broken(self, endpoint_id, metadata):
        raise RuntimeError("a bug in the session rules")

    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            monkeypatch.setattr(Session, "update_endpoint_metadata", broken)
            await third.send({"type": "updateEndpointMetadata", "data": {"metadata": {}}})
            assert "RuntimeError" in error_text(await third.next(("error",)))
            assert await third.closed()
            await room.a.wait_for(lambda e: e["type"] == "endpointRemoved" and e["data"]["id"] == third.id)
            assert third.id not in daemon.rooms.get("lobby").peers
        monkeypatch.undo()
        assert media_metric(daemon, "participants_failed") == 1
        await room.goes_on()


def sdp_value(sdp: str, prefix: str) -> str:
    return next(line[len(prefix):].strip() for line in sdp.splitlines() if line.startswith(prefix))


def binding_request(server_ufrag: str, client_ufrag: str, server_pwd: str) -> bytes:
    """An ICE check as a controlling client sends it, with the right credentials."""
    request = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    request.attributes["USERNAME"] = f"{server_ufrag}:{client_ufrag}"
    request.attributes["PRIORITY"] = 1853824767
    request.attributes["ICE-CONTROLLING"] = 1234567890
    request.add_message_integrity(server_pwd.encode())
    request.add_fingerprint()
    return bytes(request)


@pytest.mark.slow
async def test_stun_checks_from_many_source_ports_teach_the_server_a_bounded_number_of_addresses(tmp_path):
    sources = 200
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            offer, sending = await real_offer(media)
            answer = (await third.offer(offer, sending))["data"]["sdp"]
            port = int(next(line.split()[5] for line in answer.splitlines()
                            if line.startswith("a=candidate:") and " 127.0.0.1 " in line))
            request = binding_request(sdp_value(answer, "a=ice-ufrag:"), sdp_value(offer, "a=ice-ufrag:"),
                                      sdp_value(answer, "a=ice-pwd:"))
            answered: dict[int, int] = {}  # source number -> datagrams the server sent it

            async def check_from(number: int) -> None:
                with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
                    await sock.bind(("127.0.0.1", 0))
                    await sock.sendto(request, ("127.0.0.1", port))
                    with trio.move_on_after(3):
                        while True:
                            await sock.recv(2048)
                            answered[number] = answered.get(number, 0) + 1

            async with trio.open_nursery() as nursery:
                for number in range(sources):
                    nursery.start_soon(check_from, number)
            # The first sources are answered (a client behind NATs is served) ...
            assert len(answered) >= 1
            # ... but the server learns and checks at most MAX_PEER_REFLEXIVE new addresses.
            assert len(answered) <= aioice_hooks.MAX_PEER_REFLEXIVE
        await room.goes_on()


@pytest.mark.slow
async def test_mutated_offers_end_at_most_their_sender_and_the_call_goes_on(tmp_path):
    rng = random.Random(9)
    count = 60
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        offers = [await real_offer(media, receive_video=rng.randint(0, 2)) for _ in range(3)]
        outcomes = {"sdpAnswer": 0, "error": 0}
        for number in range(count):
            sdp, sending = rng.choice(offers)
            mutated = mutate_offer(sdp, rng)
            async with intruder(daemon) as third:
                if rng.random() < 0.5:  # a renegotiation: the mutated offer comes second
                    assert (await third.offer(sdp, sending))["type"] == "sdpAnswer"
                reply = await third.offer(mutated, sending)
                outcomes[reply["type"]] += 1
                if reply["type"] == "error":
                    assert reply["data"]["message"]
                    assert await third.closed()  # ended: removed from the room
            if number % 10 == 9:
                await room.goes_on(frames=2)
        await room.goes_on()
        assert outcomes["error"] > 0 and sum(outcomes.values()) == count
        assert media_metric(daemon, "participants_failed") == 0  # each was refused for a reason it was told


async def test_a_media_call_that_never_returns_ends_only_its_participant(tmp_path, monkeypatch):
    # aiortc calls run on the media thread while the room's engine waits: one that hangs
    # (here: made to) must not hold up the room for longer than MEDIA_CALL_TIMEOUT.
    async def hangs(self, candidate, index):
        await asyncio.sleep(3600)

    monkeypatch.setattr(engine_module, "MEDIA_CALL_TIMEOUT", 1.0)
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            sdp, sending = await real_offer(media)
            assert (await third.offer(sdp, sending))["type"] == "sdpAnswer"
            monkeypatch.setattr(EndpointConnection, "add_candidate", hangs)
            await third.send({"type": "custom", "data": {"type": "candidate", "data": {
                "candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMLineIndex": 0}}})
            assert "did not take a candidate within 1 s" in error_text(await third.next(("error",)))
            assert await third.closed()
            monkeypatch.undo()
        await room.goes_on()


async def test_a_participant_cut_off_for_flooding_the_engine_is_removed_from_the_call(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            lobby = daemon.rooms.get("lobby")
            peer = lobby.peers[third.id]
            # A burst larger than the engine's inbox, all at once, as a fast socket delivers it;
            # meanwhile the others' events still go through.
            event = json.dumps({"type": "updateEndpointMetadata", "data": {"metadata": {"n": 1}}})
            a_peer = lobby.peers[room.a.id]
            for number in range(engine_module.INBOX_SIZE + 10):
                lobby.media_event(peer, event)
                if number % 64 == 0:
                    lobby.media_event(a_peer, json.dumps({"type": "updateEndpointMetadata", "data": {"metadata": number}}))
            assert (await third.closed())["reason"] == "too many media events at once"
            await room.a.wait_for(lambda e: e["type"] == "endpointRemoved" and e["data"]["id"] == third.id)
            assert third.id not in lobby.engine.session.endpoints
            last = max(n for n in range(engine_module.INBOX_SIZE + 10) if n % 64 == 0)
            await room.b.wait_for(lambda e: e["type"] == "endpointUpdated" and e["data"]["metadata"] == last)
            assert room.a.id in lobby.peers
        await room.goes_on()


async def test_a_connection_that_raises_when_closed_is_dropped_and_the_room_goes_on(tmp_path, monkeypatch):
    # The engine's own SDP check refuses a BUNDLE group led by an unknown mid; without it,
    # aiortc half-applies such an offer and then raises when the connection is closed.
    def without_bundle_check(text):
        return sdp_module.parse("\r\n".join(line for line in text.splitlines() if not line.startswith("a=group:")))

    monkeypatch.setattr(engine_module, "parse_sdp", without_bundle_check)
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        sdp, sending = await real_offer(media)
        (group,) = [line for line in sdp.splitlines() if line.startswith("a=group:BUNDLE")]
        async with intruder(daemon) as third:
            error = await third.offer(sdp.replace(group, "a=group:BUNDLE 7 " + group[15:]), sending)
            assert error_text(error).startswith("the server could not accept this offer")
            assert await third.closed()
        await room.a.wait_for(lambda e: e["type"] == "endpointRemoved" and e["data"]["id"] == third.id)
        await room.goes_on()
        engine = daemon.rooms.get("lobby").engine
        assert third.id not in engine.connections
        assert third.id not in await engine.link.call(ListEndpoints(engine.link.key), timeout=5)  # the worker let go of it too
        assert media_metric(daemon, "participants_failed") == 0


async def test_candidates_over_many_offers_are_bounded_per_connection(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            sdp, sending = await real_offer(media)
            sdp = sdp.replace("a=end-of-candidates\r\n", "")  # more to come, as a browser trickles them
            port = 20000

            async def answered() -> None:
                reply = await third.offer(sdp, sending)
                while reply["type"] == "error":  # the refused candidates' errors, read on the way
                    reply = await third.next(("sdpAnswer", "error"))
                assert reply["type"] == "sdpAnswer"

            for _ in range(4):  # re-offers without an ICE restart keep the same candidate list
                await answered()
                for _ in range(engine_module.MAX_CANDIDATES):
                    port += 1
                    await third.send({"type": "custom", "data": {"type": "candidate", "data": {
                        "candidate": f"candidate:{port} 1 udp 2130706431 127.0.0.1 {port} typ host", "sdpMLineIndex": 0}}})
                await third.send({"type": "updateEndpointMetadata", "data": {"metadata": port}})
                await room.a.wait_for(lambda e: e["type"] == "endpointUpdated" and e["data"]["metadata"] == port)
            await answered()  # and everything before it was read
            errors = [error_text(e) for e in third.events if e["type"] == "error"]
            limit = aioice_hooks.MAX_REMOTE_CANDIDATES
            assert errors and set(errors) == {f"candidate refused: TooManyCandidates: this connection has {limit} remote candidates already"}
            assert len(errors) >= 4 * engine_module.MAX_CANDIDATES - limit
        await room.goes_on()


async def test_a_participant_announcing_itself_too_fast_is_refused_before_the_others_fall_behind(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            sent = 100
            for number in range(sent):
                await third.send({"type": "updateEndpointMetadata", "data": {"metadata": {"n": number, "pad": "x" * 3000}}})
            errors = []
            with trio.fail_after(10):
                while len(errors) < sent - engine_module.ANNOUNCE_BURST - 10:
                    errors.append(error_text(await third.next(("error",))))
            assert set(errors) == {"updateEndpointMetadata: too many connects, metadata updates and renegotiations; "
                                   "at most 20 at once, then 2 a second"}
            lobby = daemon.rooms.get("lobby")
            assert third.id in lobby.peers  # refused, not removed

            def heard() -> int:
                return sum(1 for e in room.a.events if e["type"] == "endpointUpdated" and e["data"]["id"] == third.id)

            with trio.fail_after(10):
                while heard() < engine_module.ANNOUNCE_BURST - 1:  # its connect took one
                    await trio.sleep(0.05)
            assert heard() <= sent - len(errors)
        await room.goes_on()


async def test_offers_with_fresh_mids_every_time_are_refused_before_they_add_up(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        sdp, sending = await real_offer(media, receive_video=30)
        mids = [line[6:] for line in sdp.splitlines() if line.startswith("a=mid:")]
        async with intruder(daemon) as third:
            for round_ in range(10):
                rename = {mid: f"r{round_}m{mid}" for mid in mids}
                fresh = "\r\n".join(("a=mid:" + rename[line[6:]]) if line.startswith("a=mid:") else
                                    ("a=group:BUNDLE " + " ".join(rename[m] for m in line[15:].split()))
                                    if line.startswith("a=group:BUNDLE ") else line for line in sdp.split("\r\n"))
                reply = await third.offer(fresh, {rename[mid]: kind for mid, kind in sending.items()})
                if reply["type"] == "error":
                    break
            assert round_ == session_module.MAX_MIDS // len(mids)
            assert "at most 128 mids in all" in error_text(reply)
            engine = daemon.rooms.get("lobby").engine
            assert third.id not in engine.connections  # ended, its transceivers gone with it
            assert third.id not in await engine.link.call(ListEndpoints(engine.link.key), timeout=5)
        await room.goes_on()


async def test_an_offer_with_a_data_channel_is_refused_with_what_is_served(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        sdp, sending = await real_offer(media, data_channel=True)
        async with intruder(daemon) as third:
            error = await third.offer(sdp, sending)
            assert "'application' m-lines are not served (audio and video only)" in error_text(error)
        await room.goes_on()


@pytest.mark.slow
async def test_a_subscriber_asking_for_everything_again_gets_a_bounded_share(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        await room.b.frames_from(room.a_video, at_least=40, timeout=20)  # the history is full
        before, started = media_metric(daemon, "packets_retransmitted"), trio.current_time()
        await nack_everything(room.b, times=100)
        await trio.sleep(1)
        resent = media_metric(daemon, "packets_retransmitted") - before
        elapsed = trio.current_time() - started
        # Unbounded, each NACK had every packet still in the history sent again.
        assert resent <= subscriber.RETRANSMIT_BURST + subscriber.RETRANSMIT_RATE * elapsed
        await room.goes_on()


@pytest.mark.parametrize("plane", ["native", "python"])
async def test_a_subscriber_flooding_rtcp_costs_only_its_budget_and_the_call_goes_on(tmp_path, plane):
    """~100 KiB of NACKs at once, three times a second's RTCP budget. The compiled plane reads a client's
    RTCP about what it receives in C, at the cost of any datagram: every compound is done there and what
    is sent again stays within the subscriber's retransmission budget. aiortc's path (the Python plane)
    parses each packet into objects: only the connection's budget of bytes is parsed, the rest dropped."""
    media = f'workers = 0\ndata_plane = "{plane}"'
    async with running_daemon(tmp_path, ROOMS, media=media) as daemon, media_thread() as media, \
            call(daemon, media) as room:
        seen = await room.b.frames_from(room.a_video, at_least=10, timeout=20)
        before = worker_metric(daemon, "rtcp_dropped")
        await room.b.frames_from(room.a_video, at_least=seen + 30, timeout=20)
        assert worker_metric(daemon, "rtcp_dropped") == before  # a call's own RTCP is well within it
        in_c, resent = worker_metric(daemon, "rtcp_in_c"), media_metric(daemon, "packets_retransmitted")
        started = trio.current_time()
        await nack_everything(room.b, times=400)
        if plane == "native":
            await until(lambda: worker_metric(daemon, "rtcp_in_c") >= in_c + 400, timeout=10, what="the flood read")
            resent = media_metric(daemon, "packets_retransmitted") - resent
            assert resent <= subscriber.RETRANSMIT_BURST + subscriber.RETRANSMIT_RATE * (trio.current_time() - started)
            assert worker_metric(daemon, "rtcp_dropped") == before
        else:
            await until(lambda: worker_metric(daemon, "rtcp_dropped") > before + 100, timeout=10,
                        what="the flood dropped")
            assert worker_metric(daemon, "rtcp_in_c") == 0
        await room.goes_on()


def worker_metric(daemon, name: str) -> float:
    """``videoroomd_media_worker_port_<name>_total`` summed over the media workers."""
    return sum(found.value for family in families(read(daemon)) for found in family.samples
               if found.name == f"videoroomd_media_worker_port_{name}_total")


async def test_an_empty_datagram_to_a_participants_media_port_stops_none_of_its_media(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async def answer() -> str:
            return room.a.pc.remoteDescription.sdp

        port = int(next(line.split()[5] for line in (await media.call(answer)).splitlines()
                        if line.startswith("a=candidate:") and " 127.0.0.1 " in line))
        with trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM) as sock:
            await sock.bind(("127.0.0.1", 0))
            await sock.sendto(b"", ("127.0.0.1", port))  # from anywhere: aioice hands it on
        await room.goes_on()
