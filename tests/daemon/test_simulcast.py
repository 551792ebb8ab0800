"""Simulcast's pure parts: the VP8 descriptor rewrite, the SSRC -> layer table, and the answer's
layer lines; and the media server's answer to a browser's simulcast offer."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from videoroomd.media.workers.codec import MessageError, as_type, decode, encode
from videoroomd.media.workers.commands import COMMANDS, Answered, Request
from videoroomd.media.dataplane.interface import FixedRoute, LayerChanged
from videoroomd.sdp.sections import (REPAIRED_RID_URI, RID_URI, answer_with_bandwidth, answer_with_layers,
                                     offered_extension_ids)
from videoroomd.media.dataplane.layers import RidTable
from videoroomd.media.dataplane.rtp_packets import vp8_starts_keyframe
from videoroomd.media.workers.server import MediaServer
from videoroomd.media.dataplane.vp8_rewrite import Vp8Rewriter, descriptor_fields


def vp8(picture_id: int | None, tl0: int | None, keyframe: bool = False, wide: bool = True,
        body: bytes = b"\x10\x02\x03") -> bytes:
    """A VP8 payload: descriptor (S=1, PID 0) with the fields given, then ``body`` (its first
    byte's low bit clear: a keyframe header)."""
    extended = (0x80 if picture_id is not None else 0) | (0x40 if tl0 is not None else 0) | 0x20
    out = bytearray([0x90, extended])
    if picture_id is not None:
        out += bytes([0x80 | (picture_id >> 8), picture_id & 0xFF]) if wide else bytes([picture_id & 0x7F])
    if tl0 is not None:
        out.append(tl0)
    out.append(0x40)  # TID 1, Y 0
    first = body[0] & 0xFE if keyframe else body[0] | 0x01
    return bytes(out) + bytes([first]) + body[1:]


def fields(payload: bytes) -> tuple[int | None, int | None]:
    pid_offset, width, tl0_offset, picture_id = descriptor_fields(payload)
    return (picture_id if width else None), (payload[tl0_offset] if tl0_offset >= 0 else None)


def test_picture_ids_and_tl0picidx_go_on_by_one_across_a_switch_and_the_rest_is_untouched():
    rewriter = Vp8Rewriter()
    out = []
    rewriter.start_run()
    for i in range(5):  # layer l: picture ids 1000.., TL0PICIDX 7..
        out.append(rewriter.rewrite(vp8(1000 + i, 7 + i, keyframe=i == 0)))
    rewriter.start_run()
    for i in range(3):  # layer h: its own numbering, far away
        out.append(rewriter.rewrite(vp8(30000 + i, 200 + i, keyframe=i == 0)))
    assert [fields(p) for p in out] == [(i, i) for i in range(8)]
    original = vp8(30000, 200, keyframe=True)
    assert len(out[5]) == len(original) and out[5][5:] == original[5:]  # only those bytes changed
    assert vp8_starts_keyframe(out[5])


def test_picture_ids_wrap_at_15_bits_and_tl0picidx_at_8():
    rewriter = Vp8Rewriter()
    rewriter.start_run()
    rewriter.rewrite(vp8(5, 9))
    rewriter.last_picture_id, rewriter.last_tl0 = 0x7FFF, 0xFF
    rewriter.start_run()
    assert fields(rewriter.rewrite(vp8(100, 100))) == (0, 0)
    assert fields(rewriter.rewrite(vp8(101, 101))) == (1, 1)


def test_packets_of_one_picture_share_its_id_and_late_ones_do_not_move_the_newest_back():
    rewriter = Vp8Rewriter()
    rewriter.start_run()
    a = rewriter.rewrite(vp8(50, 3))
    b = rewriter.rewrite(vp8(50, 3))
    c = rewriter.rewrite(vp8(51, 3))
    late = rewriter.rewrite(vp8(49, 3))
    assert [fields(p)[0] for p in (a, b, c, late)] == [0, 0, 1, 0x7FFF]
    assert rewriter.last_picture_id == 1
    rewriter.start_run()
    assert fields(rewriter.rewrite(vp8(7000, 90)))[0] == 2


def test_seven_bit_picture_ids_keep_their_width_and_payloads_without_the_fields_pass_as_they_are():
    rewriter = Vp8Rewriter()
    rewriter.start_run()
    short = vp8(120, None, wide=False)
    out = rewriter.rewrite(short)
    assert len(out) == len(short) and fields(out) == (0, None)
    plain = b"\x10\x00\x01\x02"  # no X bit
    assert rewriter.rewrite(plain) is plain
    for broken in (b"", b"\x90", b"\x90\x80", b"\x90\x80\x80", b"\x90\x40"):
        assert rewriter.rewrite(broken) == broken


def test_the_rid_table_learns_layers_and_their_retransmission_ssrcs_and_ignores_unknown_rids():
    table = RidTable(["l", "m", "h"])
    table.learn(111, "l", None)
    table.learn(222, "h", None)
    table.learn(333, None, "h")
    table.learn(444, "x", None)
    table.learn(555, None, "y")
    assert table.layer_of(111) == 0 and table.layer_of(222) == 2 and table.layer_of(444) is None
    assert table.repaired_ssrc(333) == 222 and table.repaired_ssrc(555) is None
    assert table.unknown_rids == {"x", "y"}
    table.learn(666, "h", None)  # h restarted on a new SSRC
    assert table.layer_of(222) is None and table.layer_of(666) == 2 and table.repaired_ssrc(333) == 666
    for i in range(100):
        table.learn(1000 + i, f"junk{i}", None)
        table.learn(2000 + i, None, "m")  # a retransmission SSRC per packet: only the last is kept
        table.learn(3000 + i, "l", None)
    assert len(table.unknown_rids) <= 16
    assert table.rtx == {333: 2, 2099: 1} and table.media == {666: 2, 3099: 0}


CHROME_VIDEO = (
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
    "a=extmap:9 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n"
    "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n"
    "a=sendonly\r\na=rid:l send\r\na=rid:m send\r\na=rid:h send\r\na=simulcast:send l;m;h\r\n")


def test_the_offer_s_stream_id_extension_ids_are_read_per_mid():
    offer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" + CHROME_VIDEO
    assert offered_extension_ids(offer) == {"0": {}, "1": {RID_URI: 10, REPAIRED_RID_URI: 11}}


def test_the_answer_gets_rid_and_simulcast_lines_only_in_the_layered_m_sections():
    answer = ("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=recvonly\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n")
    out = answer_with_layers(answer, {"1": ["l", "m", "h"]})
    audio, video = out.split("m=video")
    assert "a=rid" not in audio
    assert video.endswith("a=recvonly\r\na=rid:l recv\r\na=rid:m recv\r\na=rid:h recv\r\na=simulcast:recv l;m;h\r\n")
    assert answer_with_layers(answer, {}) == answer
    assert answer_with_layers(answer, {"9": ["l"]}) == answer


def test_a_bandwidth_limit_goes_after_the_connection_line_of_the_publishing_video_sections_only():
    answer = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
              "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\n")
    out = answer_with_bandwidth(answer, {"1"}, 1_500_000)
    assert out.count("b=AS") == 1
    assert "a=mid:0" in out.split("b=AS")[0] and "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:1500\r\na=mid:1" in out
    assert answer_with_bandwidth(answer, set(), 1_500_000) == answer
    assert answer_with_bandwidth(out, {"1"}, 1_000_000) == out  # one limit per section


