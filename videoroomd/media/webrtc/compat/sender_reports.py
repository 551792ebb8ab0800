"""The reach into aiortc 1.16's receivers for the sender reports their publisher sends (asyncio side)."""

from __future__ import annotations

from typing import Callable

from aiortc.rtp import RtcpSrPacket


def watch_sender_reports(receiver, on_report: Callable[[int, int, int], None]) -> None:
    """Call ``on_report(ssrc, ntp, rtp)`` for each RTCP sender report that reaches ``receiver``
    (before aiortc's own handling, which goes on as before)."""
    handle = receiver._handle_rtcp_packet

    async def handle_rtcp(packet) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            on_report(packet.ssrc, info.ntp_timestamp, info.rtp_timestamp)
        await handle(packet)

    receiver._handle_rtcp_packet = handle_rtcp
