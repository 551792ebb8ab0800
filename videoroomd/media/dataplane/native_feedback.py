"""A connection's RTCP about the streams the compiled plane sends it, read in C (``csrc/feedback.c``).

A client sends, for every stream it receives, receiver reports and feedback: NACKs,
PLI/FIR, REMB; a busy room's clients send hundreds of compounds a second to a worker.
Where the connection's socket is read by a Port (:mod:`..webrtc.compat.native_port`),
the Port hands each decrypted compound to this connection's ``_native.Feedback``:
NACKs are answered from the subscriber's history and PLI/FIR go to the plane in C,
and the REMB and a video report's lost fraction wait there as a summary. What stays
here is policy: which stream is whose (registered when its stream is set), how many
retransmissions a second a subscriber may have (:func:`nack_rate`, pushed to C
whenever the connection's estimate may have moved), and what the summary means for
the connection's bandwidth (:meth:`ConnectionFeedback.take`, when the Port says it is due).
Imports only this folder.
"""

from __future__ import annotations

import time
from typing import Callable, Protocol

from .connection import Connection
from .interface import Bandwidth
from .subscriber import RETRANSMIT_RATE, RETRANSMIT_RATE_MIN, RETRANSMIT_SHARE


class FedSlot(Protocol):
    """What a subscriber of the compiled plane shows here."""

    index: int
    kind: str
    connection: Connection
    selector: object | None


def nack_rate(slot: FedSlot) -> float:
    """Retransmissions a second ``slot``'s subscriber may have. On a simulcast source its estimate is
    known: resending more than a share of it would congest the link that lost the packets (and lose more)."""
    if slot.selector is None:
        return RETRANSMIT_RATE
    estimate = slot.connection.bandwidth.estimate()
    if estimate is None:
        return RETRANSMIT_RATE
    return min(RETRANSMIT_RATE, max(RETRANSMIT_RATE_MIN, RETRANSMIT_SHARE * estimate / (8 * 1200)))


class ConnectionFeedback:
    """One connection's ``_native.Feedback`` (:attr:`table`, for its Ports) and the policy around it."""

    def __init__(self, native, core, connection: Connection, tell: Callable[[Bandwidth | None], None]):
        self.table = native.Feedback(core)
        self._connection = connection
        self._tell = tell
        self._streams: dict[str, tuple[int, FedSlot]] = {}  # subscriber id -> (its media SSRC, slot)

    def add(self, subscriber_id: str, slot: FedSlot, ssrc: int) -> None:
        """``slot`` sends its stream with media SSRC ``ssrc`` (again: the new one replaces the old). A full
        table leaves that stream's RTCP to aiortc's path, as any connection's the Port does not read."""
        self.discard(subscriber_id)
        if self.table.add(ssrc, slot.index, slot.kind == "video", nack_rate(slot)):
            self._streams[subscriber_id] = (ssrc, slot)

    def discard(self, subscriber_id: str) -> None:
        known = self._streams.pop(subscriber_id, None)
        if known is not None:
            self.table.discard(known[0])

    def rates_changed(self, subscriber_id: str | None = None) -> None:
        """Push :func:`nack_rate` again: of one subscriber (its source changed), or of every simulcast one
        (the connection's estimate may have moved)."""
        for known_id, (ssrc, slot) in self._streams.items():
            if known_id == subscriber_id or (subscriber_id is None and slot.selector is not None):
                self.table.add(ssrc, slot.index, slot.kind == "video", nack_rate(slot))

    def take(self) -> None:
        """Apply what the table summed up since the last take (a REMB, a lost fraction) to the connection's
        bandwidth estimate, telling the news as the plane's REMB and loss calls do."""
        news = self.table.take()
        if news is None:
            return
        remb, lost = news
        now = time.monotonic()
        if remb is not None:
            self._tell(self._connection.remb_arrived(remb, now))
        if lost is not None:
            self._tell(self._connection.loss_reported(lost / 256, now))
        self.rates_changed()
