"""The packet forwarder alone: ``python -m bench.forwarder [--subscribers 7] [--packets 20000] [--simulcast]``.

Feeds VP8-sized RTP packets of one publisher to ``--subscribers`` forwarded
tracks, each with its own SRTP session and a UDP socket on 127.0.0.1
(nobody reads it; the kernel drops what overflows), and prints the CPU
time per forwarded packet: header rewrite, extensions, history, SRTP and
``sendto``, and nothing else (no receive path, no event loop wakeups, no
other process competing for the cores). Compare it with ``bench.sfu``'s
"server CPU µs per forwarded packet" to see what the rest of the server
costs. The aiortc sender and DTLS transport are stand-ins carrying the
attributes the forwarder reads; the SRTP sessions and sockets are real.

``--simulcast``: the publisher sends three layers (``--packets`` each, the
sizes a 720p camera's l/m/h have relative to each other), the subscribers
are on l, m and h in turn; each packet of every layer goes through each
subscriber's layer switch, and those of its layer are sent with their VP8
picture ids rewritten. The figure is per packet sent, as the plain one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import time
from types import SimpleNamespace

from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import RtpPacket
from pylibsrtp import Policy, Session

from videoroomd.media.publisher import PublishedTrack
from videoroomd.media.subscriber import ABS_SEND_TIME, MID, ForwardedTrack

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96})
EXTENSIONS = [RTCRtpHeaderExtensionParameters(id=1, uri=MID), RTCRtpHeaderExtensionParameters(id=3, uri=ABS_SEND_TIME)]


async def subscriber(index: int, sink: tuple[str, int], owner=None) -> ForwardedTrack:
    """A forwarded video track whose 'connection' is a real SRTP session and UDP socket."""
    loop = asyncio.get_running_loop()
    udp, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    srtp = Session(policy=Policy(key=os.urandom(44), ssrc_type=Policy.SSRC_ANY_OUTBOUND,
                                 srtp_profile=Policy.SRTP_PROFILE_AEAD_AES_256_GCM))
    pair = SimpleNamespace(protocol=SimpleNamespace(transport=udp), remote_addr=sink)
    dtls = SimpleNamespace(_state=State.CONNECTED, _tx_srtp=srtp,
                           transport=SimpleNamespace(_connection=SimpleNamespace(_nominated={1: pair})))
    sender = SimpleNamespace(transport=dtls, _ssrc=1000 + index, _rtx_ssrc=2000 + index,
                             replaceTrack=lambda track: None, _RTCRtpSender__ntp_timestamp=0,
                             _RTCRtpSender__rtp_timestamp=0, _RTCRtpSender__octet_count=0,
                             _RTCRtpSender__packet_count=0)
    track = ForwardedTrack("video", sender, owner=owner)
    track.configure(RTCRtpParameters(codecs=[VP8, RTX], headerExtensions=EXTENSIONS, muxId=str(index)))
    return track


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
    published = PublishedTrack("publisher:video", "video", receiver=None, rids=RIDS)
    for layer in range(3):
        published.layers.learn(41 + layer, RIDS[layer], None)
    owner = SimpleNamespace(target_for=lambda track_id: None, layer_budget=lambda: None, estimate=lambda: None,
                            congested=lambda now: False, layer_changed=lambda *args: None)
    tracks = []
    for index in range(args.subscribers):
        track = await subscriber(index, sink.getsockname(), owner)
        track.switch(published)
        track.selector.chosen = index % 3       # as if chosen a while ago; switched at the next keyframe
        track.layer_switch.want(index % 3)
        tracks.append(track)
    published._next_choice = float("inf")     # the choice stays as set: only forwarding is measured
    stream = layer_packets(args.packets)
    started = time.process_time()
    for packet, _layer in stream:
        published.on_packet(packet)
    cpu = time.process_time() - started
    forwarded = sum(track.counters.packets_forwarded for track in tracks)
    print(f"{args.subscribers} subscribers on l/m/h, 3 x {args.packets} packets: {forwarded} sent, "
          f"{cpu / forwarded * 1e6:.2f} µs of CPU per forwarded packet")
    sink.close()


async def main(args: argparse.Namespace) -> None:
    if args.simulcast:
        await main_simulcast(args)
        return
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    published = PublishedTrack("publisher:video", "video", receiver=None)
    for index in range(args.subscribers):
        (await subscriber(index, sink.getsockname())).switch(published)
    stream = packets(args.packets, args.size)
    started = time.process_time()
    for packet in stream:
        published.on_packet(packet)
    cpu = time.process_time() - started
    forwarded = args.packets * args.subscribers
    print(f"{args.subscribers} subscribers, {args.packets} packets of {args.size} bytes: "
          f"{cpu / forwarded * 1e6:.2f} µs of CPU per forwarded packet")
    sink.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=7)
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1100, help="RTP payload bytes")
    parser.add_argument("--simulcast", action="store_true", help="three layers, subscribers on each")
    asyncio.run(main(parser.parse_args()))
