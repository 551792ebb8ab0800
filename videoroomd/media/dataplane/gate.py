"""When a subscriber may start or switch a source, and when a publisher is asked for a keyframe: pure.

A video subscriber can only decode from a keyframe on, so each of its runs
(a new source, or starting again after it fell behind) begins at one; audio
starts at once. While its connection is still being set up the latest
keyframe and what follows it are kept for it (at most :data:`HOLD`
packets), so it starts the moment it can send instead of asking again.
Keyframe requests to a publisher (RTCP PLI) are rate-limited: one every
:data:`KEYFRAME_INTERVAL`, or after :data:`KEYFRAME_GAP` for a subscriber
starting on the source once the last request was answered.

Nothing here reads a clock or touches a socket: the forwarder
(:mod:`.publisher`, :mod:`.subscriber`) passes ``now`` and acts on what
these decide.
"""

from __future__ import annotations

import enum

KEYFRAME_INTERVAL = 0.5      # seconds before a keyframe request still unanswered is repeated
KEYFRAME_GAP = 0.15          # seconds between two keyframe requests to one publisher at the least
HOLD = 300                   # packets of a keyframe and what follows kept for a subscriber still connecting


class KeyframeRequests:
    """Whether a publisher may be asked for a keyframe now."""

    def __init__(self):
        self.last_request = float("-inf")  # when one was last asked for (monotonic seconds)
        self.answered = True               # a keyframe came after the last request

    def keyframe_arrived(self) -> None:
        self.answered = True

    def ask(self, now: float, starting: bool = False) -> bool:
        """Whether to send a request at ``now``; if so it counts as sent.

        At most one every KEYFRAME_INTERVAL. A subscriber ``starting`` on the source
        that missed the last keyframe (it switched a moment too late) may ask again
        after KEYFRAME_GAP instead, once that keyframe came; a subscriber's own
        PLIs, and one that fell behind, never get the shorter wait.
        """
        wait = KEYFRAME_GAP if starting and self.answered else KEYFRAME_INTERVAL
        if now - self.last_request < wait:
            return False
        self.last_request = now
        self.answered = False
        return True


class Start(enum.Enum):
    """What :meth:`StartGate.admit` decided for a packet while a subscriber is not running."""

    GO = "go"                    # send the packets given, a new run starting at the first
    HELD = "held"                # not connected yet: kept (or dropped), nothing to send
    ASK = "ask"                  # not a start: dropped; ask the publisher for a keyframe (usual wait)
    ASK_STARTING = "ask-starting"  # the same, for a source just switched to (the short wait)


class StartGate:
    """One subscriber's state between runs: when the next run may begin, and with what.

    ``running`` is True while a run goes on: each packet is then sent as it
    comes, and :meth:`admit` is not asked.
    """

    def __init__(self, kind: str, hold: int = HOLD):
        self.kind = kind
        self.hold = hold
        self.running = False
        self.new_source = False       # waiting to start a source just switched to (not a skip)
        self.held: list | None = None  # packets from a keyframe on, kept while not connected

    def switched(self) -> None:
        """The subscriber carries another source (or none) from now on."""
        self.running = False
        self.new_source = True
        self.held = None

    def admit(self, packet, keyframe: bool, connected: bool) -> tuple[Start, list]:
        """What to do with ``packet`` (``keyframe``: it starts one) while not running.

        Returns (decision, packets to send); for GO the run has begun.
        """
        if not connected:
            self._hold(packet, keyframe)
            return Start.HELD, []
        held, self.held = self.held, None
        if held:
            held.append(packet)
            return self._go(held)
        if keyframe or self.kind == "audio":
            return self._go([packet])
        return (Start.ASK_STARTING if self.new_source else Start.ASK), []

    def fell_behind(self) -> bool:
        """A packet could not go (the subscriber's socket was full). True when a video run
        ends here: it starts again at a keyframe, to be asked of the publisher (usual wait).
        Audio goes on with the next packet."""
        if self.kind != "video" or not self.running:
            return False
        self.running = False
        return True

    def _go(self, packets: list) -> tuple[Start, list]:
        self.running = True
        self.new_source = False
        return Start.GO, packets

    def _hold(self, packet, keyframe: bool) -> None:
        if self.kind != "video":
            return
        if keyframe:
            self.held = [packet]
        elif self.held is not None:
            if len(self.held) < self.hold:
                self.held.append(packet)
            else:
                self.held = None  # too long to catch up with: wait for the next keyframe


# -- simulcast ---------------------------------------------------------------------------------
#
# A simulcast publisher sends each video in layers (RIDs, low to high: 0, 1, 2). Each
# subscriber gets one: the highest it asked for (target) that is arriving, enabled and
# fits its share of what its link carries. Down at once when a layer goes or the link is
# congested; up only after things stayed good for a while (longer after each up-switch
# the link could not carry), and always at a keyframe of the new layer, the old one
# flowing until then.

