"""RTCP that the compiled media socket decrypted, handed to aiortc's senders and receivers at once.

aiortc reads a compound RTCP packet in its DTLS transport's reading task, parses it and
routes each packet to the senders and receivers it concerns (``RtpRouter.route_rtcp``).
A Port (:mod:`.native_port`) decrypts RTCP in C and hands it here: a busy room's
subscribers send a few hundred compounds a second to a worker (receiver reports and REMB
of every stream they receive), so the per-compound costs count:

- the compound is handled in the Port's read callback, not in a task of its own: the
  handlers (aiortc's and :mod:`..forwarding`'s) return without waiting on anything; one
  that does wait continues in a task from there (:func:`start`);
- the routing is aiortc's, without the type annotations that its nested function
  evaluates on every call (:func:`route_rtcp`, installed per transport by :func:`route_with_ours`).

What a client's RTCP may cost is bounded too (:func:`limit_rtcp`, on both data planes):
aiortc parses a compound whole, a NACK's every lost packet as a number of its own, so
a client that sent 64 KiB compounds of NACKs would buy 47 ms of the worker's CPU with
each, for every room on it. A compound larger than MAX_COMPOUND is dropped unread
(RTCP fits a path's MTU: RFC 3550 section 6.1), and each connection may have RTCP_RATE
bytes a second parsed (bursts to RTCP_BURST), some times what a browser sends; the
rest is dropped and counted (:data:`DROPPED`, the worker's ``rtcp_dropped``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable, Coroutine

from aiortc.rtp import (RTCP_PSFB_APP, RtcpByePacket, RtcpPsfbPacket, RtcpRrPacket, RtcpRtpfbPacket, RtcpSrPacket,
                        unpack_remb_fci)

from ....token_buckets import TokenBuckets

__all__ = ["DROPPED", "handle_decrypted_rtcp", "limit_rtcp", "route_rtcp", "route_with_ours", "start"]

MAX_COMPOUND = 1500      # bytes of one RTCP compound
RTCP_RATE = 32 * 1024    # bytes a second of a connection's RTCP parsed (a browser's reports and feedback: a few KiB)
RTCP_BURST = 32 * 1024

# RTCP compounds this process dropped before parsing them, by why (summed into the worker's Port counters).
DROPPED = {"rtcp_oversized": 0, "rtcp_over_budget": 0}


def limit_rtcp(dtls, clock: Callable[[], float] = time.monotonic) -> None:
    """Have ``dtls`` parse only the RTCP its client may make it parse: compounds of at most
    MAX_COMPOUND bytes, RTCP_RATE bytes a second; the rest is dropped and counted in DROPPED.
    Both ways in are bounded (aiortc's own reading, and a Port's :func:`handle_decrypted_rtcp`:
    both call the transport's ``_handle_rtcp_data``). Once per transport; later calls do nothing."""
    if getattr(dtls, "_videoroomd_rtcp_limited", False):
        return
    handle = dtls._handle_rtcp_data
    budget = TokenBuckets(RTCP_RATE, RTCP_BURST, max_tracked=1)

    async def handle_rtcp_data(data: bytes) -> None:
        if len(data) > MAX_COMPOUND:
            DROPPED["rtcp_oversized"] += 1
        elif not budget.take(None, clock(), len(data)):
            DROPPED["rtcp_over_budget"] += 1
        else:
            await handle(data)

    dtls._handle_rtcp_data = handle_rtcp_data
    dtls._videoroomd_rtcp_limited = True


def handle_decrypted_rtcp(dtls, plain: bytes) -> asyncio.Future | None:
    """Hand a decrypted RTCP compound to ``dtls``'s senders and receivers now, as aiortc does
    with what it decrypts itself. Returns None when that is done, or the task finishing a
    handler that waits. A handler's error goes to the loop's exception handler, as a task's would."""
    try:
        return start(dtls._handle_rtcp_data(plain))
    except Exception as error:
        asyncio.get_running_loop().call_exception_handler({"message": "an RTCP packet could not be handled",
                                                           "exception": error})
        return None


def route_with_ours(dtls) -> None:
    """Have ``dtls``'s router find RTCP's recipients with :func:`route_rtcp` (both ways RTCP comes
    in, aiortc's own reading and a Port's). Once per transport, with :func:`limit_rtcp`."""
    router = dtls._rtp_router
    router.route_rtcp = lambda packet: route_rtcp(router, packet)


def route_rtcp(router, packet) -> set:
    """Who ``packet`` is for among ``router``'s receivers (by the SSRC a sender report or a BYE
    names) and senders (by the report blocks' SSRCs, a feedback packet's media SSRC, and the
    SSRCs a REMB lists): the recipients ``RtpRouter.route_rtcp`` of aiortc 1.x finds."""
    recipients: set = set()
    receivers, senders = router.ssrc_table, router.senders
    if isinstance(packet, (RtcpSrPacket, RtcpRrPacket)):
        if isinstance(packet, RtcpSrPacket) and packet.ssrc in receivers:
            recipients.add(receivers[packet.ssrc])
        for report in packet.reports:
            if report.ssrc in senders:
                recipients.add(senders[report.ssrc])
    elif isinstance(packet, RtcpByePacket):
        recipients.update(receivers[ssrc] for ssrc in packet.sources if ssrc in receivers)
    elif isinstance(packet, (RtcpPsfbPacket, RtcpRtpfbPacket)):
        if packet.media_ssrc in senders:
            recipients.add(senders[packet.media_ssrc])
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:  # a REMB names its SSRCs inside
            try:
                named = unpack_remb_fci(packet.fci)[1]
            except ValueError:
                named = []
            recipients.update(senders[ssrc] for ssrc in named if ssrc in senders)
    recipients.discard(None)
    return recipients


def start(coro: Coroutine[Any, Any, Any]) -> asyncio.Future | None:
    """Run ``coro`` until it first waits. Returns None when it finished then (its result dropped),
    else the task that runs the rest. Raises what it raised before waiting."""
    try:
        waited_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_Rest(coro, waited_on))


class _Rest:
    """The rest of a coroutine that waited on ``waited_on``: awaitable, so that a task runs it as
    it would have run the whole (what the coroutine yields goes to the task, and back)."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waited_on: Any):
        self._coro, self._waited_on = coro, waited_on

    def __await__(self):
        coro, value = self._coro, self._waited_on
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as error:  # a cancellation of the task, thrown into the coroutine
                try:
                    value = coro.throw(error)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as done:
                    return done.value
