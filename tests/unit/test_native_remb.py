"""The compiled REMB estimator (dataplane/csrc/remb.c) gives aiortc 1.16's RemoteBitrateEstimator's estimates,
figure for figure, on the same arrivals: steady video, a bottleneck whose queue grows (over-use, the estimate
falls), bursts, the abs-send-time wrapping, packets reordered, the arrival clock going back, and random
sequences. Both see the same numbers, so they must agree exactly (the C code keeps aiortc's update order and
Python's rounding, half to even); and absurd input is refused with a message or kept bounded, never a crash."""

from __future__ import annotations

import random

import pytest
from aiortc.rate import RemoteBitrateEstimator
from hypothesis import given, settings, strategies as st

from videoroomd.media.dataplane.native_module import load

native = load()
AST_PER_MS = (1 << 18) / 1000  # abs-send-time: 6.18 fixed point seconds, 24 bits


def ast(send_ms: float) -> int:
    return int(send_ms * AST_PER_MS) & 0xFFFFFF


def both(arrivals) -> tuple[list, list, int, bool]:
    """Feed the same arrivals to aiortc's estimator and ours; returns both outputs, how many REMBs were due and
    whether over-use was seen (checking that ours sees it at the same packets as aiortc's)."""
    theirs, ours = RemoteBitrateEstimator(), native.Remb()
    got_theirs, got_ours = [], []
    for arrival_ms, abs_send_time, size, ssrc in arrivals:
        remb = theirs.add(arrival_time_ms=arrival_ms, abs_send_time=abs_send_time, payload_size=size, ssrc=ssrc)
        got_theirs.append((remb, theirs.detector.state().value))
        mine = ours.add(arrival_ms, abs_send_time, size, ssrc)
        got_ours.append((mine, 2 if ours.overusing else None))
    due = sum(1 for remb, _ in got_theirs if remb is not None)
    # the detector's state: ours says over-use exactly when aiortc's does
    assert [s == 2 for _, s in got_theirs] == [s == 2 for _, s in got_ours]
    return [r for r, _ in got_theirs], [r for r, _ in got_ours], due, any(s == 2 for _, s in got_ours)


def video(seconds: float, fps: int = 30, packets: int = 3, size: int = 1000, start_ms: int = 3_900_000_000_000,
          send_start_ms: float = 0.0, delay=lambda t: 20.0, ssrcs=(1111,)):
    """Frames of ``packets`` packets, each packet's one-way delay ``delay(send_ms)``."""
    out = []
    for frame in range(int(seconds * fps)):
        send_ms = send_start_ms + frame * 1000 / fps
        for i in range(packets):
            sent = send_ms + i * 0.1
            out.append((start_ms + int(sent - send_start_ms + delay(sent - send_start_ms)), ast(sent), size,
                        ssrcs[i % len(ssrcs)]))
    return out


def test_steady_video_gets_the_same_estimates_as_aiortc():
    theirs, ours, due, overused = both(video(12, ssrcs=(1111, 2222)))
    assert theirs == ours and due > 10 and not overused
    assert all(r[0] > 0 for r in ours if r)
    assert [r for r in ours if r][-1][1] == [1111, 2222]


def test_a_bottleneck_with_growing_delay_brings_the_same_overuse_and_lower_estimate():
    # 5 s steady, then the queue grows 5 ms a frame: the estimators must see over-use and cut the estimate
    arrivals = video(12, packets=5, delay=lambda t: 20.0 if t < 5000 else 20.0 + (t - 5000) * 0.15)
    theirs, ours, _, overused = both(arrivals)
    assert theirs == ours and overused
    estimates = [r[0] for r in ours if r]
    assert min(estimates[len(estimates) // 2:]) < max(estimates[:len(estimates) // 2])


def test_bursts_reordering_wrap_and_time_going_back_match():
    rng = random.Random(7)
    arrivals = video(4, packets=8, delay=lambda t: 30.0 if int(t) % 200 < 150 else 5.0)  # bursts: a queue drains
    # the abs-send-time wraps (64 s) in the middle of a stream
    arrivals += video(6, send_start_ms=64_000 - 2500, start_ms=arrivals[-1][0] + 30)
    shuffled = list(arrivals)
    for i in range(0, len(shuffled) - 3, 17):  # neighbours swapped: late packets
        shuffled[i], shuffled[i + 2] = shuffled[i + 2], shuffled[i]
    back = [(a - (400 if 600 < n < 700 else 0), s, size, ssrc) for n, (a, s, size, ssrc) in enumerate(shuffled)]
    jitter = [(a + rng.randint(-3, 3), s, size, ssrc) for a, s, size, ssrc in back]
    theirs, ours, due, _ = both(jitter)
    assert theirs == ours and due > 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-50, 400), st.integers(0, 1 << 24), st.integers(0, 1500),
                          st.sampled_from([1, 2, 3])), min_size=1, max_size=400))
def test_random_arrivals_match(steps):
    arrival, arrivals = 1_000_000, []
    for step, abs_send_time, size, ssrc in steps:
        arrival += step
        arrivals.append((arrival, abs_send_time & 0xFFFFFF, size, ssrc))
    theirs, ours, _, _ = both(arrivals)
    assert theirs == ours


def test_take_reports_the_newest_remb_due_and_the_last_overuse():
    remb = native.Remb()
    assert remb.take() is None
    dues = [remb.add(a, s, size, ssrc) for a, s, size, ssrc in
            video(12, packets=5, delay=lambda t: 20.0 if t < 5000 else 20.0 + (t - 5000) * 0.15)]
    bitrate, at_ms, overuse_ms, ssrcs = remb.take()
    assert (bitrate, ssrcs) == [d for d in dues if d][-1] and ssrcs == [1111]
    assert overuse_ms is not None and overuse_ms <= at_ms
    assert remb.take() is None  # taken once


@pytest.mark.parametrize("args,message", [
    ((1 << 60, 0, 100, 1), "arrival_ms"), ((0, 1 << 24, 100, 1), "24 bits"), ((0, 0, 1 << 32, 1), "size"),
])
def test_absurd_input_is_refused_with_what(args, message):
    with pytest.raises((ValueError, OverflowError), match=message):
        native.Remb().add(*args)


def test_absurd_but_legal_input_is_bounded():
    remb = native.Remb()
    for arrival in (0, 1 << 52, -(1 << 52), 5, 1 << 51, 0):  # time jumping by years either way
        for abs_send_time in (0, 0xFFFFFF, 0x800000, 1):
            result = remb.add(arrival, abs_send_time, 0xFFFFFFFF, 0xFFFFFFFF)
            assert result is None or (isinstance(result[0], int) and result[1] == [0xFFFFFFFF])


@pytest.mark.parametrize("seed", [3, 11])
def test_a_minute_of_congestion_coming_and_going_matches(seed):
    # queues that grow for 10 s and drain for 10 s, jitter, 1 to 8 packets a frame on two SSRCs
    rng = random.Random(seed)
    arrivals, now, send, delay = [], 3_900_000_000_000, 0.0, 20.0
    for frame in range(1800):
        send += 1000 / 30
        delay = max(0.0, delay + rng.gauss(0.3 if (frame // 300) % 2 else -0.3, 2))
        for i in range(rng.randint(1, 8)):
            sent = send + i * 0.2
            arrivals.append((now + int(sent + delay + rng.random() * 3), ast(sent), rng.randint(200, 1200), 1 + i % 2))
    theirs, ours, due, overused = both(arrivals)
    assert theirs == ours and due > 100 and overused
