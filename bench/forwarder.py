"""The packet forwarder alone: ``python -m bench.forwarder [--subscribers 7] [--packets 20000]``.

Feeds VP8-sized RTP packets of one publisher to ``--subscribers`` forwarded
tracks, each with its own SRTP session and a UDP socket on 127.0.0.1
(nobody reads it; the kernel drops what overflows), and prints the CPU
time per forwarded packet: header rewrite, extensions, history, SRTP and
``sendto``, and nothing else (no receive path, no event loop wakeups, no
other process competing for the cores). Compare it with ``bench.sfu``'s
"server CPU µs per forwarded packet" to see what the rest of the server
costs. The aiortc sender and DTLS transport are stand-ins carrying the
attributes the forwarder reads; the SRTP sessions and sockets are real.
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


async def subscriber(index: int, sink: tuple[str, int]) -> ForwardedTrack:
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
    track = ForwardedTrack("video", sender)
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


async def main(args: argparse.Namespace) -> None:
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
    asyncio.run(main(parser.parse_args()))
