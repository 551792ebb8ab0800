"""A connection's media socket handed to the compiled module (``_native.Port``) once DTLS is connected.

While aiortc reads a socket, each datagram costs a wakeup of the loop, aioice's and
aiortc's Python calls and pylibsrtp. Here, once ICE has nominated a pair on one of our
host sockets (not a TURN relay: aioice's own relayed candidates, or TURN clients this
process relays on the socket, whose datagrams never arrive on it) and DTLS is connected,
the socket's reading moves to a Port, which the loop calls itself (``Port.on_readable``: a
read that only forwarded in C runs no Python): one wakeup reads every datagram waiting
(recvmmsg), RTP and RTCP from anything but the connection's validated ICE pairs are
dropped before SRTP, the rest is decrypted in C with keys derived from the same DTLS
handshake (:mod:`.srtp_keys`) and handed to the receive path after its SRTP step
(:func:`.rtp.decrypted_rtp_router`); STUN and DTLS go to aioice's protocol as before
(consent, ICE restarts, DTLS alerts keep working). What the data plane sends on the
socket is protected in C and sent with sendmmsg once per turn of the loop.

The reach: the datagram transport under aioice's ``StunProtocol`` of that socket is
replaced by :class:`PortTransport` (a duplicate of its descriptor; asyncio's or uvloop's
transport is detached from the protocol and closed, as neither lets another reader share
the descriptor), attributes of our own connection's objects only. Closing the ICE
connection closes the PortTransport like the transport it replaced: the reader is
removed, the socket closed.
"""

from __future__ import annotations

import asyncio
import os
import socket
import weakref
from typing import Any

import structlog
from aioice.ice import CandidatePair

from ...dataplane.native_module import load
from ...dataplane.rtp_packets import NTP_EPOCH_OFFSET
from .ice import DivertingTransport, ice_connections
from .native_receive import DRAIN_INTERVAL, FastRoutes
from .rtcp_in import handle_decrypted_rtcp
from .rtp import arrival_ms, count_received
from .srtp_keys import NoSrtpKeys, srtp_keys

log = structlog.get_logger("videoroomd.media.native_port")


class PlainSrtp:
    """The SRTP session a ported route hands the plane: protect does nothing, the Port protects."""

    @staticmethod
    def protect(data: bytes) -> bytes:
        return data


PLAIN = PlainSrtp()


class NotPorted(Exception):
    """Why a connection keeps aiortc's own reading of its socket."""


class _Detached(asyncio.DatagramProtocol):
    """What the replaced transport tells when it closes: nobody listens any more."""


class PortTally:
    """What the Ports of one media worker counted since it started: those open now and those closed,
    summed by counter name (``Port.counters``: datagrams, batches, unvalidated, auth, replay, sent, ...)."""

    def __init__(self):
        self._open: weakref.WeakSet = weakref.WeakSet()
        self._closed: dict[str, int] = {}

    def opened(self, transport: PortTransport) -> None:
        self._open.add(transport)

    def closed(self, transport: PortTransport) -> None:
        if transport in self._open:
            self._open.discard(transport)
            _add(self._closed, transport.port.counters)

    def totals(self) -> dict[str, int]:
        """Each counter summed over every Port this worker had."""
        totals = dict(self._closed)
        for transport in list(self._open):
            _add(totals, transport.port.counters)
        return totals


def _add(totals: dict[str, int], counters: dict[str, int]) -> None:
    for name, value in counters.items():
        totals[name] = totals.get(name, 0) + value


