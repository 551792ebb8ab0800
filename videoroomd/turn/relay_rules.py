"""The rules of relaying one datagram, shared by the daemon's TURN server and a media worker's relay (pure code).

Whichever process holds a client's transport applies the same rules
(RFC 8656 §§9-12): data from the client reaches a peer through a bound
channel or a Send indication naming one peer; data between the client and a
peer passes only with a live permission for the peer's IP, to a peer the
holder may reach (the daemon's media sockets), within the user's byte
budget; data from a peer reaches the client as ChannelData when a channel is
bound to it, else as a Data indication. An allocation's state (expiry,
permissions, channels) crosses from the daemon to the worker as seconds
left, written by :func:`state_of` and read by :func:`apply_state`.

A datagram that may not pass raises or returns the name of the counter it
is dropped under. Imports :mod:`.allocations`, :mod:`.channeldata` and
:mod:`.messages` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from aioice import stun

from . import channeldata
from .allocations import Address, Allocation, ByteBudget
from .messages import Decoded, Malformed


class Dropped(Exception):
    """A datagram not relayed; ``reason`` names the counter it is dropped under."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def from_channel_data(allocation: Allocation, data: bytes, now: float) -> tuple[Address, bytes]:
    """``(peer, payload)`` of a client's ChannelData; raises Dropped (malformed, unbound_channel)."""
    try:
        channel, payload = channeldata.parse(data)
    except Malformed:
        raise Dropped("malformed") from None
    peer = allocation.peer_of(channel, now)
    if peer is None:
        raise Dropped("unbound_channel")
    return peer, payload


def from_send_indication(decoded: Decoded) -> tuple[Address, bytes]:
    """``(peer, payload)`` of a client's Send indication: one XOR-PEER-ADDRESS and DATA; raises Dropped (malformed)."""
    payload = decoded.message.attributes.get("DATA")
    if len(decoded.peers) != 1 or payload is None:
        raise Dropped("malformed")
    return decoded.peers[0], payload


def refusal(allocation: Allocation, peer: Address, size: int, now: float, *,
            reachable: Callable[[Address], bool], budget: ByteBudget) -> str | None:
    """Why ``size`` bytes may not pass between the allocation's client and ``peer`` now, or None (they may).

    Checked on every datagram, each way, not only when the permission was
    made: a permission is for an IP address, and only the holder's media
    sockets on it (``reachable``) may be reached. Passing spends the user's
    budget.
    """
    if not allocation.permitted(peer[0], now):
        return "no_permission"
    if not reachable(peer):
        return "forbidden_peer"
    if not budget.spend(allocation.user, size, now):
        return "bandwidth"
    return None


def to_client(allocation: Allocation, peer: Address, payload: bytes, now: float, *, stream: bool) -> bytes:
    """What the client gets for ``payload`` from ``peer``: ChannelData on a bound channel (padded on
    a stream, §12.5), else a Data indication."""
    channel = allocation.channel_for(peer, now)
    if channel is not None:
        return channeldata.build(channel, payload, pad=stream)
    return bytes(stun.Message(stun.Method.DATA, stun.Class.INDICATION,
                              attributes={"XOR-PEER-ADDRESS": peer, "DATA": payload}))


@dataclass(frozen=True)
class TurnState:
    """A TURN allocation's expiry, permissions and channels, in seconds left: what crosses to a worker."""

    expires_in: float
    permissions: dict[str, float]                     # peer ip -> seconds left
    channels: dict[str, tuple[str, int, float]]       # channel number -> (peer ip, port, seconds left)


def state_of(allocation: Allocation, now: float) -> TurnState:
    """The allocation's expiry, live permissions and channels, in seconds left."""
    return TurnState(allocation.expires - now,
                     {ip: until - now for ip, until in allocation.permissions.items() if until > now},
                     {str(channel): (peer[0], peer[1], until - now)
                      for channel, (peer, until) in allocation.channels.items() if until > now})


def apply_state(allocation: Allocation, state: TurnState, now: float) -> None:
    """Set ``allocation``'s expiry, permissions and channels from ``state`` (:func:`state_of`'s, seconds left)."""
    allocation.expires = now + state.expires_in
    allocation.permissions = {ip: now + left for ip, left in state.permissions.items()}
    allocation.channels = {}
    allocation.channel_of = {}
    for channel, (ip, port, left) in state.channels.items():
        peer = (ip, port)
        allocation.channels[int(channel)] = (peer, now + float(left))
        allocation.channel_of[peer] = int(channel)
