"""One subscriber's RTP sequence numbers and timestamps over changing sources: pure.

A receive slot keeps its SSRC for life while its source changes (a
publisher leaves, another takes the slot) or restarts (the subscriber fell
behind and skips to a keyframe). Each run of a source is mapped onto the
slot's stream so that sequence numbers go on by one and timestamps go on by
the time that passed: the subscriber's jitter buffer sees one unbroken
stream. Packets of a run may arrive late and out of order (a publisher's
retransmission); ones older than the run, or than :data:`MAX_REORDER`,
are left out.
"""

from __future__ import annotations

MAX_REORDER = 256  # how far behind the newest packet of a run a late one may be and still go out


class StreamRewriter:
    """Maps source (sequence number, timestamp) pairs onto one outgoing stream."""

    def __init__(self, first_sequence_number: int, first_timestamp: int):
        self.next_seq = first_sequence_number & 0xFFFF  # the outgoing stream's next sequence number
        self.last_timestamp = first_timestamp & 0xFFFFFFFF
        self.last_time: float | None = None  # when the newest packet went out (seconds)
        self._seq_offset = 0
        self._ts_offset = 0
        self._highest = 0        # newest source sequence number of this run
        self._window = -1        # how far behind it a packet may be and still belong to this run

    def start_run(self, seq: int, timestamp: int, now: float, clock_rate: int) -> None:
        """The next packet to go out, (``seq``, ``timestamp``) of a source, starts a run."""
        elapsed = int((now - self.last_time) * clock_rate) if self.last_time is not None else 0
        self._seq_offset = (self.next_seq - seq) & 0xFFFF
        self._ts_offset = (self.last_timestamp + max(1, elapsed) - timestamp) & 0xFFFFFFFF
        self._highest = (seq - 1) & 0xFFFF
        self._window = -1

    def map(self, seq: int, timestamp: int) -> tuple[int, int] | None:
        """The outgoing (sequence number, timestamp) of a source packet of the current run,
        or None when it does not go out (the newest again, or older than the run)."""
        ahead = (seq - self._highest) & 0xFFFF
        if ahead == 0:
            return None
        if ahead < 0x8000:
            self._highest = seq
            self._window = min(self._window + ahead, MAX_REORDER)
        elif 0x10000 - ahead > self._window:
            return None
        return (seq + self._seq_offset) & 0xFFFF, (timestamp + self._ts_offset) & 0xFFFFFFFF

    def sent(self, out_seq: int, out_timestamp: int, now: float) -> bool:
        """Note that (``out_seq``, ``out_timestamp``) went out; True if it is the newest so far."""
        if (out_seq - self.next_seq) & 0xFFFF >= 0x8000:
            return False  # a late one
        self.next_seq = (out_seq + 1) & 0xFFFF
        self.last_timestamp = out_timestamp
        self.last_time = now
        return True
