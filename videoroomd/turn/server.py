"""The built-in TURN server: requests, allocations with one relay socket each, and relaying.

The rules live in the pure modules of this package and the listening
sockets in :mod:`.listeners`; this module answers each request and keeps
the allocations. Relayed data the daemon keeps moves through
:mod:`.relaying`, on relay sockets from :mod:`.relay_ports`. Once a UDP or
TCP client has a permission for a media socket of a media worker, its
transport is handed to that worker (:mod:`.handing`), which relays its data
from then on; its requests come back here to be answered, and its
allocation's state goes there. Requests are handled synchronously
(relay sockets are bound with the standard library, and every send is
non-blocking), so no two requests ever interleave: a quota checked is a
quota kept. What a client may not do is answered with the STUN error that
says so, or dropped and counted in :attr:`TurnService.dropped`.
"""

from __future__ import annotations

import itertools
import secrets
import socket
import ssl
import time
from collections import Counter
from typing import Callable, Hashable

import structlog
import trio
from aioice import stun

from ..config.schema import TurnConfig
from ..media.workers.commands import TurnRelease
from ..media.workers.events import TurnClosed, TurnControl, TurnEvent, TurnLost
from . import channeldata
from .allocations import Allocation, AllocationTable, ByteBudget, QuotaError
from .auth import Authenticator, Refusal
from .credentials import user_of
from .handing import ClientHanding, Relay
from .handoff import WorkerHandoff
from .listeners import Client, Listeners, address_of, family_of, text, throttled
from .messages import (
    DONT_FRAGMENT, EVEN_PORT, UNKNOWN_ATTRIBUTES, Decoded, Malformed, decode, encode, error, looks_like_stun,
    requested_family, response, unknown_attributes_value,
)
from .relay_ports import CAN_SET_DONT_FRAGMENT, RelayPorts
from .relaying import DaemonRelaying

log = structlog.get_logger("videoroomd.turn")

UDP_TRANSPORT = 17           # REQUESTED-TRANSPORT: the only relay transport served
REAP_INTERVAL = 1.0          # seconds between two looks for expired allocations

