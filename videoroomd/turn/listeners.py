"""The TURN server's own sockets: UDP, TCP and TLS listeners, each message handed on with how to answer it.

Each client 5-tuple is a :class:`Client` whose ``send`` never waits: on
UDP it is a non-blocking ``sendto``, on a stream it queues for the
connection's writer and drops when the client reads too slowly. A stream is
cut into frames (RFC 8656 §7.4); one that is out of step, idle without an
allocation, or gone ends alone.
"""

from __future__ import annotations

import ctypes
import ipaddress
import socket
import struct
import ssl
from collections import Counter
from dataclasses import dataclass
from typing import Awaitable, Callable, Hashable

import structlog
import trio

from ..config.schema import TurnConfig
from ..http.server import ListenError
from ..logs.ratelimit import ThrottledLog
from .framing import StreamFramer
from .messages import Malformed

log = structlog.get_logger("videoroomd.turn")
throttled = ThrottledLog(log)  # lines a client could cause, at most a few a second

STREAM_IDLE = 30.0           # seconds a TCP/TLS connection may stay without an allocation
STREAM_QUEUE = 256           # frames waiting for a slow TCP/TLS client; more are dropped
MAX_STREAMS = 1024           # TCP/TLS connections at once; more are closed at once
HANDSHAKE_TIMEOUT = 10.0     # seconds for a TLS handshake
CLOSE_TIMEOUT = 2.0          # seconds to say goodbye on a stream
BIND_ATTEMPTS = 64           # UDP ports tried, with port 0, for one whose TCP twin is free too
MAX_DATAGRAM = 65535
# What a client leaving, resetting, or speaking something else than TLS raises on its stream.
BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class TurnListenError(ListenError):
    """A TURN port that cannot be bound; ``key`` names the setting."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


@dataclass
class Client:
    """One client 5-tuple, and how to send to it (never blocks; drops when the client is slow)."""

    key: Hashable
    transport: str           # udp, tcp or tls
    address: tuple[str, int]
    send: Callable[[bytes], None]
    # Set by the server to take over a TCP connection: called with its file descriptor and the
    # bytes read but not framed yet, once what was queued for it is written; True if it took it.
    detach: Callable[[int, bytes], Awaitable[bool]] | None = None
    # Ends a TCP/TLS client's connection (its allocation was taken away); None on UDP.
    close: Callable[[], None] | None = None

    @property
    def stream(self) -> bool:
        return self.transport != "udp"


class Listeners:
    """Bound by :meth:`open`, served by :meth:`start` in the caller's nursery, closed by :meth:`aclose`."""

    def __init__(
        self,
        config: TurnConfig,
        ssl_context: ssl.SSLContext | None,
        *,
        receive: Callable[[bytes, Client], None],
        has_allocation: Callable[[Hashable], bool],
        connection_ended: Callable[[Hashable], None],
        dropped: Counter,
    ):
        self.config = config
        self.ssl_context = ssl_context
        self.receive = receive
        self.has_allocation = has_allocation
        self.connection_ended = connection_ended
        self.dropped = dropped
        self.addresses: dict[str, tuple[str, int]] = {}  # transport -> bound address
        self._udp = None
        self._raw: socket.socket | None = None
        self._listeners: list[tuple[str, trio.abc.Listener]] = []
        self._streams = 0

    @property
    def is_open(self) -> bool:
        return self._udp is not None

    async def open(self) -> dict[str, tuple[str, int]]:
        """Bind UDP and TCP on ``listen`` (and TLS on ``tls_listen``); returns :attr:`addresses`. Raises ListenError."""
        if self.is_open:
            return self.addresses
        # With port 0, UDP picks the port and TCP must get the same one, which may be taken
        # (by a connection's own ephemeral port): then another UDP port is tried.
        attempts = BIND_ATTEMPTS if self.config.port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._open_pair()
                break
            except ListenError:
                if attempt == attempts - 1:
                    raise
        if self.ssl_context is not None and self.config.tls_port is not None:
            where = (self.config.tls_host or self.config.host, self.config.tls_port)
            try:
                tls = await trio.open_tcp_listeners(where[1], host=where[0])
            except OSError as problem:
                await self.aclose()
                raise TurnListenError("turn.tls_listen", f"cannot listen on {text(where)}: {problem.strerror or problem}") from None
            self._listeners += [("tls", trio.SSLListener(l, self.ssl_context, https_compatible=False)) for l in tls]
            self.addresses["tls"] = address_of(tls[0].socket.getsockname())
        return self.addresses

    async def _open_pair(self) -> None:
        host, port = self.config.host, self.config.port
        raw = socket.socket(family_of(host), socket.SOCK_DGRAM)
        try:
            # So that a socket connected to one client can share the address (see server.py's
            # handoff to the media workers): Linux gives it that client's datagrams.
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            raw.bind((host, port))
            keep_unconnected_datagrams(raw)
        except OSError as problem:
            raw.close()
            raise TurnListenError("turn.listen", f"cannot listen on UDP {text((host, port))}: {problem.strerror or problem}") from None
        raw.setblocking(False)  # sends never wait; receiving goes through trio
        udp = trio.socket.from_stdlib_socket(raw)
        port = udp.getsockname()[1]
        try:
            tcp = await trio.open_tcp_listeners(port, host=host)
        except OSError as problem:
            udp.close()
            raise TurnListenError("turn.listen", f"cannot listen on TCP {text((host, port))}: {problem.strerror or problem}") from None
        self.addresses = {"udp": address_of(udp.getsockname()), "tcp": address_of(tcp[0].socket.getsockname())}
        self._udp, self._raw, self._listeners = udp, raw, [("tcp", l) for l in tcp]

    def start(self, nursery: trio.Nursery) -> None:
        """Serve every listener as tasks of ``nursery`` (their connections too)."""
        assert self.is_open
        nursery.start_soon(self._serve_udp)
        for transport, listener in self._listeners:
            nursery.start_soon(self._accept, nursery, transport, listener)

    async def aclose(self) -> None:
        """Close the listeners (bounded in time); closing twice is fine."""
        udp, listeners = self._udp, self._listeners
        self._udp, self._listeners = None, []
        if udp is not None:
            udp.close()
        for _, listener in listeners:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await listener.aclose()

    # -- UDP -------------------------------------------------------------------------------
    async def _serve_udp(self) -> None:
        udp, raw = self._udp, self._raw
        while True:
            try:
                data, peer = await udp.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue  # an ICMP error reported on the socket: the next datagram is another's
            peer = address_of(peer)

            def send(payload: bytes, peer=peer) -> None:
                send_datagram(raw, payload, peer, self.dropped, "client_unreachable")

            self.receive(data, Client(("udp", peer), "udp", peer, send))

    # -- TCP and TLS -----------------------------------------------------------------------
    async def _accept(self, nursery: trio.Nursery, transport: str, listener: trio.abc.Listener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError:
                await trio.sleep(0.1)  # out of file descriptors: the clients wait in the backlog
                continue
            if self._streams >= MAX_STREAMS:
                self.dropped["too_many_connections"] += 1
                with trio.move_on_after(CLOSE_TIMEOUT):
                    await trio.aclose_forcefully(stream)
                continue
            nursery.start_soon(self._serve_stream, transport, stream)

    async def _serve_stream(self, transport: str, stream) -> None:
        """One TCP/TLS client until it leaves, misframes, idles without an allocation, or is handed on."""
        self._streams += 1
        key = (transport, object())
        outbox_send, outbox = trio.open_memory_channel(STREAM_QUEUE)
        written = _Written()
        handed = False
        try:
            if isinstance(stream, trio.SSLStream):
                with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
                    await stream.do_handshake()
                if handshake.cancelled_caught:
                    self.dropped["tls_handshake"] += 1
                    return
                peer = address_of(stream.transport_stream.socket.getpeername())
            else:
                peer = address_of(stream.socket.getpeername())

            def send(payload: bytes) -> None:
                try:
                    outbox_send.send_nowait(payload)
                    written.queued += 1
                except (trio.WouldBlock, trio.ClosedResourceError):
                    self.dropped["client_slow"] += 1

            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_stream, stream, outbox, nursery.cancel_scope, written)
                client = Client(key, transport, peer, send, close=nursery.cancel_scope.cancel)
                handed = await self._read_stream(stream, client, written)
                nursery.cancel_scope.cancel()
        except BROKEN:
            self.dropped["connection_broken"] += 1  # during the TLS handshake: not TLS, or gone
        except Exception:
            # Nothing foreseen gets here; if something does, it ends this connection, not the server.
            self.dropped["internal_error"] += 1
            throttled.error("turn connection failed", transport=transport, exc_info=True)
        finally:
            self._streams -= 1
            if not handed:  # a handed connection lives on in a media worker: closing our socket leaves it open
                self.connection_ended(key)  # a TCP allocation lives as long as its connection (RFC 8656 §7.4)
            outbox_send.close()
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await trio.aclose_forcefully(stream)

    async def _read_stream(self, stream, client: Client, written: "_Written") -> bool:
        """Serve what ``client`` sends; True when its connection was handed on, False when it is over."""
        framer = StreamFramer()
        try:
            while True:
                idle = float("inf") if self.has_allocation(client.key) else STREAM_IDLE
                with trio.move_on_after(idle) as waited:
                    data = await stream.receive_some(MAX_DATAGRAM)
                if waited.cancelled_caught or not data:
                    return False
                try:
                    frames = framer.feed(data)
                except Malformed:
                    self.dropped["malformed_stream"] += 1
                    return False
                for index, frame in enumerate(frames):
                    self.receive(frame, client)
                    if client.detach is not None:  # the rest is the new owner's to read
                        rest, tail = frames[index + 1:], framer.take()
                        if await self._detach(stream, client, written, b"".join(rest) + tail):
                            return True
                        framer.feed(tail)  # not taken: go on here (a part of one frame, never a whole)
                        for later in rest:
                            self.receive(later, client)
                        break
        except BROKEN:
            self.dropped["connection_broken"] += 1  # reset, or TLS ended without close_notify
        return False

    async def _detach(self, stream, client: Client, written: "_Written", leftover: bytes) -> bool:
        """Hand ``client``'s connection to ``client.detach`` once what was queued for it is written."""
        detach, client.detach = client.detach, None
        assert detach is not None
        with trio.move_on_after(CLOSE_TIMEOUT):
            while written.done < written.queued:
                await trio.sleep(0.001)
        if written.done < written.queued:
            return False  # the client does not read: keep it here
        return await detach(stream.socket.fileno(), leftover)

    async def _write_stream(self, stream, outbox, scope: trio.CancelScope, written: "_Written") -> None:
        try:
            async with outbox:
                async for payload in outbox:
                    await stream.send_all(payload)
                    written.done += 1
        except BROKEN:
            scope.cancel()  # the client cannot be written to: the connection is over