def chrome_like_offer(sdp_of_aiortc: str) -> str:
    """An aiortc offer's video m-section made into what Chromium sends for three layers: the
    stream id extensions, RIDs and a=simulcast, no SSRCs."""
    head, *sections = sdp_of_aiortc.split("\r\nm=")
    out = [head]
    for section in sections:
        if section.startswith("video"):
            lines = [line for line in section.split("\r\n") if not line.startswith(("a=ssrc", "a=msid"))]
            lines = [line for line in lines if line]
            lines += ["a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id",
                      "a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id",
                      "a=rid:l send", "a=rid:m send", "a=rid:h send", "a=simulcast:send l;m;h"]
            section = "\r\n".join(lines)
        out.append(section.rstrip("\r\n"))
    return "\r\nm=".join(out) + "\r\n"


def test_the_media_server_answers_a_simulcast_offer_with_the_layers_and_a_plain_one_without():
    from aiortc import RTCPeerConnection

    async def main():
        replies = []
        server = MediaServer(replies.append)

        async def command(kind, **fields):
            """Run one command on the server as its worker would: built and checked by the codec."""
            request = decode(encode(Request(0, as_type(fields, next(c for c in COMMANDS if c.kind == kind), kind)))[4:])
            result = await getattr(server, f"_{kind}")(request.command)
            return result.sdp if isinstance(result, Answered) else result

        await command("open_room", room="r", ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                      udp_ports=None, max_video_bitrate=2_000_000)
        client = RTCPeerConnection()
        client.addTransceiver("video", direction="sendonly")
        await client.setLocalDescription(await client.createOffer())
        plain = client.localDescription.sdp
        await client.close()
        mid = next(line[6:] for line in plain.split("\r\n") if line.startswith("a=mid:"))
        offer = chrome_like_offer(plain)
        answer = await command("answer", room="r", endpoint="pub", sdp=offer, sending={mid: "cam"}, slots=[],
                               simulcast={mid: ["l", "m", "h"]})
        assert "a=simulcast:recv l;m;h" in answer and "a=rid:l recv" in answer
        assert f"a=extmap:10 {RID_URI}" in answer and f"a=extmap:11 {REPAIRED_RID_URI}" in answer
        assert "b=AS:2000\r\n" in answer  # the room's max_video_bitrate, told to the browser from the start
        room = server.rooms["r"]
        assert room.plane.publisher_stats("cam").rids == ("l", "m", "h")
        assert room.max_video_bitrate == 2_000_000
        # Another client's plain offer: nothing of simulcast in its answer.
        other = await command("answer", room="r", endpoint="plain", sdp=plain, sending={mid: "cam2"}, slots=[])
        assert "simulcast" not in other and "rtp-stream-id" not in other
        assert room.plane.publisher_stats("cam2").rids == ()
        # Simulcast asked for an offer without the rtp-stream-id extension: taken as one layer.
        third = await command("answer", room="r", endpoint="third", sdp=plain, sending={mid: "cam3"}, slots=[],
                              simulcast={mid: ["l", "m", "h"]})
        assert "simulcast" not in third and room.plane.publisher_stats("cam3").rids == ()
        # target_layer for a non-simulcast track, an unknown one, or no such layer: refused, harmless.
        assert await command("target_layer", room="r", endpoint="plain", track_id="cam2", layer="h") is False
        assert await command("target_layer", room="r", endpoint="plain", track_id="nope", layer="h") is False
        assert await command("target_layer", room="r", endpoint="plain", track_id="cam", layer="q") is False
        assert await command("target_layer", room="r", endpoint="plain", track_id="cam", layer="m") is True
        assert await command("target_layer", room="nowhere", endpoint="plain", track_id="cam", layer="m") is False
        assert await command("layer_enabled", room="nowhere", track_id="cam", layer="h", enabled=False) is False
        # Asked before the endpoint's first answer: it holds once it subscribes.
        assert await command("target_layer", room="r", endpoint="later", track_id="cam", layer="l") is True
        client = RTCPeerConnection()
        client.addTransceiver("video", direction="recvonly")
        await client.setLocalDescription(await client.createOffer())
        receiving = client.localDescription.sdp
        await client.close()
        slot = next(line[6:] for line in receiving.split("\r\n") if line.startswith("a=mid:"))
        await command("answer", room="r", endpoint="later", sdp=receiving, sending={}, slots=[{"mid": slot, "track_id": "cam", "stream_id": "s"}])
        assert room.plane.subscriber_stats(f"later/{slot}").target == "l"
        await command("close_endpoint", room="r", endpoint="later")
        # What it asked for went with it: the same endpoint again starts from the default (h).
        room.plane.add_connection("later")
        room.plane.add_subscriber("again", "later", "video", FixedRoute(None, None, None))
        room.plane.link("again", "cam")
        assert room.plane.subscriber_stats("again").target == "h"
        assert await command("layer_enabled", room="r", track_id="cam2", layer="h", enabled=False) is False
        assert await command("layer_enabled", room="r", track_id="cam", layer="h", enabled=False) is True
        assert room.plane.publisher_stats("cam").layers_enabled == (True, True, False)
        await server.close()

    asyncio.run(main())


