"""RTCP a Port decrypted: routed to the senders and receivers aiortc's own router names, and
handled at once unless a handler waits (then the rest runs in a task, cancellable)."""

from __future__ import annotations

import asyncio
import random

import pytest
from aiortc.rtcdtlstransport import RtpRouter
from aiortc.rtp import (RTCP_PSFB_APP, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpByePacket, RtcpPsfbPacket, RtcpReceiverInfo,
                        RtcpRrPacket, RtcpRtpfbPacket, RtcpSenderInfo, RtcpSrPacket, pack_remb_fci)

from videoroomd.media.webrtc.compat.rtcp_in import (DROPPED, MAX_COMPOUND, RTCP_BURST, RTCP_RATE, limit_rtcp, route_rtcp,
                                                      start)


class Recipient:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


def a_router(rng: random.Random) -> RtpRouter:
    router = RtpRouter()
    for n in range(4):
        router.register_receiver(Recipient(f"receiver{n}"), ssrcs=[100 + n, 200 + n], payload_types=[96 + n])
        router.register_sender(Recipient(f"sender{n}"), 300 + n)
    return router


def some_packets(rng: random.Random):
    def ssrc():  # known to the router, or not
        return rng.choice([100, 101, 203, 300, 302, 303, 999, 0])

    def reports():
        return [RtcpReceiverInfo(ssrc=ssrc(), fraction_lost=0, packets_lost=0, highest_sequence=1, jitter=0, lsr=0,
                                 dlsr=0) for _ in range(rng.randrange(4))]

    info = RtcpSenderInfo(ntp_timestamp=1, rtp_timestamp=2, packet_count=3, octet_count=4)
    yield RtcpSrPacket(ssrc=ssrc(), sender_info=info, reports=reports())
    yield RtcpRrPacket(ssrc=ssrc(), reports=reports())
    yield RtcpByePacket(sources=[ssrc() for _ in range(rng.randrange(3))])
    yield RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=ssrc(), media_ssrc=ssrc())
    yield RtcpRtpfbPacket(fmt=RTCP_RTPFB_NACK, ssrc=ssrc(), media_ssrc=ssrc(), lost=[1, 2])
    yield RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=ssrc(), media_ssrc=0,
                         fci=pack_remb_fci(500_000, [ssrc() for _ in range(rng.randrange(1, 5))]))
    yield RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=ssrc(), media_ssrc=ssrc(), fci=b"not a REMB")


def test_every_packet_goes_where_aiortcs_router_sends_it():
    rng = random.Random(7)
    routed = 0
    for _ in range(200):
        router = a_router(rng)
        for packet in some_packets(rng):
            expected = RtpRouter.route_rtcp(router, packet)
            assert route_rtcp(router, packet) == expected, packet
            routed += bool(expected)
    assert routed > 300  # most packets have someone to go to


def test_a_handler_that_does_not_wait_is_done_before_start_returns():
    done = []

    async def handle():
        done.append("handled")
        return "result"

    assert start(handle()) is None
    assert done == ["handled"]


def test_a_handler_that_waits_goes_on_in_a_task_and_can_be_cancelled():
    asyncio.run(a_handler_that_waits())


async def a_handler_that_waits():  # on asyncio, as in a media worker
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    steps = []

    async def handle():
        steps.append("before")
        steps.append(await first)
        try:
            await second
        finally:
            steps.append("cleaned up")

    task = start(handle())
    assert steps == ["before"] and not task.done()
    first.set_result("after the first wait")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert steps == ["before", "after the first wait"]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert steps[-1] == "cleaned up"


def test_an_error_before_the_first_wait_is_raised_to_the_caller():
    async def handle():
        raise ValueError("bad packet")

    with pytest.raises(ValueError, match="bad packet"):
        start(handle())


class Transport:
    """The one method of a DTLS transport that RTCP goes through (aiortc's ``_handle_rtcp_data``)."""

    def __init__(self):
        self.parsed: list[bytes] = []

    async def _handle_rtcp_data(self, data: bytes) -> None:
        self.parsed.append(data)


def test_a_clients_rtcp_is_parsed_up_to_its_size_and_byte_budget_and_the_rest_is_counted():
    now = [100.0]
    transport = Transport()
    limit_rtcp(transport, clock=lambda: now[0])
    limit_rtcp(transport, clock=lambda: now[0])  # once per transport
    before = dict(DROPPED)

    def send(data: bytes) -> None:
        assert start(transport._handle_rtcp_data(data)) is None

    send(bytes(MAX_COMPOUND + 1))  # no RTCP compound is this large
    report = bytes(1000)
    for _ in range(RTCP_BURST // len(report) + 5):
        send(report)
    assert len(transport.parsed) == RTCP_BURST // len(report)
    assert DROPPED["rtcp_oversized"] - before["rtcp_oversized"] == 1
    assert DROPPED["rtcp_over_budget"] - before["rtcp_over_budget"] == 5
    now[0] += 1.0  # a second later: a second's worth again (never more than a burst)
    for _ in range(RTCP_RATE // len(report) + 1):
        send(report)
    assert len(transport.parsed) == 2 * (RTCP_BURST // len(report))
    assert DROPPED["rtcp_over_budget"] - before["rtcp_over_budget"] == 6
