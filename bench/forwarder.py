"""The packet forwarder alone: ``python -m bench.forwarder [--subscribers 7] [--packets 20000] [--simulcast] [--plane native]``.

Feeds VP8-sized RTP packets of one publisher through the room's data plane
(``--plane python``: :class:`~videoroomd.media.dataplane.python_plane.PythonDataPlane`, fed
parsed packets as the worker does today; ``--plane native``: the compiled
:class:`~videoroomd.media.dataplane.native_plane.NativeDataPlane`, fed the decrypted datagrams;
either driven through its interface) to ``--subscribers`` subscribers, each with its own SRTP session
and a UDP socket on 127.0.0.1 (nobody reads it; the kernel drops what
overflows), and prints the CPU time per forwarded packet: header rewrite,
extensions, history, SRTP and ``sendto``, and nothing else (no receive
path, no event loop wakeups, no other process competing for the cores).
Compare it with ``bench.sfu``'s "server CPU µs per forwarded packet" to see
what the rest of the server costs. User and system time are printed apart
(``sendto`` is the system part, the same for both planes).

``--simulcast``: the publisher sends three layers (``--packets`` each, the
sizes a 720p camera's l/m/h have relative to each other), the subscribers
ask for l, m and h in turn; each packet of every layer goes through each
subscriber's layer switch, and those of its layer are sent with their VP8
picture ids rewritten. The figure is per packet sent, as the plain one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket

from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from videoroomd.media.dataplane.interface import FixedRoute, NativeRoute, StreamParams
from videoroomd.media.dataplane.native_plane import NativeDataPlane
from videoroomd.media.dataplane.python_plane import PythonDataPlane

MID_ID, ABS_SEND_TIME_ID = 1, 3
AEAD_AES_256_GCM = 8  # the native route's profile number (RFC 5764's registry)
PLANES = {"python": PythonDataPlane, "native": NativeDataPlane}


def add_subscriber(plane, index: int, sink: tuple[str, int], kind: str = "video",
                   key: bytes | None = None) -> tuple[str, socket.socket]:
    """Subscriber ``s<index>`` of its own connection ``c<index>``: a real SRTP session (of
    ``key``, 44 bytes, random if None) and UDP socket, writing to ``sink``; (its id, its socket)."""
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    udp.setblocking(False)
    key = key or os.urandom(44)
    if isinstance(plane, NativeDataPlane):
        route = NativeRoute(udp, sink, AEAD_AES_256_GCM, key[:32], key[32:])
    else:
        route = FixedRoute(Session(policy=Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                                 srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM)), udp, sink)
    plane.add_connection(f"c{index}")
    plane.add_subscriber(f"s{index}", f"c{index}", kind, route)
    video = kind == "video"
    plane.set_stream(f"s{index}", StreamParams(
        payload_type=96 if video else 111, clock_rate=90000 if video else 48000, ssrc=1000 + index,
        rtx_ssrc=2000 + index, rtx_payload_type=97 if video else None, mid=str(index), mid_id=MID_ID,
        abs_send_time_id=ABS_SEND_TIME_ID))
    return f"s{index}", udp


def packets(count: int, size: int) -> list[RtpPacket]:
    """A publisher's stream: 3 packets per frame, the first frame a keyframe."""
    key = bytes([0x90, 0x80, 0x01, 0x50]) + os.urandom(size - 4)
    delta = bytes([0x90, 0x80, 0x01, 0x51]) + os.urandom(size - 4)
    stream = []
    for seq in range(count):
        packet = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, timestamp=(seq // 3) * 3000, ssrc=42)
        packet.payload = key if seq == 0 else delta
        packet.marker = int(seq % 3 == 2)
        stream.append(packet)
    return stream


def feed(plane, publisher_id: str, stream: list[RtpPacket]) -> tuple[float, float]:
    """Every packet of ``stream`` into the plane, as its entry takes them (the native plane: the
    datagrams, made before the clock starts); (user, system) CPU seconds it took."""
    if isinstance(plane, NativeDataPlane):
        receive, items = plane.receive_datagram, [packet.serialize() for packet in stream]
    else:
        receive, items = plane.receive, stream
    before = resource.getrusage(resource.RUSAGE_SELF)
    for item in items:
        receive(publisher_id, item)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def cpu_line(user: float, system: float, forwarded: int) -> str:
    return (f"{(user + system) / forwarded * 1e6:.2f} µs of CPU per forwarded packet "
            f"(user {user / forwarded * 1e6:.2f}, system {system / forwarded * 1e6:.2f})")


RIDS = ["l", "m", "h"]
LAYER_SIZES = (250, 600, 1100)  # payload bytes of one packet of each layer


def layer_packets(count: int) -> list[tuple[RtpPacket, int]]:
    """Three layers' streams interleaved, (packet, layer): 3 packets per frame, a keyframe every
    300 packets; VP8 descriptors with a 15-bit picture id and TL0PICIDX, as browsers send."""
    stream = []
    for seq in range(count):
        for layer, size in enumerate(LAYER_SIZES):
            frame = seq // 3
            descriptor = bytes([0x90 if seq % 3 == 0 else 0x80, 0xC0, 0x80 | (frame >> 8) & 0x7F, frame & 0xFF,
                                frame & 0xFF])
            body = bytes([0x50 if seq % 300 == 0 else 0x51]) + os.urandom(size - len(descriptor) - 1)
            packet = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, timestamp=frame * 3000, ssrc=41 + layer)
            packet.payload = descriptor + body
            packet.marker = int(seq % 3 == 2)
            stream.append((packet, layer))
    return stream


