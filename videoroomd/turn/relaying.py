"""The relayed data of the clients the daemon keeps: to their peers through the relay sockets, and back (trio).

A client the daemon keeps (over TLS, or one no media worker took) has its
ChannelData and Send indications relayed here, and what arrives on its
relay socket goes back to it; the rules are :mod:`.relay_rules`'s, the same
a media worker applies to the clients handed to it.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable, Hashable, Mapping

import trio

from .allocations import Allocation, AllocationTable, ByteBudget
from .handing import Relay
from .listeners import Client, address_of, send_datagram, text, throttled
from .messages import Decoded
from .relay_rules import Dropped, from_channel_data, from_send_indication, refusal, to_client

MAX_DATAGRAM = 65535


class DaemonRelaying:
    """Relays for the allocations of ``table`` whose relay sockets ``relays`` holds, where
    ``reachable(allocation, peer)`` says yes, within ``budget``; drops are counted in ``dropped``."""

    def __init__(self, table: AllocationTable, budget: ByteBudget,
                 reachable: Callable[[Allocation, tuple[str, int]], bool],
                 relays: Mapping[Hashable, Relay], dropped: Counter):
        self.table = table
        self.budget = budget
        self.reachable = reachable
        self._relays = relays
        self.dropped = dropped
        self.relayed: Counter[str] = Counter()  # to_peer, to_client -> datagrams relayed here (not by a worker)

    def send_indication(self, decoded: Decoded, client: Client) -> None:
        allocation = self.table.get(client.key)
        if allocation is None:
            self.dropped["no_allocation"] += 1
            return
        try:
            peer, payload = from_send_indication(decoded)
        except Dropped as drop:
            self.dropped[drop.reason] += 1
            return
        self._to_peer(allocation, peer, payload)

    def channel_data(self, data: bytes, client: Client) -> None:
        allocation = self.table.get(client.key)
        if allocation is None:
            self.dropped["no_allocation"] += 1
            return
        try:
            peer, payload = from_channel_data(allocation, data, trio.current_time())
        except Dropped as drop:
            self.dropped[drop.reason] += 1
            return
        self._to_peer(allocation, peer, payload)

    def _to_peer(self, allocation: Allocation, peer: tuple[str, int], payload: bytes) -> None:
        refused = refusal(allocation, peer, len(payload), trio.current_time(),
                          reachable=lambda peer: self.reachable(allocation, peer), budget=self.budget)
        if refused is not None:
            self.dropped[refused] += 1
            return
        relay = self._relays.get(allocation.key)
        if relay is not None:
            self.relayed["to_peer"] += 1
            send_datagram(relay.sock, payload, peer, self.dropped, "peer_unreachable")

    async def relay_from_peers(self, relay: Relay) -> None:
        """Datagrams arriving on a relay socket, to its client; ends when the allocation does."""
        allocation, client = relay.allocation, relay.client
        sock = trio.socket.from_stdlib_socket(relay.sock)
        try:
            with relay.scope:
                await self._relay_loop(sock, allocation, client)
        finally:
            sock.close()  # here, not in _release: trio must know before a socket it waits on closes

    async def _relay_loop(self, sock, allocation: Allocation, client: Client) -> None:
        while True:
            try:
                payload, peer = await sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                continue  # an ICMP error from an earlier send: the socket itself is fine
            try:
                self._from_peer(allocation, client, address_of(peer), payload)
            except Exception:
                self.dropped["internal_error"] += 1
                throttled.error("turn relay failed", relay=text(allocation.relay), exc_info=True)

    def _from_peer(self, allocation: Allocation, client: Client, peer: tuple[str, int], payload: bytes) -> None:
        now = trio.current_time()
        refused = refusal(allocation, peer, len(payload), now,
                          reachable=lambda peer: self.reachable(allocation, peer), budget=self.budget)
        if refused is not None:
            self.dropped[refused] += 1
            return
        self.relayed["to_client"] += 1
        client.send(to_client(allocation, peer, payload, now, stream=client.stream))