class PortTransport(asyncio.DatagramTransport):
    """Stands in for the datagram transport of one media socket under aioice's protocol: the loop
    calls ``port.on_readable`` when the socket is readable, which calls :meth:`_handle` when the read
    has something for Python; sends (STUN, DTLS, aiortc's RTCP)
    with a plain non-blocking ``sendto``; the data plane's RTP through :meth:`queue`."""

    def __init__(self, loop, protocol, sock: socket.socket, port, connection, tally: PortTally | None = None,
                 feedback=None):
        super().__init__()
        self._loop, self._protocol, self._sock, self.port = loop, protocol, sock, port
        self._connection = connection
        self._tally = tally  # told when this Port opens and closes (its worker's /metrics)
        self._closing = False
        self._flush_scheduled = False
        self._fell_behind = False  # the kernel's send buffer was full since the last flush
        self._dropped_seen = 0  # the Port's send_dropped then
        self._allowed: set[tuple[str, int]] = set()
        self._dtls = connection._videoroomd_dtls
        self._route_rtp = connection._videoroomd_route_rtp
        self._heard = getattr(connection, "_videoroomd_heard", None)
        self._fast = FastRoutes(port, self._dtls)  # the SSRCs it forwards in C (.native_receive)
        # The connection's RTCP about what the plane sends it, read in C (dataplane.native_feedback)
        self._feedback = feedback
        if feedback is not None:
            port.set_feedback(feedback.table)
        self.sync_allowed()
        # The loop calls the Port itself: a read that only forwarded runs no Python at all.
        port.set_reader(self._handle, self._lost, DRAIN_INTERVAL)
        loop.add_reader(sock.fileno(), port.on_readable)
        if tally is not None:
            tally.opened(self)

    # -- the transport aioice and aiortc send through --------------------------------------------

    def sendto(self, data, addr=None) -> None:
        if self._closing:
            return
        try:
            self._sock.sendto(data, addr)
        except OSError:  # a full buffer or an ICMP error, as asyncio's transport: the datagram is lost
            pass

    def get_extra_info(self, name, default=None):
        if name == "sockname":
            return self._sock.getsockname()
        if name == "socket":
            return self._sock
        return default

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self._loop.remove_reader(self._sock.fileno())
        self.port.set_reader(None, None)  # (the Port held this transport's methods)
        self.port.flush()
        if self._tally is not None:
            self._tally.closed(self)
        self._sock.close()
        self._loop.call_soon(self._protocol.connection_lost, None)

    abort = close

    def get_protocol(self):
        return self._protocol

    def set_protocol(self, protocol) -> None:
        self._protocol = protocol

    # -- the data plane's sends ------------------------------------------------------------------

    def queue(self, data: bytes, address) -> None:
        """Protect and queue one RTP packet to ``address``; the queue goes out once this turn of the
        loop is over (with the rest of what this read batch made), or when it is full."""
        if self._closing:
            raise OSError("the media socket is closed")
        if self._fell_behind:  # told to the plane once, as a refused sendto: its subscriber cannot keep up
            self._fell_behind = False
            raise BlockingIOError("the media socket's send buffer was full")
        self.port.send(data, address)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._closing:
            self.port.flush()
            dropped = self.port.send_dropped  # (by this flush, or one of a queue that filled up)
            if dropped > self._dropped_seen:
                self._dropped_seen, self._fell_behind = dropped, True

    # -- reading -------------------------------------------------------------------------------

    def sync_allowed(self) -> None:
        """Take media from the remote addresses of the connection's validated pairs on this socket."""
        connection, protocol = self._connection, self._protocol
        valid = {pair.remote_addr for pair in connection._check_list
                 if pair.protocol is protocol and pair.state == CandidatePair.State.SUCCEEDED}
        valid |= {pair.remote_addr for pair in connection._nominated.values() if pair.protocol is protocol}
        for address in self._allowed - valid:
            self.port.forget(address)
        for address in valid - self._allowed:
            self.port.allow(address)
        self._allowed = valid

    def _lost(self, error: OSError) -> None:
        """The Port's read failed: the descriptor is gone under us. Stop reading, as a lost transport."""
        log.warning("the compiled media socket failed; its connection ends", error=str(error))
        self.close()

    def _handle(self, signals: list, media: list, due: int) -> None:
        """What a read of the Port has for Python (``Port.on_readable``): STUN and DTLS, media not
        routed in C, and ``due``: the drain of what the Port did in C (DUE_NOW: NACKs, REMBs, arrivals,
        stale routes, the connection's RTCP summary; DUE_COUNTERS: counters only)."""
        protocol = self._protocol
        for data, address in signals:
            try:
                protocol.datagram_received(data, address)
            except Exception as error:
                self._loop.call_exception_handler({"message": "a STUN or DTLS datagram could not be handled",
                                                   "exception": error})
        if signals:
            self.sync_allowed()  # an ICE check may have validated a new pair, or a restart dropped one
        if media:
            self._take(media)
        if due:
            if self._feedback is not None and self._feedback.table.due:
                self._feedback.take()
            if self._fast.receivers or due == DUE_COUNTERS:
                self._drain_fast()

    def _drain_fast(self) -> None:
        packets, octets = self._fast.drain()
        if packets:  # (what was forwarded counts as heard when the silence check asks the Port: .connections)
            self._dtls._RTCDtlsTransport__rx_packets += packets
            self._dtls._RTCDtlsTransport__rx_bytes += octets

    def _take(self, media: list) -> None:
        if self._heard is not None:
            self._heard()
        dtls, route = self._dtls, self._route_rtp
        rtp = []
        for kind, plain, arrival_ns in media:
            count_received(dtls, len(plain))
            if kind == RTP:
                at = arrival_ns // 1_000_000 + NTP_EPOCH_OFFSET * 1000 if arrival_ns is not None else arrival_ms()
                route(plain, at)
                rtp.append(plain)
            else:
                handle_decrypted_rtcp(dtls, plain)
        for plain in rtp:  # once Python's path had the whole batch: the Port takes over from its next packet
            self._fast.consider(plain)


