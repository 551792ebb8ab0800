"""Simulcast through a running daemon: a publisher whose offer sends layers is announced with them,
its layer changes reach the others and late joiners, layer requests and their floods end nothing,
and the media worker's layer and bandwidth reports reach the right subscriber."""

from __future__ import annotations

import orjson

from testsupport.engine_attack import ROOMS, call, intruder, real_offer
from testsupport.media_bot import media_thread
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from videoroomd.engine import engine as engine_module
from videoroomd.engine.media_events import NO_SIMULCAST
from videoroomd.media.workers.codec import Decoder, MessageError, encode
from videoroomd.media.workers.events import Bandwidth, LayerSwitched

LAYERS = "a=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;h\r\n"
ALL_ON = {"enabled": True, "activeEncodings": ["l", "m", "h"], "disabledEncodings": []}


async def simulcast_offer(media) -> tuple[str, dict[str, str], str]:
    """A real aiortc offer whose video m-line sends layers l, m, h; returns (sdp, sending, video mid)."""
    sdp, sending = await real_offer(media)
    (video_mid,) = [mid for mid, kind in sending.items() if kind == "video"]
    marker = f"a=mid:{video_mid}\r\n"
    return sdp.replace(marker, marker + LAYERS, 1), sending, video_mid


async def publish_layers(participant, media) -> str:
    """``participant`` publishes audio and simulcast video; returns the video track id."""
    sdp, sending, video_mid = await simulcast_offer(media)
    answer = await participant.offer(sdp, sending)
    assert answer["type"] == "sdpAnswer", answer
    return participant.tracks[video_mid]


def added_tracks(events, endpoint_id):
    return {t: entry for e in events if e["type"] == "tracksAdded" and e["data"]["endpointId"] == endpoint_id
            for t, entry in e["data"]["tracks"].items()}


async def barrier(sender, receiver, name: str) -> None:
    """Everything ``sender`` sent before has reached ``receiver`` once this returns (one engine inbox, in order)."""
    await sender.send({"type": "updateEndpointMetadata", "data": {"metadata": {"displayName": name}}})
    await receiver.wait_for(lambda e: e["type"] == "endpointUpdated" and e["data"]["metadata"] == {"displayName": name})


