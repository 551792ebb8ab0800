"""A ported connection's RTP forwarded in C, once Python knows where each SSRC goes.

The first packets of an SSRC take the Python receive path (:func:`.rtp.decrypted_rtp_router`):
it finds the receiver by SSRC or mid, learns a simulcast layer from its RID, an RTX SSRC's
repaired SSRC. Once the receiver's forwarding target says the plane knows the SSRC
(``receiver._videoroomd_target(ssrc)``: the compiled plane and the publisher's index, None
while the track is held or the plane is not the compiled one), :class:`FastRoutes`
routes the SSRC to the Port (``_native.Port.route``), with the receiver statistics and the
NACK generator's state so far: from then on the Port decrypts, counts, finds gaps, feeds the
receiver's REMB estimator (a ``_native.Remb`` per receiver, aiortc's figures), unwraps
retransmissions and forwards in C, with no Python per packet. After
each read batch :meth:`FastRoutes.drain` takes back the SSRCs whose route went stale (another
payload type came, or the publisher was published again: the Port dropped those datagrams,
at most a batch), sends the NACKs due (one per SSRC and batch with
everything missing, where aiortc's generator sends one per packet that shows a new gap) and
the newest REMB each estimator made due in the batch (:class:`.remb.PublisherRemb`'s policy;
the Python path may send several in a batch while over-use lasts, the last carrying the same
figure). The Port says when any of these is due (its reader's ``due``, ``Port.fast_due``): a read
batch that only forwarded runs no Python, and is drained every :data:`DRAIN_INTERVAL` (:data:`TAKE_INTERVAL`
while the room records) for the rest. The receiver's reports read the Port's
numbers through :class:`PortStreamStatistics`. An SSRC whose track becomes held, or that
another receiver took, is handed back to Python (checked every :data:`CHECK_INTERVAL`), with
its state. While the room records, a routed media SSRC stays in C and the Port makes each of its
packets (retransmissions unwrapped) a track-file record, its arrival counted from the start of
the track's file (:meth:`NativeTarget.recording_start`): the records of an SSRC go to the
recording together (:meth:`NativeTarget.record_batch`), taken every :data:`TAKE_INTERVAL`, so
recording costs Python a few calls per SSRC and take, not per packet.
"""

from __future__ import annotations

import time
from typing import Any

from aiortc.codecs import is_rtx
from aiortc.rtcrtpreceiver import NackGenerator, StreamStatistics
from aiortc.rtp import clamp_packets_lost

from ...dataplane.native_module import load
from .rtp import extension_ids

CHECK_INTERVAL = 0.1   # seconds between two checks that each routed SSRC's track still forwards in C
RETRY_INTERVAL = 0.2   # seconds before an SSRC the plane could not take yet is asked about again
TAKE_INTERVAL = 0.05   # seconds between two takes of the records the Port made for the recording: a batch of
                       # several packets per SSRC (a read batch often has one), still far within a flush's second
# Seconds a Port's reads may go undrained when nothing is due (what is left: the route checks, the records
# while recording, the transport's counters of what was forwarded): drains cost Python calls per connection.
DRAIN_INTERVAL = CHECK_INTERVAL


class PortStreamStatistics:
    """Reads as aiortc's ``StreamStatistics`` of one SSRC (what its receiver reports and
    ``getStats`` read), with the numbers the Port keeps in C."""

    def __init__(self, port, ssrc: int, clockrate: int, expected_prior: int = 0, received_prior: int = 0):
        self._port, self._ssrc, self._clockrate = port, ssrc, clockrate
        self._expected_prior, self._received_prior = expected_prior, received_prior

    def add(self, packet) -> None:
        """A packet of this SSRC Python had (another payload type): the Port counts the SSRC's."""

    def _now(self) -> tuple[int, int, int, int, int]:
        return self._port.stream(self._ssrc) or (0, 0, 0, 0, 0)

    base_seq = property(lambda self: self._now()[0])
    max_seq = property(lambda self: self._now()[1])
    cycles = property(lambda self: self._now()[2])
    packets_received = property(lambda self: self._now()[3])
    jitter = property(lambda self: self._now()[4] >> 4)

    @property
    def packets_expected(self) -> int:
        base, highest, cycles, _, _ = self._now()
        return cycles + highest - base + 1

    @property
    def packets_lost(self) -> int:
        return clamp_packets_lost(self.packets_expected - self.packets_received)

    @property
    def fraction_lost(self) -> int:  # RFC 3550 A.3, as aiortc's: each read starts the next interval
        base, highest, cycles, received, _ = self._now()
        expected = cycles + highest - base + 1
        expected_interval, received_interval = expected - self._expected_prior, received - self._received_prior
        self._expected_prior, self._received_prior = expected, received
        lost_interval = expected_interval - received_interval
        return 0 if expected_interval == 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval


