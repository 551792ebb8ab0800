"""The data plane's interface: what a media worker asks of its packet path, in ids and plain data.

The packet path of one room (receive → publisher → layer choice →
subscriber → send) sits behind :class:`DataPlane`. Its callers (the
aiortc adapter, :mod:`.forwarding`; the connections, :mod:`.rtc`) keep
ICE, DTLS, RTCP policy and signalling; the plane keeps the forwarding
state: each publisher's layers and keyframe requests, each subscriber's
rewrite state, history and route, the layer choices, the counters. What
crosses is ids (strings the caller picks), numbers, bytes and the frozen
dataclasses below: no aiortc object, so that a compiled plane can take the
place of the Python one (:class:`.forwarder.PythonDataPlane`) and pass the
same contract tests (``tests/test_dataplane_contract.py``). A received
packet comes in either as an object (anything with the fields of
:class:`Packet`; aiortc's ``RtpPacket`` is one) or as the decrypted datagram
itself (``receive_datagram``). A subscriber's route is a :class:`SendRoute`
object for the Python plane; the compiled one
(:class:`.native_plane.NativeDataPlane`) takes the socket, the address and
the SRTP keys instead (:class:`NativeRoute`).

What the plane wants done outside it (ask a publisher for a keyframe, tell
the room a layer changed, ...) comes out as events, queued and drained in
batches: :meth:`DataPlane.drain_events`, and a wakeup (:meth:`DataPlane.on_events`)
called once when the queue stops being empty.

A call naming an id the plane does not have raises :class:`UnknownId`
(a KeyError) and changes nothing.

Imports: nothing of the package but :mod:`.gate`'s ``Reason`` (pure).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Protocol, TypeVar, Union

from .gate import Reason

T = TypeVar("T")

__all__ = ["Bandwidth", "DataPlane", "Event", "FellBehind", "FixedRoute", "KeyframeNeeded",
           "LayerChanged", "MediaCounters", "NativeRoute", "Packet", "PublisherStats", "Reason", "RewriteStart", "SendRoute",
           "SentStats", "StreamParams", "SubscriberStats", "UnknownId", "VoiceChanged"]


class UnknownId(KeyError):
    """A data-plane call named a publisher, subscriber or connection the plane does not have."""

    def __init__(self, what: str, ident: str):
        super().__init__(f"no {what} {ident!r} in the data plane")
        self.what = what
        self.id = ident

    def __str__(self) -> str:
        return str(self.args[0])


def look_up(table: Mapping[str, T], what: str, ident: str) -> T:
    """``table[ident]``; raises UnknownId naming ``what`` ("publisher", ...) when it is not there."""
    try:
        return table[ident]
    except KeyError:
        raise UnknownId(what, ident) from None


# -- what goes in ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamParams:
    """What one subscriber's stream looks like on the wire (from its negotiation)."""

    payload_type: int
    clock_rate: int
    ssrc: int
    rtx_ssrc: int
    rtx_payload_type: int | None = None
    mid: str | None = None
    mid_id: int | None = None             # header extension ids as negotiated (None: not)
    abs_send_time_id: int | None = None
    audio_level_id: int | None = None


@dataclass(frozen=True)
class RewriteStart:
    """Where a subscriber's stream starts: its first sequence number (in the low half: no SRTP
    rollover surprise at the start), timestamp and retransmission sequence number."""

    seq: int
    timestamp: int
    rtx_seq: int

    @classmethod
    def random(cls) -> "RewriteStart":
        seq, rtx, timestamp = int.from_bytes(os.urandom(2), "big"), int.from_bytes(os.urandom(2), "big"), \
            int.from_bytes(os.urandom(4), "big")
        return cls(seq % 32768, timestamp, rtx % 32768)


class SendRoute(Protocol):
    """Where a subscriber's packets go: ``current()`` is (SRTP session with ``protect(bytes)``,
    something with ``sendto(bytes, address)``, address) while its connection can send, else None.
    (The compiled plane will take the keys and the socket's descriptor instead.)"""

    def current(self) -> tuple[Any, Any, Any] | None: ...


class FixedRoute:
    """A route that does not change: an SRTP session, a socket and an address (benches, tests)."""

    def __init__(self, srtp, sock, address):
        self._route = (srtp, sock, address)

    def current(self) -> tuple[Any, Any, Any] | None:
        return self._route