LAYER_SILENCE = 1.0          # seconds without a packet after which a layer counts as not arriving
METER_WINDOW = 1.0           # seconds over which a layer's bitrate is measured
UP_DELAY = 3.0               # seconds things must stay good before a subscriber goes up a layer
UP_DELAY_MAX = 60.0          # the longest it waits, after up-switches that failed again and again
UP_FAILED_WITHIN = 10.0      # a low-bandwidth switch down this soon after going up: that up-switch failed
CONGESTION_MEMORY = 5.0      # seconds after the last sign of congestion in which it still counts
# A REMB below this times the previous one is a sign of congestion (a receiver that detects
# overuse cuts its estimate to 0.85 of what arrives).
DROP_FACTOR = 0.9
CAUGHT_UP = 0.9             # a REMB this close to what is sent has caught up with it
HIGH_LOSS = 0.10             # loss above which the estimate is cut (as loss-based congestion control does)
BANDWIDTH_CHANGE = 0.10      # relative change of the estimate that is reported
BANDWIDTH_REPORT_INTERVAL = 1.0  # seconds between two reports of one subscriber's estimate at the least


class Reason(str, enum.Enum):
    """Why a subscriber's layer changed (the ``layer`` event's ``reason``)."""

    OTHER = "other"
    ENCODING_INACTIVE = "encoding_inactive"
    LOW_BANDWIDTH = "low_bandwidth"


class LayerMeter:
    """What each layer of one simulcast track carries: when it last arrived, its bitrate."""

    def __init__(self, count: int):
        self.count = count
        self.last_packet = [float("-inf")] * count   # when each layer's newest packet arrived
        self.arriving_since = [float("inf")] * count  # since when it arrives without a gap
        self.bitrate = [0.0] * count                  # bits/s, measured over the last window
        self.enabled = [True] * count                 # as the publisher's client says
        self._bytes = [0] * count
        self._window_start: float | None = None

    def packet(self, layer: int, size: int, now: float) -> None:
        """A packet of ``size`` payload bytes of ``layer`` arrived at ``now``."""
        if now - self.last_packet[layer] > LAYER_SILENCE:
            self.arriving_since[layer] = now
        self.last_packet[layer] = now
        self._bytes[layer] += size
        if self._window_start is None:
            self._window_start = now
        elapsed = now - self._window_start
        if elapsed >= METER_WINDOW:
            for i in range(self.count):
                rate = self._bytes[i] * 8 / elapsed
                # Smoothed: one window of a keyframe burst must not look like the layer's rate.
                self.bitrate[i] = rate if self.bitrate[i] == 0 else 0.5 * self.bitrate[i] + 0.5 * rate
                self._bytes[i] = 0
            self._window_start = now

    def usable(self, now: float) -> list[bool]:
        """Each layer: enabled and arriving."""
        return [self.enabled[i] and now - self.last_packet[i] <= LAYER_SILENCE for i in range(self.count)]


class BandwidthEstimate:
    """What can be sent to one subscriber, from its REMB and the loss in its receiver reports."""

    def __init__(self):
        self.remb: float | None = None
        self.loss = 0.0                        # fraction lost of the last receiver report (0..1)
        self.congested_at = float("-inf")      # the last sign of congestion
        self._reported: int | None = None
        self._reported_at = float("-inf")

    def remb_arrived(self, bps: float, now: float, sending: float | None = None) -> None:
        """A REMB of ``bps``; ``sending``: what is sent to the subscriber now (bits/s), when known.

        A drop is a sign of congestion only once the estimate had reached what is sent and
        falls clearly below it (under DROP_FACTOR of it): a receiver's estimate climbs slowly
        after a switch up and dips on the way, and one at or above what is sent wavers by
        some percent (a busy receiver's more so, keyframes make what is sent uneven), which
        is not the link failing to carry what it gets (a receiver that sees overuse cuts to
        0.85 of what arrives; loss says the rest)."""
        if self.remb is not None and bps < DROP_FACTOR * self.remb:
            if sending is None or (self.remb >= CAUGHT_UP * sending and bps < DROP_FACTOR * sending):
                self.congested_at = now
        self.remb = bps

    def loss_reported(self, fraction: float, now: float) -> None:
        self.loss = fraction
        if fraction > HIGH_LOSS:
            self.congested_at = now

    def estimate(self) -> int | None:
        """Bits/s, or None before the first REMB."""
        if self.remb is None:
            return None
        factor = 1.0 - 0.5 * self.loss if self.loss > HIGH_LOSS else 1.0
        return int(self.remb * factor)

    def congested(self, now: float) -> bool:
        return now - self.congested_at <= CONGESTION_MEMORY

    def report(self, now: float) -> int | None:
        """The estimate to report now, or None: it changed by less than BANDWIDTH_CHANGE
        since the last report, or that was less than BANDWIDTH_REPORT_INTERVAL ago."""
        value = self.estimate()
        if value is None or now - self._reported_at < BANDWIDTH_REPORT_INTERVAL:
            return None
        if self._reported is not None and abs(value - self._reported) < BANDWIDTH_CHANGE * max(self._reported, 1):
            return None
        self._reported, self._reported_at = value, now
        return value


