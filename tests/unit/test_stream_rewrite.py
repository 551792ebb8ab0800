"""A subscriber's stream stays unbroken while its source restarts or changes."""

from __future__ import annotations

from videoroomd.media.dataplane.stream_rewrite import MAX_REORDER, StreamRewriter

VIDEO = 90000


def send(stream: StreamRewriter, seq: int, timestamp: int, now: float):
    mapped = stream.map(seq, timestamp)
    if mapped is not None:
        stream.sent(*mapped, now)
    return mapped


def test_a_run_goes_out_on_the_streams_own_numbers():
    stream = StreamRewriter(1000, 5000)
    stream.start_run(40000, 123456, now=10.0, clock_rate=VIDEO)
    assert send(stream, 40000, 123456, 10.0) == (1000, 5001)
    assert send(stream, 40001, 123456, 10.0) == (1001, 5001)
    assert send(stream, 40002, 126456, 10.033) == (1002, 8001)


def test_a_new_source_continues_the_sequence_and_the_clock():
    stream = StreamRewriter(65534, 0xFFFFFF00)
    stream.start_run(10, 1000, now=5.0, clock_rate=VIDEO)
    assert send(stream, 10, 1000, 5.0) == (65534, 0xFFFFFF01)
    assert send(stream, 11, 4000, 5.033) == (65535, (0xFFFFFF01 + 3000) & 0xFFFFFFFF)
    # Two seconds later another publisher takes the slot, its numbers far from the first one's.
    stream.start_run(50000, 777, now=7.033, clock_rate=VIDEO)
    seq, timestamp = send(stream, 50000, 777, 7.033)
    assert seq == 0  # wrapped, by one
    assert timestamp == (0xFFFFFF01 + 3000 + 2 * VIDEO) & 0xFFFFFFFF
    assert send(stream, 50001, 777 + 3000, 7.066) == (1, (timestamp + 3000) & 0xFFFFFFFF)


def test_source_sequence_numbers_that_wrap_keep_going():
    stream = StreamRewriter(100, 0)
    stream.start_run(65535, 0, now=1.0, clock_rate=VIDEO)
    assert [send(stream, s, 0, 1.0)[0] for s in (65535, 0, 1)] == [100, 101, 102]


def test_a_late_packet_of_the_run_fills_its_own_gap():
    stream = StreamRewriter(0, 0)
    stream.start_run(500, 0, now=1.0, clock_rate=VIDEO)
    send(stream, 500, 0, 1.0)
    assert send(stream, 502, 0, 1.0) == (2, 1)  # 501 lost on the way in
    assert send(stream, 501, 0, 1.1) == (1, 1)  # its retransmission, in its place
    assert stream.next_seq == 3


def test_duplicates_and_packets_from_before_the_run_do_not_go_out():
    stream = StreamRewriter(0, 0)
    stream.start_run(500, 0, now=1.0, clock_rate=VIDEO)
    send(stream, 500, 0, 1.0)
    assert send(stream, 500, 0, 1.0) is None      # the newest again
    assert send(stream, 499, 0, 1.0) is None      # before the keyframe this run began with
    send(stream, 501, 0, 1.0)
    stream.start_run(900, 0, now=2.0, clock_rate=VIDEO)  # restarted on the same source
    send(stream, 900, 0, 2.0)
    assert send(stream, 501, 0, 2.0) is None      # the old run's packets are gone


def test_packets_too_far_behind_are_left_out():
    stream = StreamRewriter(0, 0)
    stream.start_run(0, 0, now=1.0, clock_rate=VIDEO)
    for seq in range(0, MAX_REORDER + 50):
        send(stream, seq, 0, 1.0)
    newest = MAX_REORDER + 49
    assert stream.map(newest - MAX_REORDER, 0) is not None
    assert stream.map(newest - MAX_REORDER - 1, 0) is None


def test_sent_tells_a_late_packet_from_the_newest():
    stream = StreamRewriter(10, 0)
    assert stream.sent(10, 0, 1.0) is True
    assert stream.sent(12, 0, 1.0) is True
    assert stream.sent(11, 0, 1.0) is False
    assert stream.next_seq == 13
