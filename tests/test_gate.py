"""When a subscriber starts or switches a source, and when a publisher is asked for a keyframe.

Each packet is a (sequence number, keyframe?) pair as the publisher sends them;
a subscriber "gets" what the gate hands it to send.
"""

from __future__ import annotations

import pytest

from videoroomd.media.gate import HOLD, KEYFRAME_GAP, KEYFRAME_INTERVAL, KeyframeRequests, Start, StartGate


class Subscriber:
    """A gate and what its subscriber was sent and asked for, packet by packet."""

    def __init__(self, kind: str = "video", hold: int = HOLD):
        self.gate = StartGate(kind, hold)
        self.got: list[int] = []
        self.asks: list[Start] = []
        self.connected = True

    def packet(self, seq: int, keyframe: bool = False) -> None:
        if self.gate.running:
            self.got.append(seq)
            return
        decision, packets = self.gate.admit(seq, keyframe, self.connected)
        if decision is Start.GO:
            self.got.extend(packets)
        elif decision is not Start.HELD:
            self.asks.append(decision)

    def stream(self, first: int, last: int, keyframes: tuple[int, ...] = ()) -> None:
        for seq in range(first, last + 1):
            self.packet(seq, seq in keyframes)


def test_a_video_subscriber_that_joins_between_keyframes_gets_nothing_until_the_next_then_everything_from_it():
    sub = Subscriber()
    sub.gate.switched()
    sub.stream(1, 5)
    assert sub.got == []
    sub.stream(6, 9, keyframes=(6,))
    assert sub.got == [6, 7, 8, 9]
    sub.stream(10, 12)  # deltas after the start go on
    assert sub.got[-3:] == [10, 11, 12]


def test_a_new_source_asks_for_a_keyframe_with_the_short_wait_once_per_packet_it_cannot_use():
    sub = Subscriber()
    sub.gate.switched()
    sub.stream(1, 3)
    assert sub.asks == [Start.ASK_STARTING] * 3  # the publisher side rate-limits them
    sub.packet(4, keyframe=True)
    sub.stream(5, 8)
    assert len(sub.asks) == 3  # running: nothing more asked


def test_audio_starts_at_once_with_whatever_packet_comes():
    sub = Subscriber("audio")
    sub.gate.switched()
    sub.stream(1, 4)
    assert sub.got == [1, 2, 3, 4] and sub.asks == []


def test_a_keyframe_that_arrives_while_connecting_is_kept_and_sent_with_what_followed_once_connected():
    sub = Subscriber()
    sub.gate.switched()
    sub.connected = False
    sub.stream(1, 10, keyframes=(3,))
    assert sub.got == [] and sub.asks == []  # nothing asked while it cannot send anyway
    sub.connected = True
    sub.packet(11)
    assert sub.got == list(range(3, 12))  # from the keyframe on, the packet that found it connected last
    assert sub.gate.running


def test_only_the_latest_keyframe_run_is_kept_while_connecting():
    sub = Subscriber()
    sub.gate.switched()
    sub.connected = False
    sub.stream(1, 10, keyframes=(2, 7))
    sub.connected = True
    sub.packet(11)
    assert sub.got == [7, 8, 9, 10, 11]


def test_a_run_longer_than_hold_while_connecting_is_dropped_and_the_next_keyframe_awaited():
    sub = Subscriber(hold=5)
    sub.gate.switched()
    sub.connected = False
    sub.stream(1, 5, keyframes=(1,))  # exactly HOLD packets: still kept
    assert sub.gate.held == [1, 2, 3, 4, 5]
    sub.packet(6)  # one more: too long to catch up with
    assert sub.gate.held is None
    sub.connected = True
    sub.packet(7)
    assert sub.got == [] and sub.asks == [Start.ASK_STARTING]
    sub.packet(8, keyframe=True)
    assert sub.got == [8]


def test_nothing_is_kept_while_connecting_before_any_keyframe_nor_for_audio():
    video, audio = Subscriber(), Subscriber("audio")
    for sub in (video, audio):
        sub.gate.switched()
        sub.connected = False
        sub.stream(1, 4)
        assert sub.gate.held is None
    audio.connected = True
    audio.packet(5)
    assert audio.got == [5]  # audio lost while connecting is gone, it starts with the next


