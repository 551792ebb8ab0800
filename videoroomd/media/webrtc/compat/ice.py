"""The engine's reaches into aioice 0.13's internals (besides the ICE restart, in :mod:`.ice_restart`).

aiortc gives no say over its ICE agent: which addresses it gathers on, what it
does with a STUN request from an address nobody signalled. These helpers set
instance attributes of one peer connection's own aioice objects (no class or
module is patched), which ties them to aioice 0.13: the version pinned in
pyproject.toml.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import ipaddress
import random
import socket
import struct
from typing import Callable

from aioice import ice as aioice_ice
from aioice import stun
from aioice.candidate import Candidate, candidate_foundation, candidate_priority
from aioice.ice import StunProtocol, server_reflexive_candidate
from aioice.turn import UDP_SOCKET_BUFFER_SIZE
import structlog
from aiortc import RTCPeerConnection

from ...dataplane.rtp_packets import NTP_EPOCH_OFFSET
from .ice_restart import answered_for_previous_generation

log = structlog.get_logger("videoroomd.media.ice")

# Peer-reflexive candidates (RFC 8445 section 7.3.1.3) one connection learns: aioice adds
# a remote candidate and a check pair (with its own retransmitted checks, ~5 datagrams
# back per request) for every new source address of an authenticated STUN request. A
# client behind NATs has a handful; requests from further new addresses go unanswered.
MAX_PEER_REFLEXIVE = 32
MAX_EARLY_CHECKS = 128  # STUN requests held until the ICE agent starts its checks
# Remote candidates of one ICE generation, signalled and learned: re-offers without an ICE
# restart keep adding to the same list, and every incoming check scans it.
MAX_REMOTE_CANDIDATES = 160


class TooManyCandidates(ValueError):
    """A connection has MAX_REMOTE_CANDIDATES remote candidates already."""


def ice_connections(pc: RTCPeerConnection) -> list:
    """The distinct aioice connections under ``pc``'s transceivers (one, once bundled)."""
    distinct: dict[int, object] = {}
    for transceiver in pc.getTransceivers():
        connection = transceiver.receiver.transport.transport._connection
        distinct.setdefault(id(connection), connection)
    return list(distinct.values())


def remote_username(pc: RTCPeerConnection) -> str | None:
    """The remote ICE ufrag ``pc`` uses now (with max-bundle, every transceiver shares the first one's)."""
    transceivers = pc.getTransceivers()
    return transceivers[0].receiver.transport.transport._connection.remote_username if transceivers else None


def limit_host_addresses(pc: RTCPeerConnection, addresses: tuple[str, ...]) -> None:
    """Gather host candidates on ``addresses`` only (aioice on its own leaves out 127.0.0.1).

    Call before ``setLocalDescription``; touches only ``pc``'s own ICE connections.
    """
    for connection in ice_connections(pc):
        if getattr(connection, "_videoroomd_addresses", False):
            continue
        original = connection.get_component_candidates

        async def only_configured(component, addresses=None, _original=original, _configured=list(addresses), **kwargs):
            return await _original(component=component, addresses=_configured, **kwargs)

        connection.get_component_candidates = only_configured
        connection._videoroomd_addresses = True


class NoFreePort(Exception):
    """Every port of ``[ice] udp_ports`` is taken on an address."""


def bind_in_range(address: str, ports: tuple[int, int]) -> socket.socket:
    """A UDP socket bound to ``address`` on a free port of ``ports`` (FIRST, LAST).

    Starts at a random port of the range and tries the next one, wrapping around, while
    the port is in use (by this or another process); raises NoFreePort when none is free.
    """
    first, last = ports
    count = last - first + 1
    start = random.randrange(count)  # connections made together do not all race for the first port
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    for step in range(count):
        port = first + (start + step) % count
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.bind((address, port))
        except OSError as error:
            sock.close()
            if error.errno == errno.EADDRINUSE:
                continue
            raise
        sock.setblocking(False)
        return sock
    raise NoFreePort(f"no free UDP port on {address} in [ice] udp_ports {first}-{last}: "
                     f"all {count} are in use (widen the range, or fewer participants per server)")