RTP = 5  # _native.RTP (checked when the module loads: take_over)
DUE_COUNTERS = 2  # _native.DUE_COUNTERS (checked there too)


class PortSender:
    """What a ported route gives the plane to ``sendto``: the Port's queue of its transport."""

    __slots__ = ("_transport",)

    def __init__(self, transport: PortTransport):
        self._transport = transport

    def sendto(self, data: bytes, address) -> None:
        self._transport.queue(data, address)


def ported_route(pair) -> tuple[Any, Any, Any] | None:
    """(PLAIN, a sender, the remote address) for a nominated ``pair`` whose socket the compiled
    module reads, else None (the pair's socket is written as before)."""
    transport = pair.protocol.transport
    if type(transport) is not PortTransport or transport.is_closing():
        return None
    return PLAIN, transport.sender, pair.remote_addr


def take_over(pc, tally: PortTally | None = None, feedback=None) -> dict[str, str]:
    """Hand the nominated pair's socket of each of ``pc``'s ICE connections to a Port where it can be
    done (each Port told to ``tally``, and reading ``pc``'s RTCP about the plane's streams with
    ``feedback``, a :class:`...dataplane.native_feedback.ConnectionFeedback`, when given); per
    connection, ``"native"`` or why it keeps aiortc's reading (never raises for that)."""
    outcome = {}
    for index, connection in enumerate(ice_connections(pc)):
        try:
            _take_over(connection, tally, feedback)
            outcome[str(index)] = "native"
        except NotPorted as why:
            outcome[str(index)] = f"python: {why}"
    return outcome


def _take_over(connection, tally: PortTally | None, feedback) -> None:
    if getattr(connection, "_videoroomd_dtls", None) is None or not hasattr(connection, "_videoroomd_route_rtp"):
        raise NotPorted("its receive path is not ours")
    pair = connection._nominated.get(1)
    if pair is None:
        raise NotPorted("no nominated pair")
    protocol = pair.protocol
    transport = protocol.transport
    if type(transport) is PortTransport:
        return
    if pair.local_candidate.type == "relay":
        raise NotPorted("its pair is relayed through a TURN server")
    if isinstance(transport, DivertingTransport) or transport is None or transport.is_closing():
        raise NotPorted("TURN clients of this server are relayed on its socket")
    sock = getattr(transport, "_sock", None) or transport.get_extra_info("socket")
    if sock is None:
        raise NotPorted("its transport shows no socket")
    try:
        keys = srtp_keys(connection._videoroomd_dtls)
    except NoSrtpKeys as error:
        raise NotPorted(str(error)) from None
    native = load()
    assert native.RTP == RTP and native.DUE_COUNTERS == DUE_COUNTERS
    own = socket.socket(fileno=os.dup(sock.fileno()))
    try:
        own.setblocking(False)
        port = native.Port(own.fileno())
        port.set_keys(keys.profile, keys.rx_key, keys.rx_salt, keys.tx_key, keys.tx_salt)
    except BaseException:
        own.close()
        raise
    loop = asyncio.get_running_loop()
    _close_sending_duplicate(protocol)
    transport.set_protocol(_Detached())
    transport.close()  # closes its descriptor; the socket lives on in ``own``
    ported = PortTransport(loop, protocol, own, port, connection, tally, feedback)
    ported.sender = PortSender(ported)
    protocol.transport = ported


def _close_sending_duplicate(protocol) -> None:
    """Close the socket .rtp.pair_socket made on uvloop's descriptor for sending: the route sends
    through the Port now."""
    kept = getattr(protocol, "_videoroomd_socket", None)
    if kept is not None:
        kept[1].close()
        protocol._videoroomd_socket = None


def sync_ports(pc) -> None:
    """Make each of ``pc``'s sockets the compiled module reads take media from the validated pairs of now
    (a check that just succeeded, an ICE restart's new pair), not only after its next STUN datagram."""
    for connection in ice_connections(pc):
        for protocol in connection._protocols:
            if type(protocol.transport) is PortTransport and not protocol.transport.is_closing():
                protocol.transport.sync_allowed()


def counters(pc) -> list[dict[str, int]]:
    """The Port counters of each of ``pc``'s sockets the compiled module reads."""
    return [protocol.transport.port.counters for connection in ice_connections(pc)
            for protocol in connection._protocols if type(protocol.transport) is PortTransport]
