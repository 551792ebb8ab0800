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