def bind_host_ports(pc: RTCPeerConnection, ports: tuple[int, int]) -> None:
    """Bind ``pc``'s host candidates on ports of ``ports`` only, instead of any the kernel picks.

    aioice binds each host socket itself, on port 0, inside
    ``Connection.get_component_candidates``; this replaces that method of ``pc``'s own
    connections with one that binds the host sockets here (:func:`bind_in_range`) and
    then lets aioice gather the rest (server-reflexive from these sockets, relayed) as it
    would. A gathering that finds no free port raises NoFreePort, which fails the answer.
    Call before ``setLocalDescription`` and before :func:`limit_host_addresses`.
    """
    for connection in ice_connections(pc):
        if getattr(connection, "_videoroomd_ports", False):
            continue
        original = connection.get_component_candidates

        async def in_range(component, addresses=(), timeout=5, _original=original, _connection=connection):
            return await _host_candidates_in_range(_connection, _original, component, list(addresses), ports, timeout)

        connection.get_component_candidates = in_range
        connection._videoroomd_ports = True


async def _host_candidates_in_range(connection, original, component: int, addresses: list[str],
                                    ports: tuple[int, int], timeout: float) -> list:
    """aioice 0.13's host-candidate gathering (get_component_candidates), on sockets of ``ports``."""
    loop = asyncio.get_running_loop()
    protocols = []
    try:
        for address in addresses:
            try:
                sock = bind_in_range(address, ports)
            except OSError as error:  # as aioice does: an address that cannot be bound is left out
                log.info("could not bind a media socket", address=address, error=str(error))
                continue
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_SOCKET_BUFFER_SIZE)
                _transport, protocol = await loop.create_datagram_endpoint(lambda: StunProtocol(connection), sock=sock)
            except BaseException:
                sock.close()
                raise
            protocols.append(protocol)
            host, port = protocol.transport.get_extra_info("sockname")[:2]
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", host), component=component, transport="udp",
                priority=candidate_priority(component, "host"), host=host, port=port, type="host")
    except BaseException:
        for protocol in protocols:
            protocol.transport.close()
        raise
    connection._protocols += protocols
    candidates = [p.local_candidate for p in protocols]
    if connection.stun_server:
        tasks = [asyncio.create_task(server_reflexive_candidate(p, connection.stun_server))
                 for p in protocols if ipaddress.ip_address(p.local_candidate.host).version == 4]
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            candidates += [t.result()[0] for t in done if t.exception() is None]
            for task in pending:
                task.cancel()
    # TURN (relayed candidates), when configured, as aioice does it; no host sockets of its own.
    return candidates + await original(component=component, addresses=[], timeout=timeout)


def watch_incoming(pc: RTCPeerConnection, heard: Callable[[], None]) -> None:
    """Call ``heard()`` for every datagram the remote side sends ``pc`` (media, RTCP, DTLS
    and its ICE checks alike), and leave unanswered the STUN requests that would make aioice
    learn more than MAX_PEER_REFLEXIVE peer-reflexive candidates; refuse remote candidates
    beyond MAX_REMOTE_CANDIDATES (TooManyCandidates). Call after
    ``setRemoteDescription``; touches only ``pc``'s own ICE connections."""
    for connection in ice_connections(pc):
        if getattr(connection, "_videoroomd_watched", False):
            continue
        deliver, answer = connection.data_received, connection.request_received

        def data_received(data, component, _deliver=deliver):
            heard()
            _deliver(data, component)

        def request_received(message, addr, protocol, _answer=answer, _connection=connection):
            if answered_for_previous_generation(_connection, message, addr, protocol):
                return
            if _unwelcome(_connection, message, addr):
                return
            heard()
            _answer(message, addr, protocol)

        async def add_remote_candidate(candidate, _add=connection.add_remote_candidate, _connection=connection):
            if (candidate is not None and len(_connection._remote_candidates) >= MAX_REMOTE_CANDIDATES
                    and not any(c.host == candidate.host and c.port == candidate.port for c in _connection._remote_candidates)):
                raise TooManyCandidates(f"this connection has {MAX_REMOTE_CANDIDATES} remote candidates already")
            await _add(candidate)

        connection.data_received = data_received
        connection.request_received = request_received
        connection.add_remote_candidate = add_remote_candidate
        connection._videoroomd_watched = True
        connection._videoroomd_heard = heard  # also told by a socket the compiled module reads (.native_port)


