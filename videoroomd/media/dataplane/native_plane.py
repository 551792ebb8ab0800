"""The compiled data plane: the interface of :mod:`.interface` over ``_native.Plane`` (``csrc/plane*.c``).

Per packet nothing of this module runs: :meth:`NativeDataPlane.receive_datagram`
hands the decrypted datagram to the C core, which classifies it, rewrites it
for each linked subscriber, keeps it for NACKs, protects it with the
subscriber's SRTP session and sends it on the route's socket. What is not
per packet stays here, as in the Python plane: the ids (the core works by
index), the connections and their bandwidth estimates (:mod:`.connection`),
each subscriber's layer choice (:class:`.gate.LayerSelector`, run when it
links, when its target or the layers change, and every ``choice_interval``
while its source sends: the core calls back for that), the RID
table of each simulcast publisher (:mod:`.layers`). The core switches a
subscriber to its chosen layer at that layer's keyframe and says so in its
event queue, which this module drains and turns into the interface's events.

Routes are :class:`.interface.NativeRoute` (a socket, an address, SRTP keys),
not the Python plane's ``SendRoute``. A publisher's retransmission datagrams
are unwrapped by the core once ``set_receive_extensions`` named their payload
type (``receive`` takes packets already unwrapped, as aiortc hands them).
Imports only this folder.
"""

from __future__ import annotations

import time
from itertools import islice
from typing import Callable, Iterable

from .connection import Connection
from .gate import LAYER_SILENCE, LayerSelector, Reason
from .interface import (Bandwidth, Event, FellBehind, KeyframeNeeded, LayerChanged, NativeRoute, PublisherStats,
                        RewriteStart, SentStats, StreamParams, SubscriberStats, UnknownId, VoiceChanged,
                        look_up)
from .layers import RidTable
from .native_feedback import ConnectionFeedback, nack_rate
from .native_module import load
from .publisher import CHOICE_INTERVAL
from .rtp_packets import one_byte_element
from .subscriber import HISTORY

MAX_PUBLISHERS = 256      # per plane (one room's worker share): more is a clear ValueError
MAX_SUBSCRIBERS = 1024
REASONS = list(Reason)    # the core carries a reason as its index here
CODECS = {"vp8": 0, "h264": 1}
COUNTER_NAMES = ("packets_received", "packets_forwarded", "bytes_forwarded", "packets_retransmitted",
                 "packets_dropped", "keyframe_requests")


class NativeCounters:
    """The core's counters, read where :class:`.interface.MediaCounters` would be (attributes
    and ``as_dict``); ``packets_malformed`` and ``events_dropped`` besides."""

    def __init__(self, core):
        self._core = core

    def __getattr__(self, name: str) -> int:
        counters = self._core.counters()
        if name in counters:
            return counters[name]
        raise AttributeError(name)

    def as_dict(self) -> dict[str, int]:
        counters = self._core.counters()
        return {name: counters[name] for name in COUNTER_NAMES}


class _Publisher:
    def __init__(self, publisher_id: str, index: int, kind: str, rids: list[str] | None):
        self.publisher_id = publisher_id
        self.index = index
        self.kind = kind
        self.layers = RidTable(rids) if rids else None
        self.enabled = [True] * len(rids or ())


class _Slot:
    """A subscriber as its connection reads it (:class:`.connection.Subscribed`)."""

    def __init__(self, plane: NativeDataPlane, subscriber_id: str, index: int, connection: Connection, kind: str):
        self._core = plane._core
        self.subscriber_id = subscriber_id
        self.index = index
        self.connection = connection
        self.kind = kind
        self.route: NativeRoute | None = None
        self.publisher: _Publisher | None = None
        self.selector: LayerSelector | None = None

    @property
    def feed(self) -> _Publisher | None:
        return self.publisher

    @property
    def sent(self) -> SentStats:
        stats = SentStats()
        _, _, _, stats.packets, stats.octets, stats.ntp, stats.rtp = self._core.subscriber_stats(self.index)
        return stats