class NativeRoute:
    """Where the compiled plane (:class:`.native_plane.NativeDataPlane`) sends a subscriber's
    packets itself: a socket (kept open by this route; the plane holds its descriptor), the
    peer's address ((host, port), a Unix path, or None for a connected socket), and the SRTP profile (``_native``'s numbers,
    RFC 5764's registry) with the master key and salt of the sending direction, from which the
    plane makes its own protect session."""

    def __init__(self, sock, address, profile: int, key: bytes, salt: bytes):
        self.sock = sock
        self.address = address
        self.profile = profile
        self.key = key
        self.salt = salt


class Packet(Protocol):
    """A received RTP packet, parsed and decrypted, retransmissions unwrapped (aiortc's
    ``RtpPacket`` reads so): the fields the plane reads."""

    ssrc: int
    sequence_number: int
    timestamp: int
    marker: int
    payload: bytes
    extensions: Any  # ``.audio_level``: (voice, level) or None


# -- what comes out -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyframeNeeded:
    """Ask publisher ``publisher_id`` for a keyframe (RTCP PLI) of its stream ``ssrc``."""

    publisher_id: str
    ssrc: int


@dataclass(frozen=True, slots=True)
class LayerChanged:
    """Subscriber ``subscriber_id`` (of ``connection_id``) now gets layer ``rid`` of ``publisher_id``."""

    connection_id: str
    subscriber_id: str
    publisher_id: str
    rid: str
    reason: Reason


@dataclass(frozen=True, slots=True)
class FellBehind:
    """A subscriber's socket was full: its run ended, it starts again at the next keyframe."""

    subscriber_id: str


@dataclass(frozen=True, slots=True)
class Bandwidth:
    """What can be sent to ``connection_id`` changed noticeably: ``bps`` bits/s."""

    connection_id: str
    bps: int


@dataclass(frozen=True, slots=True)
class VoiceChanged:
    """Audio publisher ``publisher_id`` started (``speaking``) or stopped speaking, from the
    audio levels its packets carry (:class:`.vad.VoiceActivity`)."""

    publisher_id: str
    speaking: bool


Event = Union[KeyframeNeeded, LayerChanged, FellBehind, Bandwidth, VoiceChanged]


class MediaCounters:
    """What a room's forwarding did, since its plane started (read by /metrics from another
    thread: plain integers, each written by the media thread only)."""

    def __init__(self):
        self.packets_received = 0     # RTP packets from publishers (retransmissions included)
        self.packets_forwarded = 0    # RTP packets sent to subscribers
        self.bytes_forwarded = 0      # their payload bytes
        self.packets_retransmitted = 0  # sent again over RTX on a subscriber's NACK
        self.packets_dropped = 0      # not sent: a subscriber's socket was full
        self.keyframe_requests = 0    # PLIs sent to publishers

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class SentStats:
    """What one subscriber's stream sent, for its RTCP sender reports."""

    __slots__ = ("packets", "octets", "ntp", "rtp")

    def __init__(self):
        self.packets = 0   # RTP packets sent (not retransmissions)
        self.octets = 0    # their payload bytes
        self.ntp = 0       # NTP time and RTP timestamp of the newest packet
        self.rtp = 0


@dataclass(frozen=True)
class PublisherStats:
    """A publisher as the plane sees it."""

    kind: str
    packets: int                          # packets received
    rids: tuple[str, ...] = ()            # its layers, low to high (none: one stream)
    layer_ssrcs: tuple[int | None, ...] = ()  # each layer's media SSRC, once learnt
    layers_enabled: tuple[bool, ...] = ()
    layers_arriving: tuple[bool, ...] = ()
    unknown_layer_packets: int = 0        # dropped: of an SSRC of no known layer
    unknown_rids: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class SubscriberStats:
    """A subscriber as the plane sees it."""

    kind: str
    publisher_id: str | None   # what it carries (None: nothing)
    layer: str | None          # the layer it is on (simulcast sources only)
    target: str | None         # the highest layer it asked for
    sent: tuple[int, int]      # (packets, payload bytes) sent


# -- the interface --------------------------------------------------------------------------------