def _unwelcome(connection, message, addr) -> bool:
    """Whether to drop, unanswered, a STUN request that came to ``connection`` from ``addr``."""
    if "PRIORITY" not in message.attributes:
        return True  # every ICE check has one; aioice would fail on it (KeyError) after answering
    host, port = addr[0], addr[1]
    if any(c._network_host == host and c.port == port for c in connection._remote_candidates):
        return False
    if not connection._early_checks_done:
        early = connection._early_checks
        sources = {tuple(a[:2]) for _message, a, _protocol in early}
        return len(early) >= MAX_EARLY_CHECKS or ((host, port) not in sources and len(sources) >= MAX_PEER_REFLEXIVE)
    if len(connection._remote_candidates) >= MAX_REMOTE_CANDIDATES:
        return True
    learned = sum(1 for c in connection._remote_candidates if c.type == "prflx")
    return learned >= MAX_PEER_REFLEXIVE


# Each consent check is sent again this many times (0.5, 1 and 2 s apart, aioice's RTO): an
# answer has 3.5 s to come, well inside the next check's interval.
CONSENT_RETRANSMISSIONS = 2


def keep_consent(pc: RTCPeerConnection) -> None:
    """Check consent to send (RFC 7675) on ``pc``'s ICE connections as the RFC says: consent
    holds while some check was answered within the last 30 s (aioice's CONSENT_INTERVAL
    times CONSENT_FAILURES), checks going every 4 to 6 s.

    aioice 0.13 sends each check once and counts it failed unless the answer is there
    within 0.5 s; six such in a row close the connection. A browser on a machine busy
    encoding, whose answers take longer now and then, was cut off that way while its own
    side of the connection stayed up: the daemon lost every page of a room at once.
    Here each check is repeated (CONSENT_RETRANSMISSIONS) and an answer counts whenever
    it comes. Call after ``setRemoteDescription``, before the connection starts its
    checks; touches only ``pc``'s own ICE connections, once each."""
    for connection in ice_connections(pc):
        keep_consent_of(connection)


def keep_consent_of(connection) -> None:
    """:func:`keep_consent` for one aioice connection (before its ``connect``); once."""
    if getattr(connection, "_videoroomd_consent", False):
        return
    connection.query_consent = _consent_checks(connection)
    connection._videoroomd_consent = True


def _consent_checks(connection):
    """Stands in for aioice's ``query_consent`` of ``connection``."""

    async def query_consent() -> None:
        """Check consent until it expires, then close ``connection`` (as aioice does); runs
        until cancelled otherwise."""
        loop = asyncio.get_running_loop()
        answered_at = loop.time()
        checks: set[asyncio.Task] = set()

        async def check(pair) -> None:
            nonlocal answered_at
            request = connection.build_request(pair, nominate=False)
            try:
                await pair.protocol.request(request, pair.remote_addr,
                                            integrity_key=connection.remote_password.encode("utf8"),
                                            retransmissions=CONSENT_RETRANSMISSIONS)
            except (stun.TransactionError, ConnectionError, OSError):
                return  # unanswered or refused: the next check may be answered
            answered_at = loop.time()

        try:
            while True:
                interval = aioice_ice.CONSENT_INTERVAL
                await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
                if loop.time() - answered_at > interval * aioice_ice.CONSENT_FAILURES:
                    log.info("consent to send expired: no check answered",
                             seconds=round(loop.time() - answered_at, 1))
                    connection._query_consent_task = None
                    await connection.close()
                    return
                for pair in list(connection._nominated.values()):
                    task = asyncio.ensure_future(check(pair))
                    checks.add(task)
                    task.add_done_callback(checks.discard)
        finally:
            for task in checks:
                task.cancel()

    return query_consent


SIOCGSTAMP = 0x8906  # Linux: when the kernel received a socket's last datagram (struct timeval)
_TIMEVAL = struct.Struct("@ll")
_NO_STAMP = bytes(_TIMEVAL.size)


def kernel_arrival_ms(fd: int) -> int | None:
    """When the kernel received the datagram last read from socket ``fd``, in milliseconds
    since 1900 (aiortc's clock for the REMB estimator); None where it cannot say. The first
    call on a socket turns the kernel's stamps on (and may answer for a datagram received
    before: the time of the call)."""
    try:
        seconds, micros = _TIMEVAL.unpack(fcntl.ioctl(fd, SIOCGSTAMP, _NO_STAMP))
    except OSError:
        return None
    return (seconds + NTP_EPOCH_OFFSET) * 1000 + micros // 1000


