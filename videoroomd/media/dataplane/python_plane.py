"""The Python data plane: one room's publishers, connections and subscribers, by id (:class:`.dataplane.DataPlane`).

It owns the forwarding state and the per-packet path: :meth:`PythonDataPlane.receive`
hands a packet to its publisher's source (:mod:`.publisher`: a plain or a
layered one), which hands it to each linked subscriber's feed
(:mod:`.feeds`), which hands it to the subscriber (:mod:`.subscriber`)
that rewrites and sends it. A :class:`Connection` holds what its
subscribers share: the bandwidth estimate from their REMB and loss, and the
layers its client asked for.

It is the reference implementation of the interface: a compiled plane is
to pass the same contract tests. Nothing here imports aiortc.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from .interface import (Bandwidth, Event, MediaCounters, PublisherStats, RewriteStart, SendRoute, SentStats,
                        StreamParams, SubscriberStats, UnknownId,
                        look_up)
from .connection import Connection
from .publisher import CHOICE_INTERVAL, LayeredSource, PlainSource, Source
from .rtp_read import MalformedPacket, parse, unwrap_rtx
from .subscriber import Subscriber

MAX_EVENTS = 10_000       # events kept undrained at most; more are counted and dropped


class PythonDataPlane:
    """The data plane in Python (see :mod:`.dataplane` for what each call means).

    ``choice_interval``: seconds between two choices of the layer of each subscriber of a
    simulcast source (infinite: only when it links or its target or the layers change).
    """

    def __init__(self, choice_interval: float = CHOICE_INTERVAL):
        self.counters = MediaCounters()
        self.choice_interval = choice_interval
        self.events_dropped = 0
        self.packets_malformed = 0    # datagrams receive_datagram could not read
        # publisher id -> (its audio level extension id, its retransmissions' payload type), for datagrams
        self._receiving: dict[str, tuple[int | None, int | None]] = {}
        self._publishers: dict[str, Source] = {}
        self._connections: dict[str, Connection] = {}
        self._subscribers: dict[str, Subscriber] = {}
        self._targets: dict[str, dict[str, str]] = {}  # connection id -> its targets (also before it exists)
        self._events: list[Event] = []
        self._wakeup: Callable[[], None] | None = None

    # -- lookups ---------------------------------------------------------------------------

    def _publisher(self, publisher_id: str) -> Source:
        return look_up(self._publishers, "publisher", publisher_id)

    def _subscriber(self, subscriber_id: str) -> Subscriber:
        return look_up(self._subscribers, "subscriber", subscriber_id)

    def _connection(self, connection_id: str) -> Connection:
        return look_up(self._connections, "connection", connection_id)

    def _emit(self, event: Event) -> None:
        events = self._events
        if len(events) >= MAX_EVENTS:
            self.events_dropped += 1
            return
        events.append(event)
        if len(events) == 1 and self._wakeup is not None:
            self._wakeup()

    # -- publishers ------------------------------------------------------------------------

    def add_publisher(self, publisher_id: str, kind: str, rids: list[str] | None = None) -> None:
        if publisher_id in self._publishers:
            raise ValueError(f"publisher {publisher_id!r} is already in the data plane")
        if kind not in ("audio", "video"):
            raise ValueError(f"a publisher's kind is audio or video, not {kind!r}")
        if rids and kind == "video":
            self._publishers[publisher_id] = LayeredSource(publisher_id, self.counters, self._emit, list(rids),
                                                           self.choice_interval)
        else:
            self._publishers[publisher_id] = PlainSource(publisher_id, kind, self.counters, self._emit)

    def remove_publisher(self, publisher_id: str) -> None:
        self._publisher(publisher_id).close()
        del self._publishers[publisher_id]
        self._receiving.pop(publisher_id, None)
        for targets in self._targets.values():
            targets.pop(publisher_id, None)

    def learn_ssrc(self, publisher_id: str, ssrc: int, rid: str | None, repaired_rid: str | None) -> None:
        source = self._publisher(publisher_id)
        if source.layered:
            source.layers.learn(ssrc, rid, repaired_rid)

    def repaired_ssrc(self, publisher_id: str, rtx_ssrc: int) -> int | None:
        source = self._publisher(publisher_id)
        return source.layers.repaired_ssrc(rtx_ssrc) if source.layered else None

    def receive(self, publisher_id: str, packet) -> None:
        try:
            source = self._publishers[publisher_id]
        except KeyError:
            raise UnknownId("publisher", publisher_id) from None
        source.receive(packet)

    def set_receive_extensions(self, publisher_id: str, audio_level_id: int | None = None, codec: str = "vp8",
                               rtx_payload_type: int | None = None) -> None:
        """How :meth:`receive_datagram` reads the publisher's datagrams: the id of its audio level
        extension (None: not negotiated), its video codec (this plane knows VP8 only), the payload
        type of its retransmissions (unwrapped into the packets they repair)."""
        self._publisher(publisher_id)
        if codec != "vp8":
            raise ValueError(f"the Python data plane finds keyframes of VP8 only, not {codec!r}")
        self._receiving[publisher_id] = (audio_level_id, rtx_payload_type)

    def receive_datagram(self, publisher_id: str, data: bytes, arrival: float | None = None) -> bool:
        """One decrypted RTP datagram of the publisher, forwarded at once; False when it is
        malformed (counted and dropped). ``arrival``: when it came (kernel time), for later use."""
        try:
            source = self._publishers[publisher_id]
        except KeyError:
            raise UnknownId("publisher", publisher_id) from None
        level_id, rtx_payload_type = self._receiving.get(publisher_id, (None, None))
        try:
            packet = parse(data, level_id)
            if rtx_payload_type is not None and packet.payload_type == rtx_payload_type:
                media = source.layers.repaired_ssrc(packet.ssrc) if source.layered else source.ssrc
                if media is None:
                    return False  # repairs nothing known yet
                unwrap_rtx(packet, media)
        except MalformedPacket:
            self.packets_malformed += 1
            return False
        source.receive(packet)
        return True

    def enable_layer(self, publisher_id: str, rid: str, enabled: bool) -> bool:
        return self._publisher(publisher_id).set_layer_enabled(rid, enabled)

    # -- connections and subscribers -------------------------------------------------------

    def add_connection(self, connection_id: str) -> None:
        if connection_id in self._connections:
            raise ValueError(f"connection {connection_id!r} is already in the data plane")
        targets = self._targets.setdefault(connection_id, {})
        self._connections[connection_id] = Connection(connection_id, targets)

    def remove_connection(self, connection_id: str) -> None:
        connection = self._connection(connection_id)
        for subscriber_id in list(connection.subscribers):
            self.remove_subscriber(subscriber_id)
        del self._connections[connection_id]
        self._targets.pop(connection_id, None)

    def add_subscriber(self, subscriber_id: str, connection_id: str, kind: str, route: SendRoute,
                       start: RewriteStart | None = None) -> None:
        connection = self._connection(connection_id)
        if subscriber_id in self._subscribers:
            raise ValueError(f"subscriber {subscriber_id!r} is already in the data plane")
        subscriber = Subscriber(subscriber_id, connection, kind, route, self.counters, self._emit,
                                start or RewriteStart.random())
        self._subscribers[subscriber_id] = connection.subscribers[subscriber_id] = subscriber

    def set_stream(self, subscriber_id: str, params: StreamParams) -> None:
        self._subscriber(subscriber_id).configure(params)

    def remove_subscriber(self, subscriber_id: str) -> None:
        subscriber = self._subscriber(subscriber_id)
        subscriber.close()
        del self._subscribers[subscriber_id]
        subscriber.connection.subscribers.pop(subscriber_id, None)

    def link(self, subscriber_id: str, publisher_id: str | None) -> None:
        subscriber = self._subscriber(subscriber_id)
        subscriber.link(None if publisher_id is None else self._publisher(publisher_id))

    def set_target_layer(self, connection_id: str, publisher_id: str, rid: str) -> bool:
        source = self._publisher(publisher_id)
        layer = source.layer_index(rid)
        if layer is None:
            return False
        self._targets.setdefault(connection_id, {})[publisher_id] = rid
        connection = self._connections.get(connection_id)
        if connection is not None:
            for subscriber in connection.subscribers.values():
                if subscriber.source is source:
                    subscriber.feed.set_target(layer)
        return True

    # -- a subscriber's RTCP ---------------------------------------------------------------

    def keyframe_wanted(self, subscriber_id: str) -> None:
        self._subscriber(subscriber_id).ask_keyframe(False)

    def nack(self, subscriber_id: str, sequence_numbers: Iterable[int]) -> None:
        self._subscriber(subscriber_id).retransmit(sequence_numbers)

    def remb(self, subscriber_id: str, bps: int) -> None:
        self._tell(self._subscriber(subscriber_id).connection.remb_arrived(bps, time.monotonic()))

    def loss(self, subscriber_id: str, fraction: float) -> None:
        self._tell(self._subscriber(subscriber_id).connection.loss_reported(fraction, time.monotonic()))

    def _tell(self, news: Bandwidth | None) -> None:
        if news is not None:
            self._emit(news)

    # -- what comes out --------------------------------------------------------------------

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def on_events(self, wakeup: Callable[[], None] | None) -> None:
        self._wakeup = wakeup

    def sent_stats(self, subscriber_id: str) -> SentStats:
        return self._subscriber(subscriber_id).sent

    def publisher_stats(self, publisher_id: str) -> PublisherStats:
        source = self._publisher(publisher_id)
        if not source.layered:
            return PublisherStats(source.kind, source.packets)
        meter, layers = source.meter, source.layers
        return PublisherStats(source.kind, source.packets, tuple(layers.rids), tuple(layers.media_ssrc),
                              tuple(meter.enabled), tuple(meter.usable(time.monotonic())),
                              source.unknown_layer_packets, frozenset(layers.unknown_rids))

    def subscriber_stats(self, subscriber_id: str) -> SubscriberStats:
        subscriber = self._subscriber(subscriber_id)
        source, feed = subscriber.source, subscriber.feed
        layer = feed.current_layer() if feed is not None else None
        target = None
        if feed is not None and feed.layered:
            target = source.layers.rids[feed.selector.target]
        return SubscriberStats(subscriber.kind, None if source is None else source.publisher_id,
                               None if layer is None else source.layers.rids[layer], target,
                               (subscriber.sent.packets, subscriber.sent.octets))
