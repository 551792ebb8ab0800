"""Handing a relayed client's transport to the media worker it relays to, and keeping that worker in step (trio).

Once a UDP or TCP client has a permission for a media socket of a media
worker, its transport is passed to that worker (:mod:`.handoff` carries it),
which relays its data from then on (:mod:`videoroomd.turn.worker_relay`). What
the server answers meanwhile is held and sent after the worker has the
state the answers give; later answers go through the worker, after the
allocation's new state when a request changed it. A handoff that fails
leaves the client served by the daemon. TLS clients always stay.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import structlog
import trio

from ..media.workers.commands import HandedAllocation, TurnRelease, TurnSend, TurnUpdate
from .allocations import Address, Allocation
from .handoff import HANDOFF_FAILED, WorkerHandoff
from .listeners import Client, family_of, text
from .relay_rules import state_of

log = structlog.get_logger("videoroomd.turn")


@dataclass(eq=False)
class Relay:
    """One allocation's relay socket, its client, and where its transport is handled."""

    allocation: Allocation
    client: Client
    sock: socket.socket
    scope: trio.CancelScope
    id: str = ""
    peers: set = field(default_factory=set)  # media sockets the client asked permissions or channels for
    worker: str | None = None  # the media worker its transport was handed to
    handing: bool = False      # being handed, or tried once and failed: not again
    target: str | None = None  # the worker it is being handed to (its events may come before its answer)
    changed: bool = False      # a request may have changed its state since its worker last got it


class _Held:
    """A client's ``send`` while its transport is being handed: keeps what is sent, in order."""

    def __init__(self) -> None:
        self.held: list[bytes] = []

    def __call__(self, data: bytes) -> None:
        self.held.append(data)


class ClientHanding:
    """Hands the server's relayed clients to media workers through ``handoff``.

    ``is_current(relay)``: whether the relay's allocation still lives;
    ``bandwidth()``: the per-user byte rate the worker enforces;
    ``udp_address()``: the server's UDP listening address; ``start_soon``:
    the server's nursery's, for the UDP handoffs.
    """

    def __init__(self, handoff: WorkerHandoff, *, is_current: Callable[[Relay], bool], bandwidth: Callable[[], float],
                 udp_address: Callable[[], Address], start_soon: Callable[..., Any]):
        self.handoff = handoff
        self.is_current = is_current
        self.bandwidth = bandwidth
        self.udp_address = udp_address
        self.start_soon = start_soon
        self.handed_by_transport: Counter[str] = Counter()  # udp, tcp -> allocations handed to a media worker
        self.failed = 0

    def permitted(self, relay: Relay, peers) -> None:
        """``relay``'s client was given permissions for ``peers``: hand its transport to the media
        worker they are media sockets of, if it is not handed already (UDP and TCP; TLS stays)."""
        client = relay.client
        if relay.worker is not None or relay.handing or client.transport == "tls":
            return
        worker = next((w for w in map(self.handoff.worker_for, peers) if w is not None), None)
        if worker is None:
            return
        relay.handing, relay.target = True, worker
        if client.transport == "udp":
            self.start_soon(self._hand_off_udp, relay, worker)
        else:
            # The listener stops reading the stream after this batch of frames and calls this.
            client.detach = lambda fileno, leftover: self._hand_off_stream(relay, worker, fileno, leftover)

    def _allocation(self, relay: Relay, leftover: bytes = b"") -> HandedAllocation:
        client, relayed = relay.client.address, relay.allocation.relay
        return HandedAllocation(relay.id, relay.client.transport, (client[0], client[1]), (relayed[0], relayed[1]),
                                relay.allocation.user, float(self.bandwidth()),
                                state_of(relay.allocation, trio.current_time()),
                                tuple((peer[0], peer[1]) for peer in relay.peers), leftover.hex())

    def push_state(self, relay: Relay) -> None:
        """Send the worker that holds ``relay`` the allocation's state now."""
        assert relay.worker is not None
        self.handoff.post(relay.worker, TurnUpdate(relay.id, state_of(relay.allocation, trio.current_time()),
                                                   tuple((peer[0], peer[1]) for peer in relay.peers)))

    def _handed(self, relay: Relay, worker: str) -> bool:
        """Record that ``worker`` relays for ``relay`` now; False (and the worker told to let
        go) when the allocation ended while it was being handed."""
        if not self.is_current(relay):
            self.handoff.post(worker, TurnRelease(relay.id))
            return False
        relay.worker = worker
        self.handed_by_transport[relay.client.transport] += 1
        self.push_state(relay)  # what changed while it was on its way
        held = getattr(relay.client.send, "held", ())
        relay.client.send = lambda data: self._worker_send(relay, data)
        for data in held:
            relay.client.send(data)
        log.debug("turn client handed to a media worker", worker=worker, transport=relay.client.transport,
                  client=text(relay.client.address), relay=text(relay.allocation.relay))
        return True

    def _handoff_failed(self, relay: Relay, worker: str, error: BaseException) -> None:
        self.failed += 1
        log.info("a turn client stays in the daemon: its media worker did not take it", worker=worker,
                 error=f"{type(error).__name__}: {error}")

    async def _hand_off_udp(self, relay: Relay, worker: str) -> None:
        """Give ``worker`` a socket on the listening address connected to the client: the kernel
        delivers the client's datagrams to it from then on, no longer to the listener."""
        listen = self.udp_address()
        client = relay.client
        original, held = client.send, _Held()
        client.send = held  # answers made meanwhile go out after the worker has the state they give
        sock = socket.socket(family_of(listen[0]), socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(listen)
            sock.connect(client.address)
            await self.handoff.hand(worker, sock.fileno(), self._allocation(relay))
        except HANDOFF_FAILED as error:
            self._handoff_failed(relay, worker, error)
            client.send = original
            for data in held.held:
                original(data)
            return
        finally:
            sock.close()  # the worker has its own copy; on failure the listener gets the client back
        self._handed(relay, worker)  # (sends what was held)

    async def _hand_off_stream(self, relay: Relay, worker: str, fileno: int, leftover: bytes) -> bool:
        """Give ``worker`` the client's TCP connection (``fileno``, with the ``leftover`` bytes
        read but not yet framed); True once it has it (the caller then lets go of its socket
        without closing the connection), False to go on serving it here."""
        client = relay.client
        original, held = client.send, _Held()
        client.send = held  # answers made meanwhile go where the client ends up
        fd = os.dup(fileno)
        try:
            await self.handoff.hand(worker, fd, self._allocation(relay, leftover))
        except HANDOFF_FAILED as error:
            self._handoff_failed(relay, worker, error)
            client.send = original
            for data in held.held:
                original(data)
            return False
        finally:
            os.close(fd)
        self._handed(relay, worker)  # (sends what was held)
        return True  # even if it ended meanwhile: the worker has the connection and closes it

    def _worker_send(self, relay: Relay, data: bytes) -> None:
        """Send ``data`` to a handed client through its worker, after the allocation's state if a
        request changed it: the client acts on an answer at once, and its worker must know."""
        assert relay.worker is not None
        if relay.changed and self.is_current(relay):
            relay.changed = False
            self.push_state(relay)
        self.handoff.post(relay.worker, TurnSend(relay.id, data.hex()))
