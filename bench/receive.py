"""A publisher's packets through the server's receive path alone: ``python -m bench.receive [--packets 20000] [--profile]``.

Two aiortc peer connections in one process, on 127.0.0.1: a "publisher"
whose video sender stays idle, and the "server", whose receiver is wired
to a data plane (:class:`~videoroomd.media.dataplane.python_plane.PythonDataPlane`)
with one publisher and no subscribers, as a media worker does (incoming datagrams watched, the
receiver's jitter buffer replaced). Once connected, VP8-sized RTP packets
(30 frames a second, 3 packets each, the mid and abs-send-time extensions
a browser sends) are encrypted with the publisher's own SRTP session
beforehand and written in small batches to the nominated pair's socket;
the server takes each through aioice (STUN check), DTLS demultiplexing,
SRTP unprotect, RTP parse, aiortc's receiver (statistics, REMB estimator,
NACK generator) and the forwarder.

Prints the CPU time per received packet (the sending side's share, one
``sendto`` each, measured alone and taken off); ``--profile`` prints the
functions that took it (cProfile, which slows everything down: read the
shares, not the figures).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket as sockets
import time

from aioice import stun
from aiortc import RTCConfiguration, RTCPeerConnection, clock
from aiortc.codecs import depayload
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import SessionDescription

from videoroomd.media.workers import event_loop
from videoroomd.media.webrtc.compat import rtp as compat
from videoroomd.media.webrtc.compat.remb import WindowRate
from videoroomd.media.webrtc.compat.ice import limit_host_addresses, media_skips_stun_check, watch_incoming
from videoroomd.media.webrtc.compat.native_port import take_over
from videoroomd.media.dataplane.native_plane import NativeDataPlane
from videoroomd.media.dataplane.python_plane import PythonDataPlane
from videoroomd.media.webrtc.forwarding import ForwardingBuffer, NoDecoder, attach_publisher, receive_at_once
from videoroomd.media.dataplane.rtp_packets import abs_send_time, extension_block, one_byte_element, rtp_packet

BATCH = 16  # datagrams written before the server is let to read them (loopback's buffer is small)


class Idle(MediaStreamTrack):
    """A video track that never yields a frame: the publisher's packets are written by hand."""

    kind = "video"

    async def recv(self):
        await asyncio.Event().wait()


PUBLISHER = "publisher:video"  # the publisher's id in the server's data plane


async def connect(aiortc_path: bool = False,
                  native: bool = False) -> tuple[RTCPeerConnection, RTCPeerConnection, PythonDataPlane | NativeDataPlane]:
    """(publisher, server, the server's data plane, where the publisher is PUBLISHER), connected;
    ``aiortc_path``: the server's receiver takes aiortc's own way (only its jitter buffer replaced);
    ``native``: the server's socket is read by the compiled module once connected and its data
    plane is the compiled one, as a media worker's with ``[media] data_plane = "native"`` (the
    publisher's SSRC is then forwarded by the Port in C once its first packet is known)."""
    publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    server = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    publisher.addTransceiver(Idle(), direction="sendonly")
    limit_host_addresses(publisher, ("127.0.0.1",))
    await publisher.setLocalDescription(await publisher.createOffer())
    await server.setRemoteDescription(publisher.localDescription)
    heard = []
    if not aiortc_path:
        receive_at_once(server)
    watch_incoming(server, lambda: heard.append(None) if not heard else None)
    transceiver = server.getTransceivers()[0]
    transceiver.direction = "recvonly"
    plane = NativeDataPlane() if native else PythonDataPlane()  # a worker's planes with data_plane = native or not
    plane.add_publisher(PUBLISHER, "video")
    if aiortc_path:
        compat.hand_packets_to(transceiver.receiver, ForwardingBuffer(plane, PUBLISHER), NoDecoder())
    else:
        attach_publisher(transceiver.receiver, plane, PUBLISHER)
    limit_host_addresses(server, ("127.0.0.1",))
    await server.setLocalDescription(await server.createAnswer())
    if not aiortc_path:
        media_skips_stun_check(server)
    await publisher.setRemoteDescription(server.localDescription)
    for _ in range(200):
        if server.connectionState == "connected" and publisher.connectionState == "connected":
            if native:
                outcome = take_over(server)
                if outcome != {"0": "native"}:
                    raise RuntimeError(f"the server's socket was not handed to the compiled module: {outcome}")
            return publisher, server, plane
        await asyncio.sleep(0.05)
    raise RuntimeError("the two peer connections did not connect on 127.0.0.1")


