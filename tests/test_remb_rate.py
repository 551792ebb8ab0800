"""The REMB estimator's lighter incoming-bitrate counter gives aiortc's figures, packet for packet,
and the estimator with it sends a publisher the same REMB values as aiortc's own."""

from __future__ import annotations

from aiortc.rate import RateCounter, RemoteBitrateEstimator
from hypothesis import given, settings, strategies as st

from videoroomd.media.aiortc_compat.remb import WindowRate

step = st.tuples(st.integers(0, 1500),                      # ms since the previous event
                 st.sampled_from(["add", "rate", "reset"]),
                 st.integers(0, 1400))                      # bytes


@settings(max_examples=300, deadline=None)
@given(start=st.integers(0, 2**41), steps=st.lists(step, max_size=80), window=st.sampled_from([1000, 50, 3]))
def test_the_counter_says_what_aiortcs_says_at_every_step(start, steps, window):
    ours, theirs = WindowRate(window, 8000), RateCounter(window, 8000)
    now = start
    for gap, action, size in steps:
        now += gap
        if action == "add":
            ours.add(size, now)
            theirs.add(size, now)
        elif action == "reset":
            ours.reset()
            theirs.reset()
        assert ours.rate(now) == theirs.rate(now)


def test_an_estimator_with_it_sends_the_same_rembs_for_a_real_looking_stream():
    ours, theirs = RemoteBitrateEstimator(), RemoteBitrateEstimator()
    ours.incoming_bitrate = WindowRate(1000, 8000)
    now, send_time, sent = 3_900_000_000_000, 0, []
    for frame in range(900):  # 30 s of 30 frames a second, 3 packets each, arriving with some jitter
        for packet in range(3):
            arrival = now + frame * 33 + packet + (frame * 7 % 5)
            abs_send_time = ((frame * 33 + packet) << 18) // 1000 & 0xFFFFFF
            size = 1000 + (frame * 31 + packet * 17) % 200
            a = ours.add(arrival_time_ms=arrival, abs_send_time=abs_send_time, payload_size=size, ssrc=5)
            b = theirs.add(arrival_time_ms=arrival, abs_send_time=abs_send_time, payload_size=size, ssrc=5)
            assert a == b
            if a is not None:
                sent.append(a)
    assert len(sent) > 30  # a REMB every half second or so: the comparison was not of nothing
