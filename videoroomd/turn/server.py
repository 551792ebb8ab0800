"""The built-in TURN server's sockets: UDP, TCP and TLS listeners, and one relay socket per allocation.

The rules live in the pure modules of this package; this module reads
sockets, applies the rules, and writes. Requests are handled synchronously
(relay sockets are bound with the standard library, and every send is
non-blocking), so no two requests ever interleave: a quota checked is a
quota kept. What a client may not do is answered with the STUN error that
says so, or dropped and counted in :attr:`TurnService.dropped`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import random
import secrets
import socket
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable

import structlog
import trio
from aioice import stun

from ..config.schema import TurnConfig
from ..http.server import ListenError
from . import channeldata
from .allocations import Allocation, AllocationTable, ByteBudget, QuotaError
from .credentials import key_for
from .framing import StreamFramer
from .messages import (
    EVEN_PORT, UNKNOWN_ATTRIBUTES, Decoded, Malformed, decode, encode, error, looks_like_stun,
    requested_family, response, unknown_attributes_value,
)

log = structlog.get_logger("videoroomd.turn")

UDP_TRANSPORT = 17           # REQUESTED-TRANSPORT: the only relay transport served
NONCE_LIFETIME = 3600        # seconds a nonce is good for; then 438 and the client retries with a new one
REAP_INTERVAL = 1.0          # seconds between two looks for expired allocations
STREAM_IDLE = 30.0           # seconds a TCP/TLS connection may stay without an allocation
STREAM_QUEUE = 256           # frames waiting for a slow TCP/TLS client; more are dropped
MAX_STREAMS = 1024           # TCP/TLS connections at once; more are closed at once
HANDSHAKE_TIMEOUT = 10.0     # seconds for a TLS handshake
CLOSE_TIMEOUT = 2.0          # seconds to say goodbye on a stream
PORT_ATTEMPTS = 64           # relay ports tried before an Allocate gets 508
MAX_DATAGRAM = 65535

AllowedPeer = Callable[[str, int], bool]
# What a client leaving, resetting, or speaking something else than TLS raises on its stream.
_BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


@dataclass
class _Client:
    """One client 5-tuple, and how to send to it (never blocks; drops when the client is slow)."""

    key: Hashable
    transport: str           # udp, tcp or tls
    address: tuple[str, int]
    send: Callable[[bytes], None]

    @property
    def stream(self) -> bool:
        return self.transport != "udp"


@dataclass
class _Relay:
    allocation: Allocation
    client: _Client
    sock: socket.socket
    scope: trio.CancelScope


class TurnService:
    """A TURN server that relays only where ``allowed_peer(ip, port)`` says yes."""

    def __init__(
        self,
        config: TurnConfig,
        allowed_peer: AllowedPeer,
        *,
        relay_host: str,
        ssl_context: ssl.SSLContext | None = None,
        wall_clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.allowed_peer = allowed_peer
        self.relay_host = relay_host
        self.ssl_context = ssl_context
        self.wall_clock = wall_clock
        # Without a configured secret the credentials handed out live as long as this process.
        self.secret = config.secret or secrets.token_urlsafe(32)
        self.realm = config.realm
        self.table = AllocationTable(
            max_total=config.max_allocations, max_per_user=config.max_allocations_per_user, max_lifetime=config.max_lifetime
        )
        self.budget = ByteBudget(config.bandwidth_per_user * 125)  # kbit/s -> bytes/s
        self.dropped: Counter[str] = Counter()   # reason -> datagrams or messages not relayed nor answered
        self.refused: Counter[int] = Counter()   # STUN error code -> error responses sent
        self.allocations_created = 0
        self.addresses: dict[str, tuple[str, int]] = {}  # transport -> bound address
        self._nonce_key = os.urandom(16)
        self._relays: dict[Hashable, _Relay] = {}
        self._used_ports: set[int] = set()
        self._streams = 0
        self._nursery: trio.Nursery | None = None
        self._sockets: tuple | None = None  # (udp, its standard socket, [(transport, listener)]) once open

    # -- running ---------------------------------------------------------------------------
    async def open(self) -> dict[str, tuple[str, int]]:
        """Bind the listening sockets; returns :attr:`addresses`. Raises ListenError saying which could not be."""
        if self._sockets is not None:
            return self.addresses
        # With port 0, UDP picks the port and TCP must get the same one, which may be taken
        # (by a connection's own ephemeral port): then another UDP port is tried.
        attempts = PORT_ATTEMPTS if self.config.port == 0 else 1
        for attempt in range(attempts):
            try:
                await self._open_once()
                break
            except ListenError:
                if attempt == attempts - 1:
                    raise
        if self.ssl_context is not None and self.config.tls_port is not None:
            udp, raw, listeners = self._sockets
            where = (self.config.tls_host or self.config.host, self.config.tls_port)
            try:
                tls = await trio.open_tcp_listeners(where[1], host=where[0])
            except OSError as problem:
                await self._close_listeners()
                raise ListenError(f"turn.tls_listen: cannot listen on {_text(where)}: {problem.strerror or problem}") from None
            listeners += [("tls", trio.SSLListener(l, self.ssl_context, https_compatible=False)) for l in tls]
            self.addresses["tls"] = _address(tls[0].socket.getsockname())
        return self.addresses

    async def _open_once(self) -> None:
        host, port = self.config.host, self.config.port
        raw = socket.socket(_family(host), socket.SOCK_DGRAM)
        try:
            raw.bind((host, port))
        except OSError as problem:
            raw.close()
            raise ListenError(f"turn.listen: cannot listen on UDP {_text((host, port))}: {problem.strerror or problem}") from None
        raw.setblocking(False)
        udp = trio.socket.from_stdlib_socket(raw)
        port = udp.getsockname()[1]
        try:
            tcp = await trio.open_tcp_listeners(port, host=host)
        except OSError as problem:
            udp.close()
            raise ListenError(f"turn.listen: cannot listen on TCP {_text((host, port))}: {problem.strerror or problem}") from None
        self.addresses = {"udp": _address(udp.getsockname()), "tcp": _address(tcp[0].socket.getsockname())}
        self._sockets = (udp, raw, [("tcp", l) for l in tcp])

    async def _close_listeners(self) -> None:
        if self._sockets is None:
            return
        udp, _, listeners = self._sockets
        self._sockets = None
        udp.close()
        for _, listener in listeners:
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await listener.aclose()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve TURN on UDP and TCP (and TLS with a certificate); ``started`` gets :attr:`addresses`.

        Binds first unless :meth:`open` did (raises ListenError then). Runs until cancelled.
        """
        await self.open()
        assert self._sockets is not None
        udp, raw, listeners = self._sockets
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._serve_udp, udp, raw)
                for transport, listener in listeners:
                    nursery.start_soon(self._accept, transport, listener)
                nursery.start_soon(self._reap)
                log.info("turn server listening", relay_host=self.relay_host, relay_ports=list(self.config.relay_ports),
                         **{k: f"{a[0]}:{a[1]}" for k, a in self.addresses.items()})
                task_status.started(self.addresses)
        finally:
            for relay in self._relays.values():
                relay.sock.close()  # relays whose reader never ran; closing twice is harmless
            self._relays.clear()
            await self._close_listeners()

    async def _reap(self) -> None:
        while True:
            await trio.sleep(REAP_INTERVAL)
            for allocation in self.table.expired(trio.current_time()):
                self._release(allocation.key, removed=True)

    def stats(self) -> dict:
        """What the metrics show: allocations now, created so far, drops by reason, refusals by code."""
        return {"allocations": len(self.table), "created": self.allocations_created,
                "dropped": dict(self.dropped), "refused": dict(self.refused)}

    # -- UDP ---------------------------------------------------------------------------------
    async def _serve_udp(self, udp, raw: socket.socket) -> None:
        while True:
            try:
                data, address = await udp.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue  # an ICMP error reported on the socket: the next datagram is another's
            address = _address(address)

            def send(payload: bytes, address=address) -> None:
                self._sendto(raw, payload, address, "client_unreachable")

            self._receive(data, _Client(("udp", address), "udp", address, send))

    # -- TCP and TLS -----------------------------------------------------------------------
    async def _accept(self, transport: str, listener: trio.abc.Listener) -> None:
        assert self._nursery is not None
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
            self._nursery.start_soon(self._serve_stream, transport, stream)

    async def _serve_stream(self, transport: str, stream) -> None:
        """One TCP/TLS client until it leaves, misframes, or idles without an allocation."""
        self._streams += 1
        key = (transport, object())
        outbox_send, outbox = trio.open_memory_channel(STREAM_QUEUE)
        try:
            if isinstance(stream, trio.SSLStream):
                with trio.move_on_after(HANDSHAKE_TIMEOUT) as handshake:
                    await stream.do_handshake()
                if handshake.cancelled_caught:
                    self.dropped["tls_handshake"] += 1
                    return
                address = _address(stream.transport_stream.socket.getpeername())
            else:
                address = _address(stream.socket.getpeername())

            def send(payload: bytes) -> None:
                try:
                    outbox_send.send_nowait(payload)
                except (trio.WouldBlock, trio.ClosedResourceError):
                    self.dropped["client_slow"] += 1

            client = _Client(key, transport, address, send)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write_stream, stream, outbox, nursery.cancel_scope)
                await self._read_stream(stream, client)
                nursery.cancel_scope.cancel()
        except _BROKEN:
            self.dropped["connection_broken"] += 1  # during the TLS handshake: not TLS, or gone
        except Exception:
            # Nothing foreseen gets here; if something does, it ends this connection, not the server.
            self.dropped["internal_error"] += 1
            log.exception("turn connection failed", transport=transport)
        finally:
            self._streams -= 1
            self._release(key)  # a TCP allocation lives as long as its connection (RFC 8656 §7.4)
            outbox_send.close()
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                await trio.aclose_forcefully(stream)

    async def _read_stream(self, stream, client: _Client) -> None:
        """Frames from a TCP/TLS client until it leaves, misframes, or idles without an allocation."""
        framer = StreamFramer()
        try:
            while True:
                idle = STREAM_IDLE if self.table.get(client.key) is None else float("inf")
                with trio.move_on_after(idle) as waited:
                    data = await stream.receive_some(MAX_DATAGRAM)
                if waited.cancelled_caught or not data:
                    return
                try:
                    frames = framer.feed(data)
                except Malformed:
                    self.dropped["malformed_stream"] += 1
                    return
                for frame in frames:
                    self._receive(frame, client)
        except _BROKEN:
            self.dropped["connection_broken"] += 1  # reset, or TLS ended without close_notify

    async def _write_stream(self, stream, outbox, scope: trio.CancelScope) -> None:
        try:
            async with outbox:
                async for payload in outbox:
                    await stream.send_all(payload)
        except _BROKEN:
            scope.cancel()  # the client cannot be written to: the connection is over

    # -- one message from a client ---------------------------------------------------------
    def _receive(self, data: bytes, client: _Client) -> None:
        try:
            if channeldata.looks_like_channel_data(data):
                self._channel_data(data, client)
            elif looks_like_stun(data):
                self._message(data, client)
            else:
                self.dropped["malformed"] += 1
        except Exception:
            # A message nobody foresaw must not end the server for everyone.
            self.dropped["internal_error"] += 1
            log.exception("turn message failed", transport=client.transport, client=f"{client.address[0]}:{client.address[1]}")

    def _message(self, data: bytes, client: _Client) -> None:
        try:
            decoded = decode(data)
        except Malformed:
            self.dropped["malformed"] += 1
            return
        message = decoded.message
        if message.message_class == stun.Class.INDICATION:
            if message.message_method == stun.Method.SEND:
                self._send_indication(decoded, client)
            else:
                self.dropped["unexpected_indication"] += 1
            return
        if message.message_class != stun.Class.REQUEST:
            self.dropped["unexpected_response"] += 1
            return
        if message.message_method == stun.Method.BINDING:
            self._reply(client, response(message, {"XOR-MAPPED-ADDRESS": client.address}))
            return
        handler = {
            stun.Method.ALLOCATE: self._allocate,
            stun.Method.REFRESH: self._refresh,
            stun.Method.CREATE_PERMISSION: self._create_permission,
            stun.Method.CHANNEL_BIND: self._channel_bind,
        }.get(message.message_method)
        if handler is None:
            self._reply(client, error(message, 400, "this method is not served here"))
            return
        auth = self._authenticate(message, client)
        if auth is None:
            return
        username, key = auth
        if decoded.unknown:
            self._reply(client, error(message, 420), key, ((UNKNOWN_ATTRIBUTES, unknown_attributes_value(decoded.unknown)),))
            return
        handler(decoded, client, username, key)

    def _reply(self, client: _Client, message: stun.Message, key: bytes | None = None, extra=()) -> None:
        if message.message_class == stun.Class.ERROR:
            self.refused[message.error_code or 0] += 1
        client.send(encode(message, key, extra))

    # -- authentication (long-term credentials, RFC 8489 §9.2) -------------------------------
    def _nonce(self) -> bytes:
        stamp = f"{int(self.wall_clock()):x}"
        tag = hmac.new(self._nonce_key, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return f"{stamp}-{tag}".encode()

    def _nonce_valid(self, nonce: bytes) -> bool:
        try:
            stamp, tag = nonce.decode("ascii").split("-", 1)
            issued = int(stamp, 16)
        except (UnicodeDecodeError, ValueError):
            return False
        expected = hmac.new(self._nonce_key, stamp.encode(), hashlib.sha256).hexdigest()[:16]
        return hmac.compare_digest(tag, expected) and 0 <= self.wall_clock() - issued < NONCE_LIFETIME

    def _challenge(self, message: stun.Message, code: int, reason: str) -> stun.Message:
        return error(message, code, reason, {"REALM": self.realm, "NONCE": self._nonce()})

    def _authenticate(self, message: stun.Message, client: _Client) -> tuple[str, bytes] | None:
        """``(username, key)`` of a request signed with valid credentials; else answers it and returns None."""
        attributes = message.attributes
        if "MESSAGE-INTEGRITY" not in attributes:
            self._reply(client, self._challenge(message, 401, "credentials needed"))
            return None
        username, realm, nonce = attributes.get("USERNAME"), attributes.get("REALM"), attributes.get("NONCE")
        if username is None or realm is None or nonce is None:
            self._reply(client, error(message, 400, "MESSAGE-INTEGRITY needs USERNAME, REALM and NONCE"))
            return None
        if not self._nonce_valid(nonce):
            self._reply(client, self._challenge(message, 438, "stale nonce: use the new one"))
            return None
        key = key_for(username, realm, self.secret, self.wall_clock()) if realm == self.realm else None
        if key is None:
            self.dropped["credentials_refused"] += 1
            self._reply(client, self._challenge(message, 401, "unknown, forged or expired credentials"))
            return None
        if not message.check_message_integrity(key):
            self.dropped["credentials_refused"] += 1
            self._reply(client, self._challenge(message, 401, "MESSAGE-INTEGRITY does not match"))
            return None
        return username, key

    # -- requests ------------------------------------------------------------------------------
    def _allocate(self, decoded: Decoded, client: _Client, username: str, key: bytes) -> None:
        message = decoded.message
        existing = self.table.get(client.key)
        if existing is not None:
            if existing.transaction_id == message.transaction_id and existing.username == username:
                self._reply(client, self._allocated(message, existing, client), key)  # a retransmission
            else:
                self._reply(client, error(message, 437, "this 5-tuple has an allocation already"), key)
            return
        transport = message.attributes.get("REQUESTED-TRANSPORT")
        if transport is None:
            self._reply(client, error(message, 400, "REQUESTED-TRANSPORT is missing"), key)
            return
        if transport >> 24 != UDP_TRANSPORT:
            self._reply(client, error(message, 442, "only UDP relaying is served"), key)
            return
        try:
            family = requested_family(decoded.raw)
        except Malformed:
            self._reply(client, error(message, 400, "REQUESTED-ADDRESS-FAMILY is malformed"), key)
            return
        relay_family = 1 if _family(self.relay_host) == socket.AF_INET else 2
        if family is not None and family != relay_family:
            self._reply(client, error(message, 440, f"relayed addresses here are IPv{4 if relay_family == 1 else 6}"), key)
            return
        try:
            self.table.check_quota(username)
        except QuotaError as quota:
            self.dropped["allocation_quota"] += 1
            self._reply(client, error(message, quota.code, quota.reason), key)
            return
        # EVEN-PORT gets an even port; its R bit (keep the next port for a second allocation) is
        # not honoured: nothing here asks for the pair, and no RESERVATION-TOKEN is handed out.
        sock = self._bind_relay(even=EVEN_PORT in decoded.raw)
        if sock is None:
            self._reply(client, error(message, 508, "no relay port is free"), key)
            return
        now = trio.current_time()
        allocation = Allocation(
            client.key, username, _address(sock.getsockname()), now + self.table.lifetime(message.attributes.get("LIFETIME")),
            transaction_id=message.transaction_id,
        )
        if allocation.expires <= now:  # LIFETIME 0 on an Allocate: the default, not an allocation that is gone
            allocation.expires = now + self.table.lifetime(None)
        self.table.add(allocation)
        self.allocations_created += 1
        relay = _Relay(allocation, client, sock, trio.CancelScope())
        self._relays[client.key] = relay
        assert self._nursery is not None
        self._nursery.start_soon(self._relay_from_peers, relay)
        log.debug("turn allocation made", user=username, transport=client.transport, client=_text(client.address),
                  relay=_text(allocation.relay))
        self._reply(client, self._allocated(message, allocation, client), key)

    def _allocated(self, message: stun.Message, allocation: Allocation, client: _Client) -> stun.Message:
        lifetime = max(0, int(allocation.expires - trio.current_time()))
        return response(message, {"XOR-RELAYED-ADDRESS": allocation.relay, "LIFETIME": lifetime,
                                  "XOR-MAPPED-ADDRESS": client.address})

    def _bind_relay(self, *, even: bool = False) -> socket.socket | None:
        first, last = self.config.relay_ports
        span = last - first + 1
        start = random.randrange(span)
        for attempt in range(min(span, PORT_ATTEMPTS)):
            port = first + (start + attempt) % span
            if port in self._used_ports or (even and port % 2):
                continue
            sock = socket.socket(_family(self.relay_host), socket.SOCK_DGRAM)
            try:
                sock.bind((self.relay_host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            self._used_ports.add(port)
            return sock
        return None

    def _own(self, message: stun.Message, client: _Client, username: str, key: bytes) -> Allocation | None:
        """The client's allocation made with the same username; else answers 437 or 441 and returns None."""
        allocation = self.table.get(client.key)
        if allocation is None:
            self._reply(client, error(message, 437, "no allocation on this 5-tuple"), key)
            return None
        if allocation.username != username:
            self._reply(client, error(message, 441, "the allocation was made with other credentials"), key)
            return None
        return allocation

    def _refresh(self, decoded: Decoded, client: _Client, username: str, key: bytes) -> None:
        message = decoded.message
        allocation = self._own(message, client, username, key)
        if allocation is None:
            return
        lifetime = self.table.lifetime(message.attributes.get("LIFETIME"))
        if lifetime <= 0:
            self._release(client.key)
        else:
            allocation.expires = trio.current_time() + lifetime
        self._reply(client, response(message, {"LIFETIME": int(lifetime)}), key)

    def _check_peer(self, message: stun.Message, client: _Client, key: bytes, allocation: Allocation,
                    peer: tuple[str, int]) -> bool:
        """Whether relaying to ``peer`` is allowed; else answers 443 or 403 (and counts it) and returns False."""
        if _family(peer[0]) != _family(allocation.relay[0]):
            self._reply(client, error(message, 443, "the peer's address family is not the relayed address's"), key)
            return False
        if not self.allowed_peer(peer[0], peer[1]):
            self.dropped["forbidden_peer"] += 1
            self._reply(client, error(message, 403, f"relaying to {_text(peer)} is not allowed: only to this server's media"), key)
            return False
        return True

    def _create_permission(self, decoded: Decoded, client: _Client, username: str, key: bytes) -> None:
        message = decoded.message
        allocation = self._own(message, client, username, key)
        if allocation is None:
            return
        if not decoded.peers:
            self._reply(client, error(message, 400, "XOR-PEER-ADDRESS is missing"), key)
            return
        # All or none (RFC 8656 §9.2): every address is checked before any is installed.
        if not all(self._check_peer(message, client, key, allocation, peer) for peer in decoded.peers):
            return
        now = trio.current_time()
        if not all(allocation.permit(peer[0], now) for peer in decoded.peers):
            self._reply(client, error(message, 508, "too many permissions on this allocation"), key)
            return
        self._reply(client, response(message), key)

    def _channel_bind(self, decoded: Decoded, client: _Client, username: str, key: bytes) -> None:
        message = decoded.message
        allocation = self._own(message, client, username, key)
        if allocation is None:
            return
        channel = message.attributes.get("CHANNEL-NUMBER")
        if channel is None or len(decoded.peers) != 1:
            self._reply(client, error(message, 400, "ChannelBind needs CHANNEL-NUMBER and one XOR-PEER-ADDRESS"), key)
            return
        if not channeldata.is_channel_number(channel):
            self._reply(client, error(message, 400, "CHANNEL-NUMBER must be from 0x4000 to 0x7ffe"), key)
            return
        peer = decoded.peers[0]
        if not self._check_peer(message, client, key, allocation, peer):
            return
        problem = allocation.bind(channel, peer, trio.current_time())
        if problem is not None:
            self._reply(client, error(message, 400, problem), key)
            return
        self._reply(client, response(message), key)

    # -- relaying --------------------------------------------------------------------------------
    def _send_indication(self, decoded: Decoded, client: _Client) -> None:
        allocation = self.table.get(client.key)
        data = decoded.message.attributes.get("DATA")
        if allocation is None:
            self.dropped["no_allocation"] += 1
        elif len(decoded.peers) != 1 or data is None:
            self.dropped["malformed"] += 1
        else:
            self._to_peer(allocation, decoded.peers[0], data)

    def _channel_data(self, data: bytes, client: _Client) -> None:
        allocation = self.table.get(client.key)
        if allocation is None:
            self.dropped["no_allocation"] += 1
            return
        try:
            channel, payload = channeldata.parse(data)
        except Malformed:
            self.dropped["malformed"] += 1
            return
        peer = allocation.peer_of(channel, trio.current_time())
        if peer is None:
            self.dropped["unbound_channel"] += 1
            return
        self._to_peer(allocation, peer, payload)

    def _to_peer(self, allocation: Allocation, peer: tuple[str, int], payload: bytes) -> None:
        # Checked on every datagram, not only when the permission was made: a permission is for
        # an IP address, and only the daemon's media ports on it may be reached.
        now = trio.current_time()
        if not allocation.permitted(peer[0], now):
            self.dropped["no_permission"] += 1
        elif not self.allowed_peer(peer[0], peer[1]):
            self.dropped["forbidden_peer"] += 1
        elif not self.budget.spend(allocation.username, len(payload), now):
            self.dropped["bandwidth"] += 1
        else:
            relay = self._relays.get(allocation.key)
            if relay is not None:
                self._sendto(relay.sock, payload, peer, "peer_unreachable")

    async def _relay_from_peers(self, relay: _Relay) -> None:
        """Datagrams arriving on a relay socket, to its client; ends when the allocation does."""
        allocation, client = relay.allocation, relay.client
        sock = trio.socket.from_stdlib_socket(relay.sock)
        try:
            with relay.scope:
                await self._relay_loop(sock, allocation, client)
        finally:
            sock.close()  # here, not in _release: trio must know before a socket it waits on closes

    async def _relay_loop(self, sock, allocation: Allocation, client: _Client) -> None:
        while True:
            try:
                payload, peer = await sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue  # an ICMP error from an earlier send: the socket itself is fine
            try:
                self._from_peer(allocation, client, _address(peer), payload)
            except Exception:
                self.dropped["internal_error"] += 1
                log.exception("turn relay failed", relay=_text(allocation.relay))

    def _from_peer(self, allocation: Allocation, client: _Client, peer: tuple[str, int], payload: bytes) -> None:
        now = trio.current_time()
        if not allocation.permitted(peer[0], now):
            self.dropped["no_permission"] += 1
        elif not self.allowed_peer(peer[0], peer[1]):
            self.dropped["forbidden_peer"] += 1
        elif not self.budget.spend(allocation.username, len(payload), now):
            self.dropped["bandwidth"] += 1
        else:
            channel = allocation.channel_for(peer, now)
            if channel is not None:
                client.send(channeldata.build(channel, payload, pad=client.stream))
            else:
                indication = stun.Message(stun.Method.DATA, stun.Class.INDICATION,
                                          attributes={"XOR-PEER-ADDRESS": peer, "DATA": payload})
                client.send(bytes(indication))

    def _release(self, key: Hashable, *, removed: bool = False) -> None:
        """End the allocation of ``key`` (if any; ``removed``: the table dropped it already): its port is free again."""
        allocation = None if removed else self.table.remove(key)
        relay = self._relays.pop(key, None)
        if relay is not None:
            relay.scope.cancel()  # its reader closes the socket
            self._used_ports.discard(relay.allocation.relay[1])
            allocation = relay.allocation
        if allocation is not None:
            log.debug("turn allocation ended", user=allocation.username, relay=_text(allocation.relay))
            if not self.table.has_user(allocation.username):
                self.budget.forget(allocation.username)

    def _sendto(self, sock: socket.socket, payload: bytes, address: tuple[str, int], reason: str) -> None:
        try:
            sock.sendto(payload, address)
        except BlockingIOError:
            self.dropped["socket_full"] += 1
        except OSError:
            self.dropped[reason] += 1


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _address(address) -> tuple[str, int]:
    return str(ipaddress.ip_address(address[0].split("%", 1)[0])), int(address[1])


def _text(address: tuple[str, int]) -> str:
    return f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"
