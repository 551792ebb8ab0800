"""The TURN data path of the allocations handed to this media worker (asyncio; runs in the worker).

The daemon's TURN server authenticates a client, makes its allocation and,
once the client asks for a permission to a media socket of this worker,
hands the client's transport here: for UDP a socket bound to the TURN
listening address and connected to the client (the kernel then gives this
socket every datagram of that 5-tuple), for TCP the accepted connection
itself. From then on the relayed data never leaves this process:

* ChannelData and Send indications from the client are checked against the
  allocation's permissions and channels (the rules of
  :mod:`videoroomd.turn.relay_rules`, which the daemon's server applies too,
  on state sent by the daemon) and handed
  to the aioice protocol of the media socket they are for, as if they had
  come from the allocation's relayed address;
* what that media socket sends to the relayed address is wrapped
  (ChannelData, or a Data indication) and written to the client.

Relaying reaches this worker's own media sockets only (never an address
outside the process: it is not an open relay). Every other STUN message
(Refresh, CreatePermission, ChannelBind, a new Allocate) goes back to the
daemon, which answers it and sends the allocation's new state here. The
daemon ends a handed allocation (``release``), and a TCP client that leaves
is reported (``closed``). When this worker dies its sockets go with it: the
daemon releases the allocations it had handed here.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog

from ..token_buckets import TokenBuckets
from . import channeldata
from .allocations import Allocation, ByteBudget
from .framing import StreamFramer
from .messages import Malformed, decode, looks_like_stun
from .relay_rules import Dropped, apply_state, from_channel_data, from_send_indication, refusal, to_client
from ..media.webrtc.compat.ice import DivertingTransport, divert_to, hand_relayed
from ..media.workers.commands import TurnHandoff, TurnSend, TurnState, TurnUpdate
from ..media.workers.events import TurnClosed, TurnControl

log = structlog.get_logger("videoroomd.media.turn")

Address = tuple[str, int]
FindProtocol = Callable[[Address], Any]   # a media socket's aioice protocol by its (ip, port), or None
MAX_STREAM_BUFFER = 1024 * 1024  # bytes waiting for a slow TCP client; more frames are dropped
FD_WAIT = 5.0                    # seconds a handoff command waits for its socket to arrive
# Requests of one handed client passed on to the daemon: a client refreshes and binds a few a
# minute; a flood is dropped here (counted) instead of filling the link to the daemon.
CONTROL_RATE = 20.0              # per second
CONTROL_BURST = 40.0


@dataclass(eq=False)
class HandedClient:
    """One allocation whose client transport this worker holds."""

    id: str
    transport: str          # udp or tcp
    client: Address
    relay: Address
    allocation: Allocation
    sock: socket.socket
    protocols: dict[Address, Any] = field(default_factory=dict)  # media socket -> its aioice protocol
    stream: asyncio.Transport | None = None
    framer: StreamFramer | None = None
    closed: bool = False


class WorkerRelays:
    """Every allocation handed to this worker, and the counters the heartbeat reports."""

    def __init__(self, find_protocol: FindProtocol, send_event: Callable[[TurnControl | TurnClosed], None],
                 clock: Callable[[], float] = time.monotonic):
        self.find_protocol = find_protocol
        self.send_event = send_event
        self.clock = clock
        self.clients: dict[str, HandedClient] = {}
        self.budget = ByteBudget(0)
        self.control_rate = TokenBuckets(CONTROL_RATE, CONTROL_BURST)  # requests passed on, per relay id
        self.handed = 0
        self.relayed: Counter[str] = Counter()   # to_peer, to_client -> packets
        self.dropped: Counter[str] = Counter()   # reason -> datagrams not relayed
        self._fds: dict[str, int] = {}
        self._fd_arrived = asyncio.Event()

    # -- the sockets the daemon passes ------------------------------------------------------
    def fd_received(self, token: str, fd: int) -> None:
        old = self._fds.pop(token, None)
        if old is not None:
            socket.close(old)
        self._fds[token] = fd
        self._fd_arrived.set()
        self._fd_arrived = asyncio.Event()

    async def _take_fd(self, token: str) -> int:
        deadline = self.clock() + FD_WAIT
        while token not in self._fds:
            left = deadline - self.clock()
            if left <= 0:
                raise TimeoutError(f"the socket of handoff {token} did not arrive")
            try:
                await asyncio.wait_for(self._fd_arrived.wait(), left)
            except asyncio.TimeoutError:
                pass
        return self._fds.pop(token)

    # -- commands from the daemon ------------------------------------------------------------
    async def take(self, handoff: TurnHandoff) -> None:
        """Serve the allocation ``handoff`` describes on the socket passed with its token."""
        fd = await self._take_fd(handoff.token)
        message = handoff.allocation
        relay_id = message.relay
        transport = message.transport
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        sock = socket.socket(fileno=fd)
        try:
            if sock.type != kind:
                raise ValueError(f"the socket passed for a {transport} client is not one")
            if relay_id in self.clients:
                raise ValueError(f"allocation {relay_id} is here already")
            sock.setblocking(False)
            self.budget.rate = message.bandwidth
            allocation = Allocation(relay_id, message.user, message.relay_address, 0.0)
            apply_state(allocation, message.state, self.clock())
            handed = HandedClient(relay_id, transport, message.client, allocation.relay, allocation, sock)
            self.clients[relay_id] = handed
            loop = asyncio.get_running_loop()
            if transport == "udp":
                loop.add_reader(sock.fileno(), self._readable, handed)
            else:
                handed.framer = StreamFramer()
                handed.stream, _ = await loop.connect_accepted_socket(lambda: _Stream(self, handed), sock=sock)
                leftover = bytes.fromhex(message.leftover)
                if leftover:
                    self._stream_data(handed, leftover)
            for peer in message.peers:
                self._route(handed, peer)
        except BaseException:
            self.clients.pop(relay_id, None)
            sock.close()
            raise
        self.handed += 1
        log.debug("turn allocation handed here", transport=transport, relay=f"{allocation.relay[0]}:{allocation.relay[1]}")

    def update(self, message: TurnUpdate) -> None:
        handed = self.clients.get(message.relay)
        if handed is None:
            return
        apply_state(handed.allocation, message.state, self.clock())
        for peer in message.peers:
            self._route(handed, peer)

    def send(self, message: TurnSend) -> None:
        """Write bytes the daemon answered with to a handed TCP client."""
        handed = self.clients.get(message.relay)
        if handed is not None:
            self._to_client(handed, bytes.fromhex(message.data))

    def release(self, relay_id: str) -> None:
        handed = self.clients.pop(relay_id, None)
        if handed is None:
            return
        handed.closed = True
        self.control_rate.forget(relay_id)
        for protocol in handed.protocols.values():
            transport = getattr(protocol, "transport", None)
            if isinstance(transport, DivertingTransport):
                transport.routes.pop(handed.relay, None)
        if handed.stream is not None:
            handed.stream.close()  # what was written to it goes out first
        else:
            try:
                asyncio.get_running_loop().remove_reader(handed.sock.fileno())
            except (RuntimeError, ValueError):
                pass
            handed.sock.close()

    def close(self) -> None:
        for relay_id in list(self.clients):
            self.release(relay_id)
        for fd in self._fds.values():
            socket.close(fd)
        self._fds.clear()

    def stats(self) -> dict:
        return {"open": len(self.clients), "handed": self.handed, "relayed": dict(self.relayed), "dropped": dict(self.dropped)}

    # -- from the client ---------------------------------------------------------------------
    def _readable(self, handed: HandedClient) -> None:
        sock = handed.sock
        for _ in range(64):  # a burst is read in one wakeup; the loop gets its turn after
            try:
                data, source = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue  # an ICMP error from an earlier send: the socket is fine
            if (source[0], source[1]) != handed.client:
                self.dropped["stray"] += 1  # came in before the socket was connected
                continue
            self._from_client(handed, data)

    def _stream_data(self, handed: HandedClient, data: bytes) -> None:
        assert handed.framer is not None
        try:
            frames = handed.framer.feed(data)
        except Malformed:
            self.dropped["malformed_stream"] += 1
            self._lost(handed)
            return
        for frame in frames:
            if handed.closed:
                return
            self._from_client(handed, frame)

    def _from_client(self, handed: HandedClient, data: bytes) -> None:
        try:
            if channeldata.looks_like_channel_data(data):
                self._to_peer(handed, *from_channel_data(handed.allocation, data, self.clock()))
            elif looks_like_stun(data):
                if data[0:2] == b"\x00\x16":  # a Send indication: data for a peer
                    try:
                        decoded = decode(data)
                    except Malformed:
                        raise Dropped("malformed") from None
                    self._to_peer(handed, *from_send_indication(decoded))
                elif self._may_pass_on(handed):  # a request: the daemon answers it
                    self.send_event(TurnControl(handed.id, data.hex()))
                else:
                    self.dropped["control_rate"] += 1
            else:
                self.dropped["malformed"] += 1
        except Dropped as drop:
            self.dropped[drop.reason] += 1
        except Exception:
            self.dropped["internal_error"] += 1
            log.exception("relaying a client's message failed", relay=handed.id)

    def _may_pass_on(self, handed: HandedClient) -> bool:
        return self.control_rate.take(handed.id, self.clock())

    def _to_peer(self, handed: HandedClient, peer: Address, payload: bytes) -> None:
        refused = refusal(handed.allocation, peer, len(payload), self.clock(),
                          reachable=lambda peer: self._route(handed, peer) is not None, budget=self.budget)
        if refused is not None:
            self.dropped[refused] += 1
            return
        self.relayed["to_peer"] += 1
        hand_relayed(handed.protocols[peer], payload, handed.relay)

    def _route(self, handed: HandedClient, peer: Address) -> Any:
        """The protocol of this worker's media socket ``peer`` (None if there is none), sending to
        ``handed``'s relayed address through this relay from now on."""
        protocol = handed.protocols.get(peer)
        if protocol is not None and not _closed(protocol):
            return protocol
        handed.protocols.pop(peer, None)
        protocol = self.find_protocol(peer)
        if protocol is None or _closed(protocol):
            return None
        handed.protocols[peer] = protocol
        divert_to(protocol, handed.relay, lambda data, handed=handed, peer=peer: self._from_peer(handed, peer, data))
        return protocol

    # -- to the client -----------------------------------------------------------------------
    def _from_peer(self, handed: HandedClient, peer: Address, payload: bytes) -> None:
        """What media socket ``peer`` sent to the relayed address: to the client, as a TURN server would."""
        if handed.closed:
            return
        now = self.clock()
        # ``peer`` is a media socket of this worker: it reached the relay by being diverted to it.
        refused = refusal(handed.allocation, peer, len(payload), now, reachable=_ours, budget=self.budget)
        if refused is not None:
            self.dropped[refused] += 1
            return
        self.relayed["to_client"] += 1
        self._to_client(handed, to_client(handed.allocation, peer, payload, now, stream=handed.transport != "udp"))

    def _to_client(self, handed: HandedClient, data: bytes) -> None:
        if handed.closed:
            return
        if handed.stream is not None:
            if handed.stream.get_write_buffer_size() > MAX_STREAM_BUFFER:
                self.dropped["client_slow"] += 1
                return
            handed.stream.write(data)
            return
        try:
            handed.sock.send(data)
        except BlockingIOError:
            self.dropped["socket_full"] += 1
        except OSError:
            self.dropped["client_unreachable"] += 1

    def _lost(self, handed: HandedClient) -> None:
        """A TCP client left or broke its stream: its allocation ends (RFC 8656 §7.4)."""
        if handed.closed:
            return
        self.release(handed.id)
        self.send_event(TurnClosed(handed.id))


class _Stream(asyncio.Protocol):
    def __init__(self, relays: WorkerRelays, handed: HandedClient):
        self.relays = relays
        self.handed = handed

    def data_received(self, data: bytes) -> None:
        self.relays._stream_data(self.handed, data)

    def eof_received(self) -> bool:
        self.relays._lost(self.handed)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.relays._lost(self.handed)


def _ours(peer: Address) -> bool:
    return True


def _closed(protocol: Any) -> bool:
    transport = getattr(protocol, "transport", None)
    return transport is None or transport.is_closing()