async def test_a_simulcast_publisher_is_announced_with_its_layers_and_turning_one_off_reaches_everyone(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as third:
            video = await publish_layers(third, media)
            await room.a.wait_for(lambda e: e["type"] == "tracksAdded" and e["data"]["endpointId"] == third.id)
            tracks = added_tracks(room.a.events, third.id)
            assert tracks[video]["simulcastConfig"] == ALL_ON
            assert [t["simulcastConfig"] for t in tracks.values() if t is not tracks[video]] == [NO_SIMULCAST]  # its audio
            # the official client sends each disabled layer again after every answer
            for _ in range(3):
                await third.send({"type": "disableTrackEncoding", "data": {"trackId": video, "encoding": "h"}})
            await barrier(third, room.a, "Third")
            disabled = [e for e in room.a.events if e["type"] == "trackEncodingDisabled"]
            assert [e["data"] for e in disabled] == [{"endpointId": third.id, "trackId": video, "encoding": "h"}]
            await barrier(third, room.b, "Third again")
            assert [e["data"]["endpointId"] for e in room.b.events if e["type"] == "trackEncodingDisabled"] == [third.id]
            # someone joining now sees the layer off
            async with intruder(daemon, connect=False) as late:
                await late.connect()
                (connected,) = [e for e in late.events if e["type"] == "connected"]
                (publisher,) = [o for o in connected["data"]["otherEndpoints"] if o["id"] == third.id]
                assert publisher["tracks"][video]["simulcastConfig"] == {
                    "enabled": True, "activeEncodings": ["l", "m"], "disabledEncodings": ["h"]}
            await third.send({"type": "enableTrackEncoding", "data": {"trackId": video, "encoding": "h"}})
            enabled = await room.a.wait_for(lambda e: e["type"] == "trackEncodingEnabled")
            assert enabled["data"] == {"endpointId": third.id, "trackId": video, "encoding": "h"}
            assert not [e for e in third.events if e["type"] == "error"]
        await room.goes_on()


async def test_layer_requests_that_cannot_be_met_or_come_in_a_flood_end_nothing(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as publisher, intruder(daemon) as viewer:
            video = await publish_layers(publisher, media)
            await viewer.next(("tracksAdded",))
            ask = lambda track, variant: viewer.send(  # noqa: E731
                {"type": "custom", "data": {"type": "setTargetTrackVariant", "data": {"trackId": track, "variant": variant}}})
            await ask(video, "l")
            await ask(video, "x")                       # a layer it does not have
            await ask(f"{publisher.id}:nope", "l")      # a track that does not exist (or just went)
            await ask(room.a_video, "l")                # a track sent as one stream
            for number in range(3 * engine_module.TARGET_BURST):  # a flood, past the rate
                await ask(video, "lmh"[number % 3])
            await barrier(viewer, room.a, "Viewer")
            assert not [e for e in viewer.events if e["type"] == "error"]
            assert viewer.id in daemon.rooms.get("lobby").engine.session.endpoints
            # a request that is not one at all is refused with an error saying what, and only that
            await viewer.send({"type": "custom", "data": {"type": "setTargetTrackVariant", "data": {"trackId": video, "variant": 3}}})
            error = await viewer.next(("error",))
            assert error["data"]["message"] == "setTargetTrackVariant: variant has the wrong type"
            await barrier(viewer, room.a, "Viewer again")
            await publisher.send({"type": "custom", "data": {"type": "trackVariantBitrates", "data": {
                "trackId": video, "variantBitrates": {"l": 153600, "m": 512000, "h": 2560000}}}})
            await publisher.send({"type": "custom", "data": {"type": "trackVariantBitrates", "data": {
                "trackId": video, "variantBitrates": {"l": "fast"}}}})
            error = await publisher.next(("error",))
            assert error["data"]["message"] == "trackVariantBitrates: each variant's bit rate must be a number >= 0"
            assert [e for e in publisher.events if e["type"] == "error"] == [error]
        await room.goes_on()


async def test_layer_and_bandwidth_reports_of_the_media_worker_reach_that_subscriber_only(tmp_path):
    async with running_daemon(tmp_path, ROOMS) as daemon, media_thread() as media, call(daemon, media) as room:
        async with intruder(daemon) as publisher:
            video = await publish_layers(publisher, media)
            await room.a.wait_for(lambda e: e["type"] == "tracksAdded" and e["data"]["endpointId"] == publisher.id)
            engine = daemon.rooms.get("lobby").engine
            key = engine.link.key
            # as the worker's reader hands them over, checked against the message boundary first
            for report in (LayerSwitched(key, room.a.id, video, "m", "low_bandwidth"),
                           LayerSwitched(key, room.a.id, "gone:track", "m", "other"),
                           Bandwidth(key, room.a.id, 750_000)):
                (crossed,) = Decoder().feed(encode(report))
                engine._from_worker(crossed)
            switched = await room.a.wait_for(lambda e: e["type"] == "encodingSwitched")
            assert switched["data"] == {"endpointId": publisher.id, "trackId": video, "encoding": "m", "reason": "lowBandwidth"}
            estimate = await room.a.wait_for(lambda e: e["type"] == "bandwidthEstimation")
            assert estimate["data"] == {"estimation": 750_000}
            assert len([e for e in room.a.events if e["type"] == "encodingSwitched"]) == 1  # not the unknown track
            await barrier(publisher, room.b, "Publisher")
            assert not [e for e in room.b.events if e["type"] in ("encodingSwitched", "bandwidthEstimation")]
        await room.goes_on()


async def test_a_room_without_simulcast_takes_a_layered_offer_as_one_stream(tmp_path):
    rooms = ROOMS + "simulcast = false\n"
    async with running_daemon(tmp_path, rooms) as daemon, media_thread() as media, call(daemon, media) as room:
        assert daemon.rooms.get("lobby").config.simulcast is False
        async with intruder(daemon) as publisher:
            video = await publish_layers(publisher, media)
            await room.a.wait_for(lambda e: e["type"] == "tracksAdded" and e["data"]["endpointId"] == publisher.id)
            assert added_tracks(room.a.events, publisher.id)[video]["simulcastConfig"] == NO_SIMULCAST
            # what the official client sends after each answer for its disabled layers: taken quietly
            await publisher.send({"type": "disableTrackEncoding", "data": {"trackId": video, "encoding": "h"}})
            await barrier(publisher, room.a, "Publisher")
            assert not [e for e in room.a.events if e["type"] == "trackEncodingDisabled"]
            assert not [e for e in publisher.events if e["type"] == "error"]
        await room.goes_on()


def test_the_new_media_messages_are_checked_at_the_boundary():
    good = LayerSwitched("r#1", "e", "e:t", "h", "other")
    assert Decoder().feed(encode(good)) == [good]
    fields = {"type": "layer", "room": "r#1", "endpoint": "e", "track_id": "e:t", "layer": "h", "reason": "other"}
    for bad, says in (({**fields, "layer": 1}, "layer: layer must be str"),
                      ({"type": "bandwidth", "room": "r#1", "endpoint": "e", "bps": True}, "bandwidth: bps must be int"),
                      ({"type": "target_layer", "id": 1, "room": "r", "endpoint": "e", "track_id": "t"},
                       "target_layer: layer is missing"),
                      ({"type": "layer_enabled", "id": 1, "room": "r", "track_id": "t", "layer": "h", "enabled": "yes"},
                       "layer_enabled: enabled must be bool")):
        body = orjson.dumps(bad)
        try:
            Decoder().feed(len(body).to_bytes(4, "big") + body)
        except MessageError as error:
            assert says in str(error)
        else:
            raise AssertionError(f"{bad} was taken")


async def test_the_join_reply_says_whether_the_room_takes_layers(tmp_path):
    rooms = ROOMS + "[rooms.plain]\nsimulcast = false\n"
    async with running_daemon(tmp_path, rooms) as daemon:
        for room, simulcast in (("lobby", True), ("plain", False)):
            async with phoenix_client(daemon) as client:
                reply = await client.join(room, displayName="Ann")
                assert reply["status"] == "ok" and reply["response"]["simulcast"] is simulcast, reply
                assert reply["response"]["peer_id"] in daemon.rooms.get(room).peers