def test_a_video_subscriber_that_fell_behind_restarts_at_the_next_keyframe_asking_with_the_usual_wait():
    sub = Subscriber()
    sub.gate.switched()
    sub.stream(1, 3, keyframes=(1,))
    assert sub.gate.fell_behind() is True  # ask the publisher for a keyframe
    assert sub.gate.fell_behind() is False  # already waiting for one: no second request
    sub.stream(4, 6)
    assert sub.got == [1, 2, 3]
    assert sub.asks == [Start.ASK] * 3  # not a new source: never the short wait
    sub.stream(7, 8, keyframes=(7,))
    assert sub.got == [1, 2, 3, 7, 8]


def test_audio_that_fell_behind_goes_on_with_the_next_packet():
    sub = Subscriber("audio")
    sub.gate.switched()
    sub.stream(1, 2)
    assert sub.gate.fell_behind() is False
    sub.packet(3)
    assert sub.got == [1, 2, 3]


def test_switching_source_drops_what_was_held_and_waits_for_the_new_sources_keyframe():
    sub = Subscriber()
    sub.gate.switched()
    sub.connected = False
    sub.stream(1, 3, keyframes=(1,))
    sub.gate.switched()  # another publisher takes the slot
    sub.connected = True
    sub.packet(100)
    assert sub.got == [] and sub.asks == [Start.ASK_STARTING]
    sub.packet(101, keyframe=True)
    assert sub.got == [101]


def test_switching_while_running_stops_until_the_new_sources_keyframe():
    sub = Subscriber()
    sub.gate.switched()
    sub.stream(1, 2, keyframes=(1,))
    sub.gate.switched()
    sub.packet(50)
    assert sub.got == [1, 2] and sub.asks == [Start.ASK_STARTING]


def test_a_subscriber_without_a_source_yet_asks_with_the_usual_wait():
    sub = Subscriber()  # never switched: it fell behind, not a new source
    sub.packet(1)
    assert sub.asks == [Start.ASK]


# -- keyframe requests to one publisher ---------------------------------------------------------

def test_the_first_request_goes_out_at_once():
    assert KeyframeRequests().ask(now=0.0)
    assert KeyframeRequests().ask(now=1000.0, starting=True)


def test_unanswered_requests_are_repeated_only_after_the_interval():
    requests = KeyframeRequests()
    assert requests.ask(100.0)
    assert not requests.ask(100.0 + KEYFRAME_INTERVAL - 0.01)
    assert not requests.ask(100.0 + KEYFRAME_GAP + 0.01, starting=True)  # unanswered: the keyframe may be coming
    assert requests.ask(100.0 + KEYFRAME_INTERVAL)


def test_a_subscriber_starting_after_the_keyframe_passed_may_ask_again_after_the_gap():
    requests = KeyframeRequests()
    assert requests.ask(100.0, starting=True)
    requests.keyframe_arrived()
    assert not requests.ask(100.0 + KEYFRAME_GAP - 0.01, starting=True)  # at least the gap between two
    assert not requests.ask(100.0 + KEYFRAME_GAP + 0.01)  # a subscriber's own PLI: the usual wait
    assert requests.ask(100.0 + KEYFRAME_GAP + 0.01, starting=True)
    assert not requests.ask(100.0 + 2 * KEYFRAME_GAP + 0.02, starting=True)  # that one is unanswered again


@pytest.mark.parametrize("starting", [False, True])
def test_a_publisher_is_asked_at_most_once_per_gap_however_many_subscribers_ask(starting):
    requests = KeyframeRequests()
    sent = 0
    for tick in range(1000):  # 10 s of asking every 10 ms, a keyframe answering each request at once
        if requests.ask(tick * 0.01, starting):
            sent += 1
            requests.keyframe_arrived()
    wait = KEYFRAME_GAP if starting else KEYFRAME_INTERVAL
    assert sent <= 10 / wait + 1
    assert sent >= 10 / (wait + 0.01) - 1