def media_skips_stun_check(pc: RTCPeerConnection) -> None:
    """Hand the datagrams whose first byte says RTP or RTCP (128..191, RFC 7983) straight to
    ``pc``'s ICE connection, without aioice trying (and failing) to parse each as STUN first:
    STUN's first byte is 0..3, so nothing else changes. Empty datagrams are dropped: they
    are nothing, and aiortc's DTLS transport, reading their first byte, would end its receive
    loop (all media from the client stopped by one datagram from anywhere).

    Each media datagram read from a socket of ours carries, while it is handed on, when the
    kernel received it (``connection._videoroomd_arrival_ms``, read by
    :func:`.rtp.take_rtp_at_once`): the REMB estimator judges a publisher's path by how
    arrival times spread against send times, and the time the worker gets round to a
    datagram adds its own scheduling delays on a busy machine, which the estimator took for
    a congested path (publishers held at their lowest bitrate on an idle link).

    Call after ``setLocalDescription`` (when the candidates' sockets exist); touches only
    ``pc``'s own protocol objects, once each."""
    for connection in ice_connections(pc):
        media_first_of(connection)


def media_first_of(connection) -> None:
    """:func:`media_skips_stun_check` for one aioice connection (once its sockets exist)."""
    connection._videoroomd_arrival_ms = None
    for protocol in connection._protocols:
        if getattr(protocol, "_videoroomd_media_first", False):
            continue
        sock = getattr(protocol.transport, "_sock", None) if protocol.transport is not None else None
        fd = sock.fileno() if sock is not None else None

        def datagram_received(data, addr, _protocol=protocol, _check=protocol.datagram_received,
                              _connection=connection, _fd=fd):
            if not data:
                return
            if 127 < data[0] < 192:
                from_socket = _fd is not None and not _protocol._videoroomd_relaying
                _connection._videoroomd_arrival_ms = kernel_arrival_ms(_fd) if from_socket else None
                try:
                    _protocol.receiver.data_received(data, _protocol.local_candidate.component)
                finally:
                    _connection._videoroomd_arrival_ms = None
            else:
                _check(data, addr)

        protocol.datagram_received = datagram_received
        protocol._videoroomd_media_first = True
        protocol._videoroomd_relaying = False


def hand_relayed(protocol, data: bytes, addr) -> None:
    """Give ``protocol`` (a media socket's) a datagram that came through a TURN relay of this
    process, not from its socket (whose kernel stamp is then another datagram's)."""
    protocol._videoroomd_relaying = True
    try:
        protocol.datagram_received(data, addr)
    finally:
        protocol._videoroomd_relaying = False


def media_protocols(pc: RTCPeerConnection) -> list:
    """The aioice protocol of every host socket ``pc``'s ICE connections have open."""
    return [protocol for connection in ice_connections(pc) for protocol in connection._protocols
            if getattr(protocol, "transport", None) is not None and not protocol.transport.is_closing()]


def local_address(protocol) -> tuple[str, int] | None:
    """``(ip, port)`` a media socket's protocol is bound to."""
    try:
        host, port = protocol.transport.get_extra_info("sockname")[:2]
    except (AttributeError, TypeError):
        return None
    return host, port


class DivertingTransport:
    """A media socket's asyncio transport that hands what is sent to some addresses (the
    relayed addresses of TURN allocations served by this process) to a function instead of
    the kernel; everything else goes to the socket as before.

    It has no ``_sock``: the forwarder, which writes to a pair's raw socket when it can
    (``rtp.pair_socket``), then writes through it too.
    """

    def __init__(self, transport):
        self._transport = transport
        self.routes: dict[tuple[str, int], Callable[[bytes], None]] = {}

    def sendto(self, data, addr=None) -> None:
        route = self.routes.get((addr[0], addr[1])) if addr is not None else None
        if route is not None:
            route(bytes(data))
        else:
            self._transport.sendto(data, addr)

    def is_closing(self) -> bool:  # asked for every relayed datagram: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name):
        if name == "_sock":
            raise AttributeError(name)
        return getattr(self._transport, name)


def divert_to(protocol, address: tuple[str, int], route: Callable[[bytes], None]) -> None:
    """From now on, what ``protocol``'s media socket sends to ``address`` goes to ``route(data)``.

    Sets the protocol's own ``transport`` attribute (aioice sends through it; so does the
    forwarder, which reads it again whenever the nominated pair changes)."""
    transport = protocol.transport
    if not isinstance(transport, DivertingTransport):
        transport = DivertingTransport(transport)
        protocol.transport = transport
    transport.routes[address] = route
