"""One RTCP report a connection and interval, instead of one timer for each of its senders and receivers (asyncio side).

aiortc 1.16 gives every sender and every receiver a task of its own that
wakes every 0.5 to 1.5 s to send its report alone: an SR and SDES for a
sender, an RR for a receiver, each encrypted and written in a datagram of
its own. A subscriber of a room of N has 2N-2 senders and two receivers, so a
worker woke up and wrote hundreds of times a second for reports alone, and
most of an idle call's cost was that. :func:`report_together` makes one
connection's senders and receivers report together: one task a connection,
waking at aiortc's pace (0.5 to 1.5 s), sends each report aiortc would have
sent, with what aiortc would have put in it (and noting, as aiortc's sender
does, when its last SR went, for the round-trip time), packed into as few
compound RTCP datagrams as fit (RFC 3550 section 6.1: each begins with an SR
or RR). A stopped sender still says BYE, as in aiortc.
"""

from __future__ import annotations

import asyncio
import random
import time

import structlog
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import (RtcpByePacket, RtcpReceiverInfo, RtcpRrPacket, RtcpSdesPacket, RtcpSenderInfo,
                        RtcpSourceInfo, RtcpSrPacket)

from .rtp import sync_sent

log = structlog.get_logger("videoroomd.media.rtcp")

MAX_DATAGRAM = 1100  # bytes of RTCP put in one datagram: well under a path's MTU with SRTCP's overhead


class ConnectionReports:
    """The senders and receivers of one connection that report together, and the task that sends."""

    def __init__(self):
        self.members: dict[int, object] = {}  # id -> an aiortc RTCRtpSender or RTCRtpReceiver
        self.rounds = 0  # intervals reported so far (for tests: the pace)
        self._task: asyncio.Task | None = None

    def add(self, member) -> None:
        self.members[id(member)] = member
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    def discard(self, member) -> None:
        self.members.pop(id(member), None)

    async def _run(self) -> None:
        """Report every 0.5 to 1.5 s (aiortc's interval) until no member is left; returns then."""
        while self.members:
            await asyncio.sleep(0.5 + random.random())
            self.rounds += 1
            by_transport: dict[int, tuple[object, list[bytes]]] = {}
            for member in list(self.members.values()):
                transport = member.transport
                try:
                    report = _sender_report(member) if isinstance(member, RTCRtpSender) else _receiver_report(member)
                except Exception as error:  # one member's report lost; the others and the next interval go on
                    log.warning("an RTCP report could not be made", error=f"{type(error).__name__}: {error}")
                    continue
                if transport is not None and report:
                    by_transport.setdefault(id(transport), (transport, []))[1].append(report)
            for transport, reports in by_transport.values():
                for datagram in pack(reports):
                    try:
                        await transport._send_rtp(datagram)
                    except ConnectionError:  # as aiortc: a transport that is gone sends nothing
                        pass
                    except Exception as error:  # the next interval tries again
                        log.warning("an RTCP report could not be sent", error=f"{type(error).__name__}: {error}")


def pack(reports: list[bytes]) -> list[bytes]:
    """``reports`` (each an SR or RR first) in datagrams of at most MAX_DATAGRAM bytes where they fit."""
    datagrams: list[bytes] = []
    current = b""
    for report in reports:
        if current and len(current) + len(report) > MAX_DATAGRAM:
            datagrams.append(current)
            current = b""
        current += report
    if current:
        datagrams.append(current)
    return datagrams


def _sender_report(sender) -> bytes:
    """What aiortc's sender sends each interval: its SR, then its SDES (CNAME), as bytes."""
    sync_sent(sender)
    ntp = sender._RTCRtpSender__ntp_timestamp
    packets = [RtcpSrPacket(ssrc=sender._ssrc, sender_info=RtcpSenderInfo(
        ntp_timestamp=ntp, rtp_timestamp=sender._RTCRtpSender__rtp_timestamp,
        packet_count=sender._RTCRtpSender__packet_count & 0xFFFFFFFF,
        octet_count=sender._RTCRtpSender__octet_count & 0xFFFFFFFF))]
    sender._RTCRtpSender__lsr = (ntp >> 16) & 0xFFFFFFFF  # for the RTT, from the RR that answers it
    sender._RTCRtpSender__lsr_time = time.time()
    cname = sender._RTCRtpSender__cname
    if cname is not None:
        packets.append(RtcpSdesPacket(chunks=[RtcpSourceInfo(ssrc=sender._ssrc, items=[(1, cname.encode("utf8"))])]))
    return b"".join(bytes(p) for p in packets)


def _receiver_report(receiver) -> bytes:
    """What aiortc's receiver sends each interval: an RR of each stream it receives (b"" for none)."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc
    lsrs, lsr_times = receiver._RTCRtpReceiver__lsr, receiver._RTCRtpReceiver__lsr_time
    reports = []
    for ssrc, stream in receiver._RTCRtpReceiver__remote_streams.items():
        lsr = dlsr = 0
        if ssrc in lsrs:
            lsr = lsrs[ssrc]
            delay = time.time() - lsr_times[ssrc]
            if 0 < delay < 65536:
                dlsr = int(delay * 65536)
        reports.append(RtcpReceiverInfo(ssrc=ssrc, fraction_lost=stream.fraction_lost, packets_lost=stream.packets_lost,
                                        highest_sequence=stream.max_seq, jitter=stream.jitter, lsr=lsr, dlsr=dlsr))
    if rtcp_ssrc is None or not reports:
        return b""
    return bytes(RtcpRrPacket(ssrc=rtcp_ssrc, reports=reports))


def report_together(pc) -> ConnectionReports:
    """Make the senders and receivers of ``pc`` (one of our own connections) send their RTCP
    reports through one :class:`ConnectionReports` of ``pc``, which it returns. Call before
    they start (before ``setLocalDescription``) and again after each negotiation that may
    add transceivers; each is set up once."""
    reports = getattr(pc, "_videoroomd_reports", None)
    if reports is None:
        reports = pc._videoroomd_reports = ConnectionReports()
    for transceiver in pc.getTransceivers():
        for member, own in ((transceiver.sender, "_RTCRtpSender"), (transceiver.receiver, "_RTCRtpReceiver")):
            if not getattr(member, "_videoroomd_reports", False):
                member._run_rtcp = _run_rtcp(member, own, reports)
                member._videoroomd_reports = True
    return reports


def _run_rtcp(member, own: str, reports: ConnectionReports):
    """Stands in for aiortc's ``_run_rtcp`` of ``member``: joins ``reports`` until cancelled, then
    (a sender) says BYE, as aiortc's does."""

    async def run_rtcp() -> None:
        getattr(member, f"{own}__rtcp_started").set()
        reports.add(member)
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            pass
        finally:
            reports.discard(member)
        if own == "_RTCRtpSender":
            await member._send_rtcp([RtcpByePacket(sources=[member._ssrc])])
        getattr(member, f"{own}__rtcp_exited").set()

    return run_rtcp