@dataclass
class _Written:
    """Frames queued for a stream, and how many of them are written."""

    queued: int = 0
    done: int = 0


SO_ATTACH_REUSEPORT_CBPF = 51  # Linux; the socket module does not name it
_RETURN_ZERO = struct.pack("HBBI", 0x06, 0, 0, 0)  # classic BPF: "ret #0"


def keep_unconnected_datagrams(sock: socket.socket) -> None:
    """Have every datagram that no connected socket of ``sock``'s SO_REUSEPORT group takes go
    to ``sock`` (the group's first socket), never to another unconnected socket bound to the
    same address: neither a handoff socket between its bind and its connect, nor another
    process of the same user. Best effort: without it (not Linux) the kernel spreads them."""
    program = ctypes.create_string_buffer(_RETURN_ZERO)
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, struct.pack("HP", 1, ctypes.addressof(program)))
    except OSError as error:
        log.warning("turn: UDP datagrams are not steered to the listener", error=str(error))


def send_datagram(sock: socket.socket, payload: bytes, to: tuple[str, int], dropped: Counter, reason: str) -> None:
    """Send without waiting on a non-blocking UDP socket; a full socket or an error is counted, not raised."""
    try:
        sock.sendto(payload, to)
    except BlockingIOError:
        dropped["socket_full"] += 1
    except OSError:
        dropped[reason] += 1


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def address_of(address) -> tuple[str, int]:
    """``(ip, port)`` of a socket address, the IP in its normal spelling and without a scope."""
    return str(ipaddress.ip_address(address[0].split("%", 1)[0])), int(address[1])


def text(address: tuple[str, int]) -> str:
    return f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"