async def main_simulcast(args: argparse.Namespace) -> None:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    plane = PLANES[getattr(args, "plane", "python")](choice_interval=float("inf"))  # forwarding is measured
    plane.add_publisher("publisher:video", "video", RIDS)
    for layer in range(3):
        plane.learn_ssrc("publisher:video", 41 + layer, RIDS[layer], None)
    stream = layer_packets(args.packets)
    for packet, _layer in stream[:3]:  # each layer arrives: a subscriber goes straight to the one it asks for
        warm_up = RtpPacket(payload_type=96, sequence_number=0xFFFF, timestamp=0, ssrc=packet.ssrc)
        warm_up.payload = packet.payload[:5] + b"\x01" + packet.payload[6:]
        plane.receive("publisher:video", warm_up)
    sockets = []
    for index in range(args.subscribers):
        subscriber_id, udp = add_subscriber(plane, index, sink.getsockname())
        sockets.append(udp)
        plane.set_target_layer(f"c{index}", "publisher:video", RIDS[index % 3])
        plane.link(subscriber_id, "publisher:video")  # switched at the layer's next keyframe
    before = plane.counters.packets_forwarded
    user, system = feed(plane, "publisher:video", [packet for packet, _layer in stream])
    forwarded = plane.counters.packets_forwarded - before
    print(f"{args.subscribers} subscribers on l/m/h, 3 x {args.packets} packets: {forwarded} sent, "
          f"{cpu_line(user, system, forwarded)}")
    for udp in sockets + [sink]:
        udp.close()


async def main(args: argparse.Namespace) -> None:
    if args.simulcast:
        await main_simulcast(args)
        return
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    plane = PLANES[getattr(args, "plane", "python")]()
    plane.add_publisher("publisher:video", "video")
    sockets = []
    for index in range(args.subscribers):
        subscriber_id, udp = add_subscriber(plane, index, sink.getsockname())
        sockets.append(udp)
        plane.link(subscriber_id, "publisher:video")
    user, system = feed(plane, "publisher:video", packets(args.packets, args.size))
    forwarded = plane.counters.packets_forwarded
    print(f"{getattr(args, 'plane', 'python')} plane, {args.subscribers} subscribers, {args.packets} packets of "
          f"{args.size} bytes: {forwarded} sent, {cpu_line(user, system, forwarded)}")
    for udp in sockets + [sink]:
        udp.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=7)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1100, help="RTP payload bytes")
    parser.add_argument("--simulcast", action="store_true", help="three layers, subscribers on each")
    parser.add_argument("--plane", choices=sorted(PLANES), default="python",
                        help="python (parsed packets in) or native (the compiled plane, datagrams in)")
    asyncio.run(main(parser.parse_args()))