class NativeDataPlane:
    """The data plane in C (see :mod:`.interface` for what each call means). Raises
    :class:`.native_module.NativeUnavailable` when the module does not load."""

    def __init__(self, choice_interval: float = CHOICE_INTERVAL, max_publishers: int = MAX_PUBLISHERS,
                 max_subscribers: int = MAX_SUBSCRIBERS):
        native = load()
        self._native = native
        self._core = native.Plane(max_publishers, max_subscribers, min(choice_interval, 1e9))
        self.counters = NativeCounters(self._core)
        self._publishers: dict[str, _Publisher] = {}
        self._publisher_at: dict[int, _Publisher] = {}
        self._connections: dict[str, Connection] = {}
        self._feedback: dict[str, ConnectionFeedback] = {}
        self._slots: dict[str, _Slot] = {}
        self._slot_at: dict[int, _Slot] = {}
        self._targets: dict[str, dict[str, str]] = {}
        self._core.on_choice(self._choices_due)

    @property
    def events_dropped(self) -> int:
        return self._core.counters()["events_dropped"]

    @property
    def packets_malformed(self) -> int:
        """Datagrams :meth:`receive_datagram` could not read (dropped)."""
        return self._core.counters()["packets_malformed"]

    # -- lookups ---------------------------------------------------------------------------

    def _publisher(self, publisher_id: str) -> _Publisher:
        return look_up(self._publishers, "publisher", publisher_id)

    def _slot(self, subscriber_id: str) -> _Slot:
        return look_up(self._slots, "subscriber", subscriber_id)

    def _connection(self, connection_id: str) -> Connection:
        return look_up(self._connections, "connection", connection_id)

    # -- publishers ------------------------------------------------------------------------

    def add_publisher(self, publisher_id: str, kind: str, rids: list[str] | None = None) -> None:
        if publisher_id in self._publishers:
            raise ValueError(f"publisher {publisher_id!r} is already in the data plane")
        if kind not in ("audio", "video"):
            raise ValueError(f"a publisher's kind is audio or video, not {kind!r}")
        rids = list(rids) if rids and kind == "video" else None
        index = self._core.add_publisher(kind == "video", len(rids or ()))
        self._publishers[publisher_id] = self._publisher_at[index] = _Publisher(publisher_id, index, kind, rids)

    def remove_publisher(self, publisher_id: str) -> None:
        publisher = self._publisher(publisher_id)
        self._core.remove_publisher(publisher.index)
        del self._publishers[publisher_id], self._publisher_at[publisher.index]
        for slot in self._slots.values():
            if slot.publisher is publisher:
                slot.publisher, slot.selector = None, None
        for targets in self._targets.values():
            targets.pop(publisher_id, None)

    def set_receive_extensions(self, publisher_id: str, audio_level_id: int | None = None, codec: str = "vp8",
                               rtx_payload_type: int | None = None) -> None:
        """How :meth:`receive_datagram` reads the publisher's datagrams: the id of its audio level
        extension (None: not negotiated), its video codec ("vp8" or "h264", for keyframes), the
        payload type of its retransmissions (unwrapped into the packets they repair)."""
        publisher = self._publisher(publisher_id)
        if codec not in CODECS:
            raise ValueError(f"the native data plane finds keyframes of VP8 and H.264, not {codec!r}")
        self._core.set_publisher(publisher.index, CODECS[codec], audio_level_id or 0,
                                 -1 if rtx_payload_type is None else rtx_payload_type)

    def learn_ssrc(self, publisher_id: str, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        publisher = self._publisher(publisher_id)
        if publisher.layers is not None:
            publisher.layers.learn(ssrc, rid, repaired_rid)
            layers = publisher.layers
            self._core.set_layer_ssrcs(publisher.index, tuple(layers.media_ssrc), tuple(layers.rtx_ssrc))

    def repaired_ssrc(self, publisher_id: str, rtx_ssrc: int) -> int | None:
        layers = self._publisher(publisher_id).layers
        return layers.repaired_ssrc(rtx_ssrc) if layers is not None else None

    def receive_datagram(self, publisher_id: str, data: bytes, arrival: float | None = None) -> bool:
        """One decrypted RTP datagram of the publisher, forwarded at once by the core; False when
        it is malformed (counted and dropped)."""
        try:
            index = self._publishers[publisher_id].index
        except KeyError:
            raise UnknownId("publisher", publisher_id) from None
        return self._core.receive_datagram(index, data, arrival or 0.0)

    def native_target(self, publisher_id: str, ssrc: int) -> tuple[object, int] | None:
        """(the core, the publisher's index) for a Port that is to hand the core the publisher's
        datagrams of ``ssrc`` itself (``_native.Port.route``); None while the publisher is unknown
        or ``ssrc`` is a simulcast publisher's whose layer is not learnt yet."""
        publisher = self._publishers.get(publisher_id)
        if publisher is None or (publisher.layers is not None and ssrc not in publisher.layers.media_ssrc):
            return None
        return self._core, publisher.index

    def receive(self, publisher_id: str, packet) -> None:
        try:
            index = self._publishers[publisher_id].index
        except KeyError:
            raise UnknownId("publisher", publisher_id) from None
        level = packet.extensions.audio_level
        self._core.receive(index, packet.ssrc, packet.sequence_number, packet.timestamp, packet.marker,
                           packet.payload, -1 if level is None else (0x80 if level[0] else 0) | (level[1] & 0x7F))

    def enable_layer(self, publisher_id: str, rid: str, enabled: bool) -> bool:
        publisher = self._publisher(publisher_id)
        layer = self._layer_index(publisher, rid)
        if layer is None:
            return False
        publisher.enabled[layer] = enabled
        self._choose_all(publisher)
        return True

    @staticmethod
    def _layer_index(publisher: _Publisher, rid: str) -> int | None:
        if publisher.layers is None or rid not in publisher.layers.rids:
            return None
        return publisher.layers.rids.index(rid)

    # -- connections and subscribers -------------------------------------------------------

    def add_connection(self, connection_id: str) -> None:
        if connection_id in self._connections:
            raise ValueError(f"connection {connection_id!r} is already in the data plane")
        targets = self._targets.setdefault(connection_id, {})
        connection = self._connections[connection_id] = Connection(connection_id, targets)
        self._feedback[connection_id] = ConnectionFeedback(self._native, self._core, connection, self._tell)

    def remove_connection(self, connection_id: str) -> None:
        connection = self._connection(connection_id)
        for subscriber_id in list(connection.subscribers):
            self.remove_subscriber(subscriber_id)
        del self._connections[connection_id], self._feedback[connection_id]
        self._targets.pop(connection_id, None)

    def feedback(self, connection_id: str) -> ConnectionFeedback:
        """The connection's RTCP about the streams it receives, read in C by the Ports given its
        ``table``; the Port's reader calls ``take`` when the Port says it is due."""
        return look_up(self._feedback, "connection", connection_id)

    def add_subscriber(self, subscriber_id: str, connection_id: str, kind: str, route: NativeRoute | None,
                       start: RewriteStart | None = None) -> None:
        """``route`` None: not connected yet (:meth:`set_route` gives it); nothing is sent until then."""
        connection = self._connection(connection_id)
        if subscriber_id in self._slots:
            raise ValueError(f"subscriber {subscriber_id!r} is already in the data plane")
        start = start or RewriteStart.random()
        index = self._core.add_subscriber(kind == "video", start.seq, start.timestamp, start.rtx_seq)
        slot = _Slot(self, subscriber_id, index, connection, kind)
        self._slots[subscriber_id] = self._slot_at[index] = connection.subscribers[subscriber_id] = slot
        if route is not None:
            try:
                self.set_route(subscriber_id, route)
            except Exception:
                self.remove_subscriber(subscriber_id)
                raise

    def set_route(self, subscriber_id: str, route: NativeRoute) -> None:
        """Where the subscriber's packets go from now on (its connection's socket, address, keys)."""
        slot = self._slot(subscriber_id)
        self._core.set_route(slot.index, route.sock.fileno(), route.address, route.profile, route.key, route.salt)
        slot.route = route  # keeps the socket open while the core writes to its descriptor

    def set_stream(self, subscriber_id: str, params: StreamParams) -> None:
        slot = self._slot(subscriber_id)
        mid = one_byte_element(params.mid_id, params.mid.encode()) if params.mid_id and params.mid else b""
        self._core.set_stream(slot.index, params.payload_type, params.clock_rate, params.ssrc, params.rtx_ssrc,
                              -1 if params.rtx_payload_type is None else params.rtx_payload_type, mid,
                              params.abs_send_time_id or 0, params.audio_level_id or 0)
        self._feedback[slot.connection.connection_id].add(subscriber_id, slot, params.ssrc)

    def remove_subscriber(self, subscriber_id: str) -> None:
        slot = self._slot(subscriber_id)
        self._feedback[slot.connection.connection_id].discard(subscriber_id)
        self._core.remove_subscriber(slot.index)
        del self._slots[subscriber_id], self._slot_at[slot.index]
        slot.connection.subscribers.pop(subscriber_id, None)

    def link(self, subscriber_id: str, publisher_id: str | None) -> None:
        slot = self._slot(subscriber_id)
        publisher = None if publisher_id is None else self._publisher(publisher_id)
        if slot.publisher is publisher:
            return
        self._core.link(slot.index, -1 if publisher is None else publisher.index)
        layered = publisher is not None and publisher.layers is not None
        slot.publisher, slot.selector = publisher, LayerSelector(len(publisher.layers.rids)) if layered else None
        self._feedback[slot.connection.connection_id].rates_changed(subscriber_id)  # (the rate follows the selector)
        if not layered:
            return
        rid = slot.connection.targets.get(publisher.publisher_id)
        layer = None if rid is None else self._layer_index(publisher, rid)
        if layer is not None:
            slot.selector.set_target(layer)
        self._choose(slot, time.monotonic())

    def set_target_layer(self, connection_id: str, publisher_id: str, rid: str) -> bool:
        publisher = self._publisher(publisher_id)
        layer = self._layer_index(publisher, rid)
        if layer is None:
            return False
        self._targets.setdefault(connection_id, {})[publisher_id] = rid
        connection = self._connections.get(connection_id)
        if connection is not None:
            for slot in list(connection.subscribers.values()):
                if slot.publisher is publisher and slot.selector is not None:
                    slot.selector.set_target(layer)
                    self._choose(slot, time.monotonic())
        return True

    # -- layer choices (policy: on calls, events and the core's choice events) --------------

    def _choose(self, slot: _Slot, now: float) -> None:
        """Choose the slot's layer; the core switches at its keyframe and asks for one meanwhile."""
        publisher = slot.publisher
        last, since, rates = self._core.meter(publisher.index)
        usable = [publisher.enabled[i] and now - last[i] <= LAYER_SILENCE for i in range(len(last))]
        connection = slot.connection
        decision = slot.selector.choose(now, usable, list(since), list(rates), connection.layer_budget(),
                                        connection.congested(now))
        layer, reason = decision if decision is not None else (-1, Reason.OTHER)
        self._core.choose(slot.index, layer, REASONS.index(reason))

    def _choices_due(self, publisher_index: int) -> None:
        publisher = self._publisher_at.get(publisher_index)
        if publisher is not None:
            self._choose_all(publisher)

    def _choose_all(self, publisher: _Publisher) -> None:
        now = time.monotonic()
        for slot in list(self._slots.values()):
            if slot.publisher is publisher and slot.selector is not None:
                self._choose(slot, now)

    # -- a subscriber's RTCP ---------------------------------------------------------------

    def keyframe_wanted(self, subscriber_id: str) -> None:
        self._core.ask_keyframe(self._slot(subscriber_id).index, False)

    def nack(self, subscriber_id: str, sequence_numbers: Iterable[int]) -> None:
        slot = self._slot(subscriber_id)
        # No more than a history holds: a NACK naming thousands asks for nothing more.
        self._core.nack(slot.index, [seq & 0xFFFF for seq in islice(sequence_numbers, HISTORY)], nack_rate(slot))

    def remb(self, subscriber_id: str, bps: int) -> None:
        connection = self._slot(subscriber_id).connection
        self._tell(connection.remb_arrived(bps, time.monotonic()))
        self._feedback[connection.connection_id].rates_changed()

    def loss(self, subscriber_id: str, fraction: float) -> None:
        connection = self._slot(subscriber_id).connection
        self._tell(connection.loss_reported(fraction, time.monotonic()))
        self._feedback[connection.connection_id].rates_changed()

    def _tell(self, news: Bandwidth | None) -> None:
        if news is not None:
            self._core.emit(news)  # in order with the core's events

    # -- what comes out --------------------------------------------------------------------

    def drain_events(self) -> list[Event]:
        events = (self._event(item) for item in self._core.drain())
        return [event for event in events if event is not None]

    def _event(self, item: tuple) -> Event | None:
        """The interface's event for one of the core's (None: of an id gone since)."""
        native = self._native
        kind = item[0]
        if kind == native.EV_OBJECT:
            return item[1]
        _, publisher_index, slot_index, value, reason, ssrc = item
        publisher = self._publisher_at.get(publisher_index)
        slot = self._slot_at.get(slot_index)
        if kind == native.EV_KEYFRAME and publisher is not None:
            return KeyframeNeeded(publisher.publisher_id, ssrc)
        if kind == native.EV_VOICE and publisher is not None:
            return VoiceChanged(publisher.publisher_id, bool(value))
        if kind == native.EV_FELL_BEHIND and slot is not None:
            return FellBehind(slot.subscriber_id)
        if kind == native.EV_LAYER and slot is not None and publisher is not None and publisher.layers is not None \
                and 0 <= value < len(publisher.layers.rids):
            return LayerChanged(slot.connection.connection_id, slot.subscriber_id, publisher.publisher_id,
                                publisher.layers.rids[value], REASONS[reason])
        return None

    def on_events(self, wakeup: Callable[[], None] | None) -> None:
        self._core.on_events(wakeup)

    def sent_stats(self, subscriber_id: str) -> SentStats:
        """A snapshot (the Python plane's is live): read it again for each sender report."""
        return self._slot(subscriber_id).sent

    def publisher_stats(self, publisher_id: str) -> PublisherStats:
        publisher = self._publisher(publisher_id)
        packets, unknown, _, _ = self._core.publisher_stats(publisher.index)
        layers = publisher.layers
        if layers is None:
            return PublisherStats(publisher.kind, packets)
        now = time.monotonic()
        last, _, _ = self._core.meter(publisher.index)
        arriving = tuple(publisher.enabled[i] and now - last[i] <= LAYER_SILENCE for i in range(len(last)))
        return PublisherStats(publisher.kind, packets, tuple(layers.rids), tuple(layers.media_ssrc),
                              tuple(publisher.enabled), arriving, unknown, frozenset(layers.unknown_rids))

    def subscriber_stats(self, subscriber_id: str) -> SubscriberStats:
        slot = self._slot(subscriber_id)
        _, layer, _, packets, octets, _, _ = self._core.subscriber_stats(slot.index)
        publisher = slot.publisher
        rid = target = None
        if publisher is not None and publisher.layers is not None and slot.selector is not None:
            rids = publisher.layers.rids
            rid = rids[layer] if 0 <= layer < len(rids) else None
            target = rids[slot.selector.target]
        return SubscriberStats(slot.kind, None if publisher is None else publisher.publisher_id, rid, target,
                               (packets, octets))