def _stats_seed(stream) -> tuple | None:
    if stream is None or stream.max_seq is None:
        return None
    return (stream.base_seq, stream.max_seq, stream.cycles, stream.packets_received, stream._jitter_q4,
            stream._last_arrival or 0, stream._last_timestamp or 0)


def _generator(receiver, state, ssrc: int):
    if state.nacks is not None:
        return state.nacks.get(ssrc)
    return receiver._RTCRtpReceiver__nack_generator


class FastRoutes:
    """The SSRCs one Port forwards in C, and the receiver each belongs to."""

    def __init__(self, port, dtls):
        self.port = port
        self._router = dtls._rtp_router
        self._ids = extension_ids(dtls._rtp_header_extensions_map)
        self.receivers: dict[int, Any] = {}
        self._nacking: set[int] = set()  # the routed media SSRCs whose receiver sends NACKs (video)
        self._refused: dict[int, float] = {}
        self._rembs: dict[Any, Any] = {}  # receiver -> its _native.Remb, while an SSRC of it is routed
        self._tapped: dict[int, int] = {}  # routed media SSRC the Port makes records of -> their start (µs)
        self._next_check = 0.0
        self._next_take = 0.0

    def consider(self, plain: bytes) -> None:
        """After Python's receive path had ``plain`` (a decrypted RTP datagram): route its SSRC
        to the Port when the plane can take it now."""
        if len(plain) < 12:
            return
        ssrc = int.from_bytes(plain[8:12], "big")
        if ssrc in self.receivers:
            return
        now = time.monotonic()
        if self._refused.get(ssrc, 0.0) > now:
            return
        if not self._route(ssrc, plain[1] & 0x7F):
            if len(self._refused) > 64:
                self._refused.clear()
            self._refused[ssrc] = now + RETRY_INTERVAL

    def _route(self, ssrc: int, payload_type: int) -> bool:
        receiver = self._router.ssrc_table.get(ssrc)
        state = getattr(receiver, "_videoroomd_state", None)
        target = getattr(receiver, "_videoroomd_target", None)
        if state is None or target is None or not receiver._enabled:
            return False
        codec = receiver._RTCRtpReceiver__codecs.get(payload_type)
        if codec is None:
            return False
        repaired = -1
        if is_rtx(codec):
            repaired = receiver._RTCRtpReceiver__rtx_ssrc.get(ssrc)
            if repaired is None and state.layers is not None:
                repaired = state.layers.repaired_ssrc(ssrc)
            if repaired not in self.receivers:
                return False  # its media SSRC first: the retransmissions fill the gaps that one finds
        forward = target(ssrc if repaired == -1 else repaired)
        if forward is None:
            return False
        core, index = forward
        streams = receiver._RTCRtpReceiver__remote_streams
        stream = streams.get(ssrc)
        generator = _generator(receiver, state, ssrc) if repaired == -1 else None
        nack = None
        if generator is not None and generator.max_seq is not None:
            nack = (generator.max_seq, list(generator.missing))
        ids = self._ids
        estimating = state.estimated is not None and bool(ids.abs_send_time)
        remb = (self._rembs.get(receiver) or load().Remb()) if estimating else None
        if not self.port.route(ssrc, core, index, repaired, payload_type, codec.clockRate, ids.audio_level or 0,
                               (ids.abs_send_time or 0) if state.arrived is not None else 0, _stats_seed(stream), nack,
                               remb):
            return False  # the Port's table is full: Python keeps this one
        if remb is not None:
            self._rembs[receiver] = remb
        priors = (stream._expected_prior, stream._received_prior) if stream is not None else (0, 0)
        streams[ssrc] = PortStreamStatistics(self.port, ssrc, codec.clockRate, *priors)
        self.receivers[ssrc] = receiver
        if repaired == -1 and receiver._RTCRtpReceiver__nack_generator is not None:  # NACK negotiated
            self._nacking.add(ssrc)
        self._follow_recording(ssrc, target.recording_start())  # at once: no packet between the two paths is lost
        return True

    def drain(self) -> tuple[int, int]:
        """Send the NACKs due and the REMBs made due since the last drain; hand back the
        SSRCs whose tracks no longer forward in C. Returns (packets, octets) forwarded in C."""
        nacks, arrivals, packets, octets, _, stale = self.port.drain_fast()
        now = time.monotonic()
        receivers = self.receivers
        for ssrc in stale:  # another payload type, or its publisher changed: Python's path, routed anew after it
            if ssrc in receivers:
                self.unroute(ssrc)
        for ssrc, lost in nacks:
            receiver = receivers.get(ssrc)
            if receiver is not None and ssrc in self._nacking:
                receiver._videoroomd_state.send_nack(ssrc, lost)
        for receiver, remb in self._rembs.items():
            receiver._videoroomd_state.estimated(remb)
        for arrival_ms, abs_send_time, size, ssrc in arrivals:  # SSRCs routed without a Remb: one by one
            receiver = receivers.get(ssrc)
            if receiver is not None:
                receiver._videoroomd_state.arrived(arrival_ms, abs_send_time, size, ssrc)
        if self._tapped and now >= self._next_take:
            self._next_take = now + TAKE_INTERVAL
            self._record()
        interval = TAKE_INTERVAL if self._tapped else DRAIN_INTERVAL
        if self.port.drain_interval != interval:  # (from the next drain on)
            self.port.drain_interval = interval
        if now >= self._next_check:
            self._next_check = now + CHECK_INTERVAL
            table = self._router.ssrc_table
            for ssrc, receiver in list(receivers.items()):
                target = receiver._videoroomd_target
                if not receiver._enabled or target is None or not target.still() or table.get(ssrc) is not receiver:
                    self.unroute(ssrc)
                else:
                    self._follow_recording(ssrc, target.recording_start())
        return packets, octets

    def _follow_recording(self, ssrc: int, start: float | None) -> None:
        """Have the Port make records of ``ssrc``'s packets, arrival counted from ``start`` (its track
        file's, wall time), exactly while the room records; ``start`` None: nothing records it."""
        start_us = None if start is None else round(start * 1_000_000)
        if start_us == self._tapped.get(ssrc):
            return
        if not self.port.tap(ssrc, start_us is not None, start_us or 0):
            return  # an RTX SSRC: its packets reach the records as its media SSRC's
        if start_us is None:
            del self._tapped[ssrc]
        else:
            self._tapped[ssrc] = start_us

    def _record(self) -> None:
        """Give the recording the records the Port made since the last drain, a batch per SSRC."""
        taken, _ = self.port.take_records()
        receivers = self.receivers
        for ssrc, records, count, keyframe, start_us in taken:
            receiver = receivers.get(ssrc)
            if receiver is not None:
                receiver._videoroomd_target.record_batch(ssrc, records, count, keyframe, start_us)

    def unroute(self, ssrc: int) -> None:
        """Give ``ssrc`` back to Python's receive path, with the statistics and gaps the Port kept."""
        if ssrc in self._tapped:
            self._record()  # what was kept for the recording goes before Python's path takes over
            del self._tapped[ssrc]
        receiver = self.receivers.pop(ssrc)
        self._nacking.discard(ssrc)
        handed = self.port.unroute(ssrc)
        if receiver in self._rembs and receiver not in self.receivers.values():
            del self._rembs[receiver]  # its last SSRC: aiortc's estimator again, on Python's path
        streams = receiver._RTCRtpReceiver__remote_streams
        ours = streams.get(ssrc)
        if handed is None or not isinstance(ours, PortStreamStatistics):
            return
        stats, nack = handed
        stream = StreamStatistics(ours._clockrate)
        stream._expected_prior, stream._received_prior = ours._expected_prior, ours._received_prior
        if stats is not None:
            (stream.base_seq, stream.max_seq, stream.cycles, stream.packets_received, stream._jitter_q4,
             stream._last_arrival, stream._last_timestamp) = stats
        streams[ssrc] = stream
        state = receiver._videoroomd_state
        generator = _generator(receiver, state, ssrc)
        if generator is None and state.nacks is not None and nack is not None:
            generator = state.nacks[ssrc] = NackGenerator()
        if generator is not None and nack is not None:
            generator.max_seq, generator.missing = nack[0], set(nack[1])