class DataPlane(Protocol):
    """One room's packet path. Every method runs on the media thread and returns at once."""

    counters: MediaCounters

    # publishers
    def add_publisher(self, publisher_id: str, kind: str, rids: list[str] | None = None) -> None:
        """A published track: ``kind`` "audio" or "video"; ``rids``: its simulcast layers, low to
        high (video only; None or empty: one stream). Raises ValueError for an id already there."""

    def remove_publisher(self, publisher_id: str) -> None:
        """The track is gone; its subscribers carry nothing until linked again, and the layer
        requests naming it are forgotten."""

    def learn_ssrc(self, publisher_id: str, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        """A packet of ``ssrc`` named its layer (``rid``) or the layer it repairs (``repaired_rid``)."""

    def repaired_ssrc(self, publisher_id: str, rtx_ssrc: int) -> int | None:
        """The media SSRC the retransmissions on ``rtx_ssrc`` repair, when learnt."""

    def receive(self, publisher_id: str, packet: Packet) -> None:
        """One RTP packet of the publisher: forwarded at once to its subscribers."""

    def set_receive_extensions(self, publisher_id: str, audio_level_id: int | None = None, codec: str = "vp8",
                               rtx_payload_type: int | None = None) -> None:
        """How ``receive_datagram`` reads the publisher's datagrams (its negotiation): the audio
        level extension's id, the video codec (for keyframes), the retransmissions' payload type.
        Raises ValueError for a codec the plane cannot find keyframes of."""

    def receive_datagram(self, publisher_id: str, data: bytes, arrival: float | None = None) -> bool:
        """One decrypted RTP datagram of the publisher (a retransmission unwrapped into the packet
        it repairs): forwarded at once. False, and counted (``packets_malformed``), when it cannot
        be read; False too when it repairs nothing known. ``arrival``: when it came."""

    def enable_layer(self, publisher_id: str, rid: str, enabled: bool) -> bool:
        """The publisher turned layer ``rid`` on or off; False when it has no such layer."""

    # connections and subscribers
    def add_connection(self, connection_id: str) -> None:
        """A client's connection, which subscribers belong to (their bandwidth is its)."""

    def remove_connection(self, connection_id: str) -> None:
        """The connection and its subscribers are gone."""

    def add_subscriber(self, subscriber_id: str, connection_id: str, kind: str, route: SendRoute,
                       start: RewriteStart | None = None) -> None:
        """A receive slot of ``connection_id``: one stream for life, whatever it carries."""

    def set_stream(self, subscriber_id: str, params: StreamParams) -> None:
        """The slot's negotiated stream (the first one is kept: its SSRC is for good)."""

    def remove_subscriber(self, subscriber_id: str) -> None:
        """The slot is gone (its connection closes, or the slot is freed for good)."""

    def link(self, subscriber_id: str, publisher_id: str | None) -> None:
        """The slot carries ``publisher_id`` from its next keyframe on (None: nothing)."""

    def set_target_layer(self, connection_id: str, publisher_id: str, rid: str) -> bool:
        """``connection_id`` wants layer ``rid`` of ``publisher_id`` at most (it may ask before it
        exists); False when the publisher has no such layer."""

    # what a subscriber's RTCP says
    def keyframe_wanted(self, subscriber_id: str) -> None:
        """The subscriber sent PLI or FIR."""

    def nack(self, subscriber_id: str, sequence_numbers: Iterable[int]) -> None:
        """The subscriber lost these: sent again over RTX from the history, within a budget. Each is
        taken modulo 2**16 (a NACK's PID near the wrap names its bits past 65535); no more are read
        than a history holds."""

    def remb(self, subscriber_id: str, bps: int) -> None:
        """The subscriber's REMB: what its receiver estimates it can take (bits/s)."""

    def loss(self, subscriber_id: str, fraction: float) -> None:
        """The fraction (0..1) of this subscriber's stream its receiver report says was lost."""

    # what comes out
    def drain_events(self) -> list[Event]:
        """The events queued since the last drain, oldest first."""

    def on_events(self, wakeup: Callable[[], None] | None) -> None:
        """``wakeup()`` is called (on the media thread) when an event is queued into an empty queue."""

    def sent_stats(self, subscriber_id: str) -> SentStats:
        """What the subscriber's stream sent (read by its RTCP sender reports)."""

    def publisher_stats(self, publisher_id: str) -> PublisherStats: ...

    def subscriber_stats(self, subscriber_id: str) -> SubscriberStats: ...