def refusal_on_the_worker(kind: str, field: str, value, check) -> str:
    """Why a worker refuses a ``kind`` command whose ``field`` is ``value``: the codec refuses a
    wrong type, the server's ``check`` a wrong value; "" when it takes it."""
    fields = {"answer": {"room": "r", "endpoint": "e", "sdp": "", "sending": {}, "slots": []},
              "open_room": {"room": "r", "ice_servers": [], "certificate": None, "addresses": []}}[kind]
    try:
        command = decode(orjson.dumps({"type": kind, "id": 1, **fields, field: value})).command
        check(getattr(command, field))
    except (MessageError, ValueError) as error:
        return str(error)
    return ""


@pytest.mark.parametrize("value", [{"1": []}, {"1": ["l", "l"]}, {"1": "lmh"}, {"1": [1, 2]}, ["l"],
                                   {"1": ["l", "x" * 17]}, {"1": ["l\r\na=evil"]}, {"1": [""]}])
def test_a_malformed_simulcast_field_fails_the_answer_with_a_clear_error(value):
    from videoroomd.media.workers.server import _simulcast
    assert "simulcast" in refusal_on_the_worker("answer", "simulcast", value, _simulcast)


@pytest.mark.parametrize("value", [0, -5, "1000", True, 1.5])
def test_a_malformed_max_video_bitrate_fails_open_room_with_a_clear_error(value):
    from videoroomd.media.workers.server import _max_bitrate
    assert "max_video_bitrate" in refusal_on_the_worker("open_room", "max_video_bitrate", value, _max_bitrate)