AllowedPeer = Callable[[str, int], bool]


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
        self.auth = Authenticator(config.realm, self.secret, lambda: self.wall_clock())
        self.table = AllocationTable(
            max_total=config.max_allocations, max_per_user=config.max_allocations_per_user, max_lifetime=config.max_lifetime
        )
        self.budget = ByteBudget(config.bandwidth_per_user * 125)  # kbit/s -> bytes/s
        self.dropped: Counter[str] = Counter()   # reason -> datagrams or messages not relayed nor answered
        self.refused: Counter[int] = Counter()   # STUN error code -> error responses sent
        self.allocations_created = 0
        self.created_by_transport: Counter[str] = Counter()  # udp, tcp, tls -> allocations made over it
        self._relays: dict[Hashable, Relay] = {}
        self._by_id: dict[str, Relay] = {}
        self._ids = itertools.count(1)
        self._handing: ClientHanding | None = None  # with a handoff (set by the daemon), relayed data moves to the workers
        self.relaying = DaemonRelaying(self.table, self.budget, allowed_peer, self._relays, self.dropped)
        self.relayed = self.relaying.relayed  # to_peer, to_client -> datagrams relayed here (not by a worker)
        self.ports = RelayPorts(relay_host, config.relay_ports)
        self._nursery: trio.Nursery | None = None
        self.listeners = Listeners(
            config, ssl_context, receive=self._receive, has_allocation=lambda key: self.table.get(key) is not None,
            connection_ended=self._release, dropped=self.dropped,
        )

    @property
    def handoff(self) -> WorkerHandoff | None:
        """The way to the media workers; None (the default) keeps every client's data in the daemon."""
        return self._handing.handoff if self._handing is not None else None

    @handoff.setter
    def handoff(self, handoff: WorkerHandoff | None) -> None:
        self._handing = None if handoff is None else ClientHanding(
            handoff, is_current=lambda relay: self._relays.get(relay.allocation.key) is relay,
            bandwidth=lambda: self.budget.rate, udp_address=lambda: self.listeners.addresses["udp"],
            start_soon=self._start_soon)

    def _start_soon(self, *args) -> None:
        assert self._nursery is not None
        self._nursery.start_soon(*args)

    @property
    def addresses(self) -> dict[str, tuple[str, int]]:
        """Where clients reach the server, by transport (udp, tcp, tls); empty until open."""
        return self.listeners.addresses

    async def open(self) -> dict[str, tuple[str, int]]:
        """Bind the listening sockets; returns :attr:`addresses`. Raises ListenError saying which could not be."""
        return await self.listeners.open()

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Serve TURN on UDP and TCP (and TLS with a certificate); ``started`` gets :attr:`addresses`.

        Binds first unless :meth:`open` did (raises ListenError then). Runs until cancelled.
        """
        await self.open()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self.listeners.start(nursery)
                nursery.start_soon(self._reap)
                log.info("turn server listening", relay_host=self.relay_host, relay_ports=list(self.config.relay_ports),
                         **{k: f"{a[0]}:{a[1]}" for k, a in self.addresses.items()})
                task_status.started(self.addresses)
        finally:
            for relay in self._relays.values():
                relay.sock.close()  # relays whose reader never ran; closing twice is harmless
            self._relays.clear()
            await self.listeners.aclose()

    async def _reap(self) -> None:
        while True:
            await trio.sleep(REAP_INTERVAL)
            for allocation in self.table.expired(trio.current_time()):
                self._release(allocation.key, removed=True)

    def stats(self) -> dict:
        """What the metrics show: allocations now, created so far (in all and by the transport
        clients reached the server over), drops by reason (here and in the media workers),
        refusals by code, allocations handed to media workers by transport, and packets
        relayed by where (daemon, workers) and direction (to_peer, to_client)."""
        dropped = Counter(self.dropped)
        relayed = {"daemon": dict(self.relayed), "workers": {}}
        if self.handoff is not None:
            counters = self.handoff.counters()
            dropped.update(counters["dropped"])
            relayed["workers"] = dict(counters["relayed"])
        return {"allocations": len(self.table), "created": self.allocations_created,
                "created_by_transport": dict(self.created_by_transport),
                "dropped": dict(dropped), "refused": dict(self.refused),
                "handed_off": dict(self._handing.handed_by_transport) if self._handing is not None else {},
                "handoffs_failed": self._handing.failed if self._handing is not None else 0,
                "relayed": relayed}

    # -- one message from a client ---------------------------------------------------------
    def _receive(self, data: bytes, client: Client) -> None:
        relay = self._relays.get(client.key)
        if relay is not None:
            client = relay.client  # a UDP client's datagrams each come with a Client; answer through its allocation's
        try:
            if channeldata.looks_like_channel_data(data):
                self.relaying.channel_data(data, client)
            elif looks_like_stun(data):
                self._message(data, client)
            else:
                self.dropped["malformed"] += 1
        except Exception:
            # A message nobody foresaw must not end the server for everyone.
            self.dropped["internal_error"] += 1
            throttled.error("turn message failed", transport=client.transport, client=text(client.address), exc_info=True)

    def _message(self, data: bytes, client: Client) -> None:
        try:
            decoded = decode(data)
        except Malformed:
            self.dropped["malformed"] += 1
            return
        message = decoded.message
        if message.message_class == stun.Class.INDICATION:
            if message.message_method == stun.Method.SEND:
                self.relaying.send_indication(decoded, client)
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
        relay = self._relays.get(client.key)
        if relay is not None and relay.worker is not None:
            relay.changed = True  # its worker gets the new state with the answer (see ClientHanding._worker_send)
        handler(decoded, client, username, key)

    def _reply(self, client: Client, message: stun.Message, key: bytes | None = None, extra=()) -> None:
        if message.message_class == stun.Class.ERROR:
            self.refused[message.error_code or 0] += 1
        client.send(encode(message, key, extra))

    def _authenticate(self, message: stun.Message, client: Client) -> tuple[str, bytes] | None:
        """``(username, key)`` of a request signed with valid credentials; else answers it and returns None."""
        checked = self.auth.check(message)
        if isinstance(checked, Refusal):
            if checked.bad_credentials:
                self.dropped["credentials_refused"] += 1
            self._reply(client, checked.message)
            return None
        return checked

    # -- requests ------------------------------------------------------------------------------
    def _allocate(self, decoded: Decoded, client: Client, username: str, key: bytes) -> None:
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
        relay_family = 1 if family_of(self.relay_host) == socket.AF_INET else 2
        if family is not None and family != relay_family:
            self._reply(client, error(message, 440, f"relayed addresses here are IPv{4 if relay_family == 1 else 6}"), key)
            return
        try:
            self.table.check_quota(user_of(username))
        except QuotaError as quota:
            self.dropped["allocation_quota"] += 1
            self._reply(client, error(message, quota.code, quota.reason), key)
            return
        # EVEN-PORT gets an even port; its R bit (keep the next port for a second allocation) is
        # not honoured: nothing here asks for the pair, and no RESERVATION-TOKEN is handed out.
        dont_fragment = DONT_FRAGMENT in decoded.raw
        if dont_fragment and not CAN_SET_DONT_FRAGMENT:
            # §7.2: a server that cannot send with DF set treats DONT-FRAGMENT as unknown.
            self._reply(client, error(message, 420), key, ((UNKNOWN_ATTRIBUTES, unknown_attributes_value((DONT_FRAGMENT,))),))
            return
        sock = self.ports.bind(even=EVEN_PORT in decoded.raw, dont_fragment=dont_fragment)
        if sock is None:
            self._reply(client, error(message, 508, "no relay port is free"), key)
            return
        now = trio.current_time()
        allocation = Allocation(
            client.key, username, address_of(sock.getsockname()), now + self.table.lifetime(message.attributes.get("LIFETIME")),
            transaction_id=message.transaction_id, user=user_of(username),
        )
        if allocation.expires <= now:  # LIFETIME 0 on an Allocate: the default, not an allocation that is gone
            allocation.expires = now + self.table.lifetime(None)
        self.table.add(allocation)
        self.allocations_created += 1
        self.created_by_transport[client.transport] += 1
        relay = Relay(allocation, client, sock, trio.CancelScope(), id=str(next(self._ids)))
        self._relays[client.key] = relay
        self._by_id[relay.id] = relay
        assert self._nursery is not None
        self._nursery.start_soon(self.relaying.relay_from_peers, relay)
        log.debug("turn allocation made", user=username, transport=client.transport, client=text(client.address),
                  relay=text(allocation.relay))
        self._reply(client, self._allocated(message, allocation, client), key)

    def _allocated(self, message: stun.Message, allocation: Allocation, client: Client) -> stun.Message:
        lifetime = max(0, int(allocation.expires - trio.current_time()))
        return response(message, {"XOR-RELAYED-ADDRESS": allocation.relay, "LIFETIME": lifetime,
                                  "XOR-MAPPED-ADDRESS": client.address})

    def _own(self, message: stun.Message, client: Client, username: str, key: bytes) -> Allocation | None:
        """The client's allocation made with the same username; else answers 437 or 441 and returns None."""
        allocation = self.table.get(client.key)
        if allocation is None:
            self._reply(client, error(message, 437, "no allocation on this 5-tuple"), key)
            return None
        if allocation.username != username:
            self._reply(client, error(message, 441, "the allocation was made with other credentials"), key)
            return None
        return allocation

    def _refresh(self, decoded: Decoded, client: Client, username: str, key: bytes) -> None:
        message = decoded.message
        allocation = self._own(message, client, username, key)
        if allocation is None:
            return
        lifetime = self.table.lifetime(message.attributes.get("LIFETIME"))
        if lifetime > 0:
            allocation.expires = trio.current_time() + lifetime
        self._reply(client, response(message, {"LIFETIME": int(lifetime)}), key)
        if lifetime <= 0:
            self._release(client.key)  # after the answer: a handed client's goes out before its socket closes

    def _check_peer(self, message: stun.Message, client: Client, key: bytes, allocation: Allocation,
                    peer: tuple[str, int]) -> bool:
        """Whether relaying to ``peer`` is allowed; else answers 443 or 403 (and counts it) and returns False."""
        if family_of(peer[0]) != family_of(allocation.relay[0]):
            self._reply(client, error(message, 443, "the peer's address family is not the relayed address's"), key)
            return False
        if not self.allowed_peer(peer[0], peer[1]):
            self.dropped["forbidden_peer"] += 1
            self._reply(client, error(message, 403, f"relaying to {text(peer)} is not allowed: only to this server's media"), key)
            return False
        return True

    def _create_permission(self, decoded: Decoded, client: Client, username: str, key: bytes) -> None:
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
        self._permitted(client, decoded.peers)
        self._reply(client, response(message), key)

    def _channel_bind(self, decoded: Decoded, client: Client, username: str, key: bytes) -> None:
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
        self._permitted(client, (peer,))
        self._reply(client, response(message), key)

    def _release(self, key: Hashable, *, removed: bool = False) -> None:
        """End the allocation of ``key`` (if any; ``removed``: the table dropped it already): its port is free again."""
        allocation = None if removed else self.table.remove(key)
        relay = self._relays.pop(key, None)
        if relay is not None:
            relay.scope.cancel()  # its reader closes the socket
            self.ports.release(relay.allocation.relay[1])
            self._by_id.pop(relay.id, None)
            if relay.worker is not None and self.handoff is not None:
                self.handoff.post(relay.worker, TurnRelease(relay.id))  # it closes the client's socket
            allocation = relay.allocation
        if allocation is not None:
            log.debug("turn allocation ended", user=allocation.username, relay=text(allocation.relay))
            if not self.table.has_user(allocation.user):
                self.budget.forget(allocation.user)

    # -- handing clients to the media workers ----------------------------------------------------
    def _permitted(self, client: Client, peers) -> None:
        """``client`` was given permissions for ``peers``: remember them, and hand its transport to
        the media worker they are media sockets of (:class:`~.handing.ClientHanding`)."""
        relay = self._relays.get(client.key)
        if relay is None:
            return
        relay.peers.update(tuple(peer) for peer in peers)
        if self._handing is not None:
            self._handing.permitted(relay, peers)

    def worker_event(self, worker: str, message: TurnEvent) -> None:
        """An event of a media worker about the clients handed to it."""
        if isinstance(message, TurnLost):
            gone = [r for r in self._relays.values() if r.worker == worker]
            if gone:
                log.info("media worker lost: its relayed turn clients end", worker=worker, clients=len(gone))
            for relay in gone:
                relay.worker = None  # nothing to tell it
                self._release(relay.allocation.key)
            return
        relay = self._by_id.get(message.relay)
        if relay is None or worker not in (relay.worker, relay.target):
            return
        if isinstance(message, TurnControl):
            try:
                data = bytes.fromhex(message.data)
            except ValueError:
                self.dropped["malformed"] += 1
                return
            self._receive(data, relay.client)
        elif isinstance(message, TurnClosed):
            relay.worker = None
            self._release(relay.allocation.key)
