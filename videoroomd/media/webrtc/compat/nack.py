"""Generic NACKs (RFC 4585 section 6.2.1) that may name sequence numbers across the wrap, sent from our receivers.

aiortc 1.16 packs a NACK's lost packets as plain integers: a list in the
order the packets went (65534, 65535, 0, 1) makes it shift by a negative
count and raise, and it parses a PID of 65535 with bit 0 of its bitmask as
65536. :func:`nack_fci` packs in sequence-number order, each FCI's PID and
bitmask within 16 bits; :func:`send_nack` sends a receiver's NACK packed so.
"""

from __future__ import annotations

import struct
from typing import Iterable

from aiortc.rtp import RTCP_RTPFB, RTCP_RTPFB_NACK, RtcpRtpfbPacket, pack_rtcp_packet


def nack_fci(lost: Iterable[int]) -> list[tuple[int, int]]:
    """The (PID, bitmask) pairs naming ``lost`` (taken modulo 2**16, in the order given): each
    sequence number within 16 after the current PID is a bit of its mask, any other starts an FCI."""
    fci: list[tuple[int, int]] = []
    for seq in lost:
        seq &= 0xFFFF
        if fci:
            pid, mask = fci[-1]
            distance = (seq - pid - 1) & 0xFFFF  # how far after the PID, across the wrap
            if distance < 16:
                fci[-1] = (pid, mask | 1 << distance)
                continue
            if seq == pid:
                continue  # named twice
        fci.append((seq, 0))
    return fci


class WrapNack(RtcpRtpfbPacket):
    """aiortc's generic NACK packet, its ``lost`` packed by :func:`nack_fci`."""

    def __bytes__(self) -> bytes:
        payload = struct.pack("!LL", self.ssrc, self.media_ssrc)
        payload += b"".join(struct.pack("!HH", pid, mask) for pid, mask in nack_fci(self.lost))
        return pack_rtcp_packet(RTCP_RTPFB, self.fmt, payload)


async def send_nack(receiver, media_ssrc: int, lost: list[int]) -> None:
    """Send ``receiver``'s publisher a NACK of ``lost`` for ``media_ssrc``; nothing before the
    receiver has an RTCP SSRC or when ``lost`` is empty. Returns None; raises nothing of its own
    (a closed transport is aiortc's to ignore)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
    if rtcp_ssrc is not None and lost:
        await receiver._send_rtcp(WrapNack(fmt=RTCP_RTPFB_NACK, ssrc=rtcp_ssrc, media_ssrc=media_ssrc, lost=lost))
