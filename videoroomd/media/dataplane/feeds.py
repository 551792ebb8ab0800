"""What links one subscriber to its source in the Python data plane: a plain feed, or a layered one.

A subscriber (:class:`.subscriber.Subscriber`) keeps its stream for life;
what it carries changes. While linked, a feed stands in the source's set
of subscribers and is handed each packet. A :class:`PlainFeed` (the
source is one stream) passes every packet to the subscriber. A
:class:`LayeredFeed` (simulcast) sends one layer: :class:`.gate.LayerSelector`
chooses which (now and then, asked by the source), :class:`.gate.LayerSwitch`
changes to it at a keyframe of that layer, and the subscriber rewrites the
VP8 picture ids so that it sees one stream whatever the layer.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol, Union

from .gate import LayerSelector, LayerSwitch, Reason

if TYPE_CHECKING:
    from .publisher import LayeredSource, Source


class Subscriber(Protocol):
    """What a feed asks of its subscriber (:class:`.subscriber.Subscriber`, which makes the
    feeds: a protocol here, so that the two modules import in one direction)."""

    connection: Any
    gate: Any

    def forward(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None: ...

    def layer_changed(self, source: Any, layer: int, reason: Reason) -> None: ...


class PlainFeed:
    """A subscriber on a source of one stream: each packet goes to it."""

    layered = False

    def __init__(self, slot: Subscriber, source: Source):
        self.slot = slot
        self.source = source
        self.forward = slot.forward  # (packet, layer, keyframe, now, send_time, ntp): no hop between

    def start(self) -> None:
        self.source.request_keyframe(starting=True)

    def choose_layer(self, now: float) -> None:
        pass

    def set_target(self, layer: int) -> None:
        pass

    def ask_keyframe(self, starting: bool) -> None:
        self.source.request_keyframe(starting)

    def current_layer(self) -> int | None:
        return None


class LayeredFeed:
    """A subscriber on a simulcast source: the layer it is on, the one it changes to, why."""

    layered = True

    def __init__(self, slot: Subscriber, source: LayeredSource, target: int | None):
        self.slot = slot
        self.source = source
        self.selector = LayerSelector(len(source.layers.rids))
        self.layer_switch = LayerSwitch()
        self._reason = Reason.OTHER
        if target is not None:
            self.selector.set_target(target)

    def start(self) -> None:
        self.choose_layer(time.monotonic())

    def set_target(self, layer: int) -> None:
        """The subscriber wants ``layer`` at most."""
        self.selector.set_target(layer)
        self.choose_layer(time.monotonic())

    def choose_layer(self, now: float) -> None:
        """Choose the layer to send (monotonic ``now``), and ask for a keyframe of it while
        the switch to it waits for one."""
        connection = self.slot.connection
        meter = self.source.meter
        decision = self.selector.choose(now, meter.usable(now), meter.arriving_since, meter.bitrate,
                                        connection.layer_budget(), connection.congested(now))
        if decision is not None:
            self._reason = decision[1]
            self.layer_switch.want(decision[0])
        if self.layer_switch.pending is not None:
            self.source.request_keyframe(starting=True, layer=self.layer_switch.pending)

    def forward(self, packet, layer: int, keyframe: bool, now: float, send_time: bytes, ntp: int) -> None:
        """Sent when of the layer the subscriber is on, or a keyframe of the one it changes to
        (which starts a new run)."""
        verdict = self.layer_switch.admit(layer, keyframe)
        if not verdict:
            return
        slot = self.slot
        if verdict == 2:
            gate = slot.gate
            first = gate.new_source and not gate.running  # nothing sent of this source yet
            gate.switched()
            slot.layer_changed(self.source, layer, Reason.OTHER if first else self._reason)
        slot.forward(packet, layer, keyframe, now, send_time, ntp)

    def ask_keyframe(self, starting: bool) -> None:
        """Of the layer the subscriber is on or changes to."""
        self.source.request_keyframe(starting=starting, layer=self.current_layer(pending=True))

    def current_layer(self, pending: bool = False) -> int | None:
        switch = self.layer_switch
        return switch.pending if pending and switch.pending is not None else switch.current


Feed = Union[PlainFeed, LayeredFeed]