class LayerSelector:
    """Which layer one subscriber should get of one simulcast track.

    ``choose`` is asked now and then; it returns the layer to go to, which the
    subscriber then waits for a keyframe of (:class:`LayerSwitch`).
    """

    def __init__(self, count: int):
        self.count = count
        self.target = count - 1          # the highest layer the subscriber asked for
        self.chosen: int | None = None
        self.up_delay = UP_DELAY
        self.stepwise = False            # after a switch down for bandwidth: up one layer at a time
        self._went_up_at = float("-inf")
        self._changed_at = float("-inf")

    def set_target(self, layer: int) -> None:
        """The subscriber asks for ``layer`` at most. Asking for more than before is a fresh
        start: the longer waits and the one-layer steps that failed up-switches brought are
        forgotten, so it gets there after UP_DELAY once nothing shows congestion."""
        layer = max(0, min(self.count - 1, layer))
        if layer > self.target:
            self.up_delay = UP_DELAY
            self.stepwise = False
        self.target = layer

    def choose(self, now: float, usable: list[bool], arriving_since: list[float], bitrates: list[float],
               budget: int | None, congested: bool) -> tuple[int, Reason] | None:
        """The layer to change to and why, or None to stay. ``usable``: each layer enabled and
        arriving (since ``arriving_since``); ``bitrates``: what each carries (bits/s, 0 when
        unknown); ``budget``: this track's share of the subscriber's estimate (None: unknown);
        ``congested``: the link showed congestion a moment ago."""
        allowed = [i for i in range(self.count) if usable[i] and i <= self.target]
        if not allowed:
            allowed = [i for i in range(self.count) if usable[i]][:1]  # the lowest there is
        if not allowed:
            return None  # nothing arrives: nothing to switch to
        chosen = self.chosen
        fits = [i for i in allowed if budget is None or bitrates[i] <= budget]
        best_fit = fits[-1] if fits else allowed[0]
        if chosen is None:
            return self._change(best_fit, now, Reason.OTHER)
        if chosen not in allowed:
            lower = [i for i in allowed if i < chosen]
            layer = (lower[-1] if lower else allowed[0])
            if chosen > self.target:
                return self._change(min(layer, max(allowed)), now, Reason.OTHER)
            if budget is not None and congested and layer > best_fit:
                layer = best_fit
            return self._change(layer, now, Reason.ENCODING_INACTIVE if chosen <= self.target else Reason.OTHER)
        if congested and budget is not None and bitrates[chosen] > budget and best_fit < chosen:
            if now - self._went_up_at <= UP_FAILED_WITHIN:
                self.up_delay = min(UP_DELAY_MAX, self.up_delay * 2)  # that step up was too much
            self.stepwise = True
            return self._change(best_fit, now, Reason.LOW_BANDWIDTH)
        higher = [i for i in allowed if i > chosen]
        if not higher or congested:
            if not congested and now - self._changed_at > 4 * UP_FAILED_WITHIN:
                self.up_delay = UP_DELAY  # a long good spell: forget the failed attempts
                self.stepwise = False
            return None
        # Up: once the layer has arrived, and the link has been quiet, for a while. A REMB
        # below the layer's bitrate does not hold it back: a receiver's estimate only grows
        # with what it receives, so only congestion after the step says it was too much.
        # After a switch down for bandwidth, one layer at a time.
        ready = [i for i in higher if now - arriving_since[i] >= self.up_delay]
        if not ready or now - self._changed_at < self.up_delay:
            return None
        return self._change(ready[0] if self.stepwise else ready[-1], now, Reason.OTHER)

    def _change(self, layer: int, now: float, reason: Reason) -> tuple[int, Reason] | None:
        if layer == self.chosen:
            return None
        if self.chosen is not None and layer > self.chosen:
            self._went_up_at = now
        self.chosen = layer
        self._changed_at = now
        return layer, reason


class LayerSwitch:
    """Which layer's packets one subscriber sends: the current one, until a keyframe of
    the one it is to change to (``pending``) arrives."""

    def __init__(self):
        self.current: int | None = None
        self.pending: int | None = None

    def want(self, layer: int) -> bool:
        """Change to ``layer`` at its next keyframe; True when a keyframe must be asked for."""
        if layer == self.current:
            self.pending = None
            return False
        self.pending = layer
        return True

    def admit(self, layer: int, keyframe: bool) -> int:
        """0: drop the packet of ``layer``; 1: send it; 2: it starts the pending layer (a new run)."""
        if layer == self.pending and keyframe:
            self.current, self.pending = layer, None
            return 2
        return 1 if layer == self.current else 0
