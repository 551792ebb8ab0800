"""What a subscriber's stream looks like on the wire, and what happens when its socket on the media loop cannot keep up.

(The forwarding itself, through the data plane's interface: tests/test_dataplane_contract.py.)"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest
from pylibsrtp import Policy, Session
from aiortc.rtcrtpparameters import (RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters,
                                     RTCRtpParameters)
from aiortc.rtp import RTCP_PSFB_APP, HeaderExtensionsMap, RtcpPsfbPacket, RtpPacket, pack_remb_fci

from test_dataplane_contract import DELTA, KEYFRAME, VIDEO, Reader, packet, subscribe
from videoroomd.media.workers import event_loop
from videoroomd.media.webrtc.compat import rtp as compat
from videoroomd.media.dataplane.interface import FixedRoute, SendRoute
from videoroomd.media.dataplane.python_plane import PythonDataPlane
from videoroomd.media.webrtc.forwarding import ABS_SEND_TIME, AUDIO_LEVEL, MID, _feedback, stream_params
from videoroomd.media.dataplane.rtp_packets import rtp_packet
from videoroomd.media.dataplane.subscriber import SendParameters

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=100)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=101, parameters={"apt": 100})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def negotiated(codecs, extensions: dict[str, int], mid: str | None = "3") -> RTCRtpParameters:
    return RTCRtpParameters(codecs=codecs, muxId=mid,
                            headerExtensions=[RTCRtpHeaderExtensionParameters(id=i, uri=u) for u, i in extensions.items()])


def read_back(parameters: RTCRtpParameters, extensions: bytes) -> RtpPacket:
    """The packet as the subscriber's aiortc would parse it, with the same negotiation."""
    ids = HeaderExtensionsMap()
    ids.configure(parameters)
    return RtpPacket.parse(rtp_packet(100, 0, 1, 2, 3, extensions, b"data"), ids)


def test_video_carries_the_subscribers_mid_and_the_send_time():
    parameters = negotiated([VP8, RTX], {MID: 4, ABS_SEND_TIME: 9})
    stream = SendParameters(stream_params(parameters, ssrc=11, rtx_ssrc=12))
    assert (stream.payload_type, stream.rtx_payload_type, stream.clock_rate) == (100, 101, 90000)
    for send_time in (0, 0x123456, 0xFFFFFF):
        packet = read_back(parameters, stream.extensions(send_time.to_bytes(3, "big"), None))
        assert (packet.extensions.mid, packet.extensions.abs_send_time) == ("3", send_time)


@pytest.mark.parametrize("level", [None, (True, 25), (False, 127)])
def test_audio_carries_the_mid_and_the_publishers_level(level):
    parameters = negotiated([OPUS], {MID: 1, AUDIO_LEVEL: 2})
    stream = SendParameters(stream_params(parameters, ssrc=11, rtx_ssrc=12))
    assert stream.rtx_payload_type is None
    packet = read_back(parameters, stream.extensions(b"\x00\x00\x01", level))
    assert (packet.extensions.mid, packet.extensions.audio_level) == ("3", level)
    assert packet.extensions.abs_send_time is None  # not negotiated for this stream


def test_a_level_the_subscriber_did_not_negotiate_is_left_out():
    parameters = negotiated([OPUS], {MID: 1})
    packet = read_back(parameters, SendParameters(stream_params(parameters, 11, 12)).extensions(b"\x00\x00\x01", (True, 30)))
    assert (packet.extensions.mid, packet.extensions.audio_level) == ("3", None)


def test_without_negotiated_extensions_the_header_has_none():
    parameters = negotiated([VP8], {}, mid=None)
    stream = SendParameters(stream_params(parameters, 11, 12))
    assert stream.extensions(b"\x00\x00\x01", None) == b""
    assert stream.rtx_payload_type is None


KEY = os.urandom(44)  # AES-256-GCM key and salt, shared by the two ends below


def srtp(direction: int) -> Session:
    return Session(policy=Policy(key=KEY, ssrc_type=direction, srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))


def received(reader: socket.socket) -> list[RtpPacket]:
    """Every packet waiting at the subscriber, decrypted."""
    inbound, packets = srtp(Policy.SSRC_ANY_INBOUND), []
    while True:
        try:
            data = reader.recv(2048)
        except BlockingIOError:
            return packets
        packets.append(RtpPacket.parse(inbound.unprotect(data)))


class MediaSocket(asyncio.DatagramProtocol):
    """Keeps its transport, as aioice's protocol of a media socket does."""

    def connection_made(self, transport):
        self.transport = transport


class Pair:
    """A candidate pair as aioice has it: the protocol of its local socket, the remote address."""

    def __init__(self, protocol, remote_addr):
        self.protocol = protocol
        self.remote_addr = remote_addr


class PairRoute:
    """The route a connected subscriber's connection gives: SRTP, and what
    :func:`videoroomd.media.webrtc.compat.rtp.pair_socket` finds under the pair's transport."""

    def __init__(self, pair: Pair):
        self.pair = pair
        self.srtp = srtp(Policy.SSRC_ANY_OUTBOUND)

    def current(self):
        sock = compat.pair_socket(self.pair)
        return None if sock is None else (self.srtp, sock, self.pair.remote_addr)


