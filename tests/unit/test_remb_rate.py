"""The REMB estimator's lighter incoming-bitrate counter gives aiortc's figures, packet for packet,
and the estimator with it sends a publisher the same REMB values as aiortc's own."""

from __future__ import annotations

import asyncio

from aiortc.rate import RateCounter, RemoteBitrateEstimator
from hypothesis import given, settings, strategies as st

from videoroomd.media.webrtc.compat.remb import DEFAULT_CEILING, PublisherRemb, WindowRate, lighten_receivers

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


def _stream(policy, seconds: int, packets_a_frame: int, size: int, extra_delay_per_frame_ms: float = 0.0,
            cap=None) -> list[int]:
    """Feed ``policy`` 30 frames a second of ``packets_a_frame`` packets of ``size`` bytes; each frame
    arrives ``extra_delay_per_frame_ms`` later than the one before (a queue filling: overuse). Returns
    the REMB bitrates it said to send."""
    now, sent = 3_900_000_000_000, []
    for frame in range(30 * seconds):
        for packet in range(packets_a_frame):
            send_ms = frame * 33 + packet
            arrival = now + send_ms + (frame * 7 % 3) + int(frame * extra_delay_per_frame_ms)
            abs_send_time = (send_ms << 18) // 1000 & 0xFFFFFF
            remb = policy.add(arrival, abs_send_time, size, 5, cap)
            if remb is not None:
                sent.append(remb[0])
    return sent


def test_a_publisher_steady_on_its_lowest_layer_is_told_the_ceiling_not_1_5_times_what_it_sends():
    # ~150 kbit/s (30 frames of 1 packet of 625 bytes): aiortc's own estimate stays under ~235 kbit/s,
    # which kept a Chromium publisher that fell back to `l` there for ever.
    estimator = RemoteBitrateEstimator()
    estimator.incoming_bitrate = WindowRate(1000, 8000)
    sent = _stream(PublisherRemb(estimator), seconds=10, packets_a_frame=1, size=625)
    assert len(sent) > 5
    assert all(bitrate == DEFAULT_CEILING for bitrate in sent)
    assert estimator.rate_control.current_bitrate < 300_000  # what it would have been told before


def test_the_ceiling_is_the_rooms_max_video_bitrate_when_it_sets_one():
    sent = _stream(PublisherRemb(RemoteBitrateEstimator()), seconds=6, packets_a_frame=1, size=625, cap=1_000_000)
    assert sent and all(bitrate == 1_000_000 for bitrate in sent)


def test_a_publisher_whose_packets_queue_up_is_told_less_than_it_sends():
    # ~1.2 Mbit/s (5 packets of 1000 bytes a frame), each frame 2 ms later than the last: the path
    # does not carry it, and the REMB must say so for the browser to back off.
    sent = _stream(PublisherRemb(RemoteBitrateEstimator()), seconds=6, packets_a_frame=5, size=1000,
                   extra_delay_per_frame_ms=2.0)
    assert sent and min(sent) < 1_200_000
    assert sent[-1] < 1_200_000  # still congested at the end: not told the ceiling again


def test_every_video_receiver_of_a_connection_counts_without_a_thousand_buckets_even_those_that_only_send():
    from aiortc import RTCPeerConnection

    async def server_receivers() -> list:
        client, server = RTCPeerConnection(), RTCPeerConnection()
        try:
            client.addTransceiver("video", direction="sendonly")  # what the client publishes
            for _ in range(3):
                client.addTransceiver("video", direction="recvonly")  # what we only send it
            client.addTransceiver("audio", direction="recvonly")
            await client.setLocalDescription(await client.createOffer())
            await server.setRemoteDescription(client.localDescription)
            lighten_receivers(server)
            return [(t.kind, t.receiver._RTCRtpReceiver__remote_bitrate_estimator) for t in server.getTransceivers()]
        finally:
            await client.close()
            await server.close()

    receivers = asyncio.run(server_receivers())
    assert [kind for kind, _ in receivers] == ["video"] * 4 + ["audio"]
    assert all(isinstance(estimator.incoming_bitrate, WindowRate) for kind, estimator in receivers if kind == "video")
    assert receivers[-1][1] is None  # an audio receiver has no estimator