@pytest.mark.parametrize("value", ["rust", "", 1, None, ["native"]])
def test_a_malformed_data_plane_fails_open_room_with_a_clear_error(value):
    from videoroomd.media.workers.server import _data_plane
    assert "data_plane" in refusal_on_the_worker("open_room", "data_plane", value, _data_plane)
    for plane in ("python", "native"):  # and what [media] data_plane may say is taken
        assert refusal_on_the_worker("open_room", "data_plane", plane, _data_plane) == ""


def layer_stream(layer: int, first: int, count: int, keyframes: tuple[int, ...]) -> list:
    """``count`` packets of one layer from packet ``first`` on: its own SSRC, sequence numbers,
    timestamps and picture ids (far apart per layer, as a browser's are), a frame every 3 packets."""
    from aiortc.rtp import RtpPacket

    out = []
    for n in range(first, first + count):
        frame = n // 3
        packet = RtpPacket(payload_type=96, sequence_number=(layer * 20000 + n) & 0xFFFF,
                           timestamp=(layer * 1_000_000 + frame * 3000) & 0xFFFFFFFF, ssrc=41 + layer)
        packet.payload = vp8((layer * 9000 + frame) & 0x7FFF, (layer * 100 + frame) & 0xFF,
                             keyframe=n in keyframes and n % 3 == 0)
        if n % 3:
            packet.payload = bytes([packet.payload[0] & ~0x10]) + packet.payload[1:]  # not a frame's start
        packet.marker = int(n % 3 == 2)
        out.append(packet)
    return out