def test_on_the_media_loop_a_subscriber_that_cannot_keep_up_is_dropped_not_buffered(tmp_path):
    """The plane writes to the socket under the loop's transport: a full send queue drops
    packets for that subscriber, and nothing piles up in the loop's own buffer."""
    async def main():
        reader = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        reader.bind(str(tmp_path / "subscriber"))
        reader.setblocking(False)
        writer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        writer.setblocking(False)
        transport, protocol = await asyncio.get_running_loop().create_datagram_endpoint(MediaSocket, sock=writer)
        plane = PythonDataPlane()
        plane.add_publisher("cam", "video")
        plane.add_connection("c")
        route: SendRoute = PairRoute(Pair(protocol, str(tmp_path / "subscriber")))
        plane.add_subscriber("s", "c", "video", route)
        plane.set_stream("s", VIDEO)
        plane.link("s", "cam")
        for seq in range(1000, 2000):
            plane.receive("cam", packet(seq, KEYFRAME if seq == 1000 else DELTA))
            if plane.counters.packets_dropped:
                break
        assert plane.counters.packets_dropped == 1, "the socket never refused a packet"
        assert transport.get_write_buffer_size() == 0
        got = received(reader)
        assert got[0].payload == KEYFRAME and len(got) == seq - 1000
        transport.close()  # the connection ends: the forwarder's socket on it is closed too
        await asyncio.sleep(0.05)
        assert route.current() is None
        before = plane.counters.packets_forwarded
        plane.receive("cam", packet(2001, KEYFRAME))  # nothing goes, nothing fails
        assert plane.counters.packets_forwarded == before

    event_loop.run(main())


def test_through_the_compiled_socket_the_subscriber_gets_the_same_stream_as_through_libsrtp():
    """With ``data_plane = "native"`` the plane's route hands plain RTP to the Port of the connection's
    socket, which protects it with the keys of the DTLS handshake and sends the batch once the loop's
    turn is over: the subscriber's libsrtp reads what the Python route's pylibsrtp would have sent."""
    from videoroomd.media.dataplane.native_module import load
    from videoroomd.media.webrtc.compat.native_port import PLAIN

    native = load()

    class Queued:  # what native_port.PortSender does, without the loop
        def __init__(self, port):
            self.port = port

        def sendto(self, data, address):
            self.port.send(data, address)

    def stream_through(route_of) -> list[RtpPacket]:
        reader = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        writer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            reader.bind(("127.0.0.1", 0))
            reader.setblocking(False)
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
            writer.bind(("127.0.0.1", 0))
            route, flush = route_of(writer, reader.getsockname())
            plane = PythonDataPlane()
            plane.add_publisher("cam", "video")
            plane.add_connection("c")
            plane.add_subscriber("s", "c", "video", route)
            plane.set_stream("s", VIDEO)
            plane.link("s", "cam")
            for seq in range(1000, 1100):
                plane.receive("cam", packet(seq, KEYFRAME if seq == 1000 else DELTA))
            flush()
            return received(reader)
        finally:
            reader.close()
            writer.close()

    def python_route(writer, address):
        return FixedRoute(srtp(Policy.SSRC_ANY_OUTBOUND), writer, address), lambda: None

    def native_route(writer, address):
        port = native.Port(writer.fileno())
        port.set_keys(native.AEAD_AES_256_GCM, KEY[:32], KEY[32:], KEY[:32], KEY[32:])
        return FixedRoute(PLAIN, Queued(port), address), port.flush

    ours, theirs = stream_through(native_route), stream_through(python_route)
    assert len(ours) == 100
    def fields(stream: list[RtpPacket]) -> list[tuple]:  # (each subscriber's numbers start at random)
        first = stream[0].sequence_number
        return [(p.payload_type, (p.sequence_number - first) & 0xFFFF, p.ssrc, p.marker, p.payload) for p in stream]

    assert fields(ours) == fields(theirs)


def test_a_remb_naming_every_video_a_client_receives_is_taken_once():
    """aiortc hands a REMB to each sender whose SSRC it lists (a browser lists every video it
    receives): the estimate is the client's, taken once; aiortc's senders (they only log it)
    do not see it. A later REMB of the same figures is taken again."""
    taken = []

    class Plane(PythonDataPlane):
        def remb(self, subscriber_id, bps):
            taken.append((subscriber_id, bps))
            super().remb(subscriber_id, bps)

    plane, reader = Plane(), Reader()
    for n in (1, 2, 3):
        subscribe(plane, reader, subscriber_id=f"c/{n}", connection_id="c")
    for _ in range(2):
        remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=9, media_ssrc=0, fci=pack_remb_fci(800_000, [11, 12, 13]))
        assert all(_feedback(plane, f"c/{n}", "video", 10 + n, remb) for n in (1, 2, 3))
    assert taken == [("c/1", 800_000), ("c/1", 800_000)]
    reader.close()