def datagrams(publisher: RTCPeerConnection, count: int, size: int,
              spacing: float = 1 / 90, first: int = 1) -> tuple[list[bytes], list[bytes], object, tuple]:
    """The publisher's stream, plain and encrypted, and where to write it (``spacing``: the
    seconds between two packets' send times, in their abs-send-time; ``first``: the first
    packet's sequence number)."""
    sender = publisher.getTransceivers()[0].sender
    media = SessionDescription.parse(publisher.remoteDescription.sdp).media[0]
    ids = {ext.uri: ext.id for ext in media.rtp.headerExtensions}
    mid_id = ids["urn:ietf:params:rtp-hdrext:sdes:mid"]
    ast_id = ids["http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"]
    payload_type = media.rtp.codecs[0].payloadType
    srtp, pair = compat.nominated_route(sender.transport)
    socket = compat.pair_socket(pair)
    ssrc = sender._ssrc
    key = bytes([0x90, 0x80, 0x01, 0x50]) + os.urandom(size - 4)
    delta = bytes([0x90, 0x80, 0x01, 0x51]) + os.urandom(size - 4)
    plain, stream, start = [], [], time.time()
    for seq in range(count):
        sent = start + seq * spacing  # by default 30 frames a second, 3 packets each
        elements = one_byte_element(mid_id, b"0") + one_byte_element(ast_id, abs_send_time(sent).to_bytes(3, "big"))
        data = rtp_packet(payload_type, int(seq % 3 == 2), (seq + first) & 0xFFFF, (seq // 3) * 3000, ssrc,
                          extension_block(elements), key if seq % 300 == 0 else delta)
        plain.append(data)
        stream.append(srtp.protect(data))
    return plain, stream, socket, pair.remote_addr


async def pump(stream: list[bytes], socket, address, plane: PythonDataPlane, pace: float = 0.0) -> int:
    """Write the stream in batches, each read by the server before the next (``pace``: and
    at least that many seconds after the one before); returns how many reached ``plane``."""
    counters = plane.counters
    first = counters.packets_received
    for start in range(0, len(stream), BATCH):
        if pace and start:
            await asyncio.sleep(pace)
        for data in stream[start:start + BATCH]:
            socket.sendto(data, address)
        expected = first + min(start + BATCH, len(stream))
        for _ in range(1000):
            if counters.packets_received >= expected:
                break
            await asyncio.sleep(0)
    return counters.packets_received - first


def timed(label: str, items: list, step) -> float:
    """CPU µs per item of ``step(item)``, printed."""
    started = time.process_time()
    for item in items:
        step(item)
    each = (time.process_time() - started) / len(items) * 1e6
    print(f"  {label:<44} {each:6.2f} µs")
    return each


async def steps(decrypted: list[bytes], server: RTCPeerConnection) -> None:
    """Each step of aiortc's receive path alone, on the same packets (CPU µs per packet)."""
    dtls = server.getTransceivers()[0].receiver.transport
    key = os.urandom(30)
    outbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    inbound = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    encrypted = [outbound.protect(data) for data in decrypted]
    extensions = dtls._rtp_header_extensions_map
    parsed = [RtpPacket.parse(data, extensions) for data in decrypted]
    codec = next(iter(server.getTransceivers()[0].receiver._RTCRtpReceiver__codecs.values()))
    estimator, statistics, nacks = RemoteBitrateEstimator(), StreamStatistics(90000), NackGenerator()
    now = clock.current_ms()
    plane = PythonDataPlane()
    plane.add_publisher("steps:video", "video")
    # As a camera's packets come: 3 per frame, sent together, frames 1/30 s apart.
    arrivals = [(abs_send_time(index // 3 / 30), now + index // 3 * 1000 // 30 + index % 3) for index in range(len(parsed))]
    print("each step alone:")
    timed("STUN check (aioice parse_message, refused)", encrypted, lambda d: stun_check(d))
    timed("SRTP unprotect", encrypted, inbound.unprotect)
    timed("RTP parse (with mid, abs-send-time)", decrypted, lambda d: RtpPacket.parse(d, extensions))
    ids = compat.extension_ids(extensions)
    timed("  the server's lean parse of the same", decrypted, lambda d: compat.parse_received(d, ids))
    timed("REMB estimator (30 frames/s, 3 packets each)", arrivals,
          lambda a: estimator.add(abs_send_time=a[0], arrival_time_ms=a[1], payload_size=1100, ssrc=42))
    lighter = RemoteBitrateEstimator()
    lighter.incoming_bitrate = WindowRate(1000, 8000)
    timed("  with the server's incoming-bitrate counter", arrivals,
          lambda a: lighter.add(abs_send_time=a[0], arrival_time_ms=a[1], payload_size=1100, ssrc=42))
    timed("receiver statistics", parsed, statistics.add)
    timed("NACK generator", parsed, nacks.add)
    timed("datetime (getSynchronizationSources)", parsed, lambda p: clock.current_datetime())
    timed("VP8 depayload", parsed, lambda p: depayload(codec, p.payload))
    timed("forwarder, no subscriber", parsed, lambda p: plane.receive("steps:video", p))
    queue: asyncio.Queue = asyncio.Queue()
    taken = 0

    async def take() -> None:
        nonlocal taken
        while True:
            await queue.get()
            taken += 1

    task = asyncio.ensure_future(take())
    await asyncio.sleep(0)
    started = time.process_time()
    for item in parsed:
        queue.put_nowait(item)
        await asyncio.sleep(0)
    each = (time.process_time() - started) / len(parsed) * 1e6
    task.cancel()
    print(f"  {'a queue and a task woken per datagram':<44} {each:6.2f} µs (with one loop turn)")


def stun_check(data: bytes) -> None:
    try:
        stun.parse_message(data)
    except ValueError:
        pass


async def main(args: argparse.Namespace) -> None:
    publisher, server, plane = await connect(args.aiortc_path, args.native)
    if args.python_receive:  # no SSRC is ever routed to the Port (compat.native_receive): each packet up to Python
        for transceiver in server.getTransceivers():
            transceiver.receiver._videoroomd_target = None
    try:
        plain, stream, socket, address = datagrams(publisher, args.packets, args.size)
        await pump(stream[:300], socket, address, plane)  # warm up: the first keyframe, the estimator
        stream = stream[300:]
        # The sending side's own share: the same writes, to a port nobody reads.
        sink = sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM)
        sink.bind(("127.0.0.1", 0))
        started, sending_times = time.process_time(), os.times()
        for data in stream:
            socket.sendto(data, sink.getsockname())
        sending = time.process_time() - started
        sent_times = os.times()
        sending_user, sending_system = sent_times.user - sending_times.user, sent_times.system - sending_times.system
        sink.close()
        profile = cProfile.Profile() if args.profile else None
        started, times = time.process_time(), os.times()
        if profile:
            profile.enable()
        arrived = await pump(stream, socket, address, plane)
        if profile:
            profile.disable()
        cpu = time.process_time() - started - sending
        after = os.times()
        user = after.user - times.user - sending_user  # (os.times counts in clock ticks: 10 ms)
        system = after.system - times.system - sending_system
        each = 1e6 / max(arrived, 1)
        print(f"{arrived} of {len(stream)} packets of {args.size} bytes received: "
              f"{cpu * each:.2f} µs of CPU per received packet (user {user * each:.2f}, kernel {system * each:.2f})")
        if profile:
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.lines)
        if args.steps:
            await steps(plain[300:], server)
    finally:
        await publisher.close()
        await server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1100, help="RTP payload bytes")
    parser.add_argument("--aiortc-path", action="store_true",
                        help="aiortc's own receive path, as before it was cut down (for comparison)")
    parser.add_argument("--native", action="store_true",
                        help="the server's socket read by the compiled module (_native.Port) and the compiled plane, "
                             "as with data_plane = native")
    parser.add_argument("--python-receive", action="store_true",
                        help="with --native: every packet through the Python receive path to the compiled plane, as "
                             "before the Port forwarded known SSRCs in C (for comparison)")
    parser.add_argument("--steps", action="store_true", help="also time each step of aiortc's receive path alone")
    parser.add_argument("--profile", action="store_true", help="print where the time went (cProfile)")
    parser.add_argument("--sort", default="tottime", help="pstats sort key for --profile")
    parser.add_argument("--lines", type=int, default=40, help="functions printed with --profile")
    event_loop.run(main(parser.parse_args()))  # the loop the media workers run on