def simulcast_subscriber(rids=("l", "m", "h")):
    """(data plane with the simulcast publisher "cam" and subscriber "s" of connection "c" on it,
    the subscriber's end) with a real SRTP session and socket, as the contract tests make them."""
    from test_dataplane_contract import Reader, subscribe
    from videoroomd.media.dataplane.python_plane import PythonDataPlane

    plane = PythonDataPlane()
    plane.add_publisher("cam", "video", list(rids))
    for layer, rid in enumerate(rids):
        plane.learn_ssrc("cam", 41 + layer, rid, None)
    reader = Reader()
    subscribe(plane, reader)
    return plane, reader


def changes(plane) -> list[tuple[str, str]]:
    return [(e.rid, e.reason.value) for e in plane.drain_events() if isinstance(e, LayerChanged)]


def test_a_subscriber_switched_from_h_to_l_gets_one_stream_continuing_across_the_switch():
    plane, reader = simulcast_subscriber()
    l_packets = layer_stream(0, 0, 60, keyframes=(30,))
    h_packets = layer_stream(2, 0, 60, keyframes=(3,))
    for a, b in zip(l_packets[:3], h_packets[:3]):  # both arrive before it subscribes
        plane.receive("cam", a)
        plane.receive("cam", b)
    plane.link("s", "cam")  # h, the default target, from its next keyframe
    for a, b in zip(l_packets[3:30], h_packets[3:30]):
        plane.receive("cam", a)
        plane.receive("cam", b)
    assert plane.set_target_layer("c", "cam", "l")  # l from its next keyframe; h flows until then
    for a, b in zip(l_packets[30:], h_packets[30:]):
        plane.receive("cam", b)
        plane.receive("cam", a)
    out = [(p.sequence_number, p.timestamp, p.payload) for p in reader.packets()]
    assert len(out) == 28 + 30  # h's from its keyframe (3) to 30, then l's 30 from its keyframe
    seqs = [s for s, _, _ in out]
    assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:]))
    stamps = [t for _, t, _ in out]
    assert all(0 <= (b - a) & 0xFFFFFFFF < 90000 for a, b in zip(stamps, stamps[1:]))  # forward, < 1 s
    pictures = [fields(p)[0] for _, _, p in out]
    assert pictures[27] + 1 == pictures[28]  # the first picture of l follows the last of h
    assert sorted(set(pictures)) == list(range(pictures[0], pictures[0] + 20))
    tl0 = [fields(p)[1] for _, _, p in out]
    assert tl0[28] == tl0[27] + 1
    assert vp8_starts_keyframe(out[28][2])
    assert changes(plane) == [("h", "other"), ("l", "other")]
    # A NACK of what h sent before the switch is not answered (the decoder restarted at l's
    # keyframe; on a slow link it would only add to the load); one of l's packets is.
    plane.nack("s", seqs[20:28])
    assert plane.counters.packets_retransmitted == 0
    plane.nack("s", seqs[40:42])
    assert plane.counters.packets_retransmitted == 2
    # With the subscriber's estimate known (96 kbit/s), what its NACKs get sent again per
    # second is a share of it (at least RETRANSMIT_RATE_MIN packets), not RETRANSMIT_RATE.
    from videoroomd.media.dataplane import subscriber as module
    plane.remb("s", 96_000)
    while True:  # the burst allowance used up
        before = plane.counters.packets_retransmitted
        plane.nack("s", seqs[30:58])
        if plane.counters.packets_retransmitted - before < 28:
            break
    before = plane.counters.packets_retransmitted
    time.sleep(1.0)
    plane.nack("s", seqs[30:58])
    assert int(module.RETRANSMIT_RATE_MIN) <= plane.counters.packets_retransmitted - before < 28
    reader.close()


def test_rids_in_the_offer_but_only_the_lowest_layer_sent_the_subscriber_gets_that_one():
    plane, reader = simulcast_subscriber()
    plane.link("s", "cam")  # wants h (the default); only l ever comes
    for packet in layer_stream(0, 0, 90, keyframes=(0, 45)):
        plane.receive("cam", packet)
    assert plane.subscriber_stats("s").layer == "l" and changes(plane) == [("l", "other")]
    assert plane.counters.packets_forwarded > 0 and len(reader.packets()) == plane.counters.packets_forwarded
    reader.close()
