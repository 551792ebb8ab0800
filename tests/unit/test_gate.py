"""When a subscriber starts or switches a source, and when a publisher is asked for a keyframe.

Each packet is a (sequence number, keyframe?) pair as the publisher sends them;
a subscriber "gets" what the gate hands it to send.
"""

from __future__ import annotations

import pytest

from videoroomd.media.dataplane.gate import HOLD, KEYFRAME_GAP, KEYFRAME_INTERVAL, KeyframeRequests, Start, StartGate


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


# -- simulcast: which layer each subscriber gets ------------------------------------------------

from videoroomd.media.dataplane.gate import (BANDWIDTH_REPORT_INTERVAL, CONGESTION_MEMORY, LAYER_SILENCE, UP_DELAY,  # noqa: E402
                                   BandwidthEstimate, LayerMeter, LayerSelector, LayerSwitch, Reason)

RATES = [150_000.0, 500_000.0, 1_500_000.0]
ALL = [True, True, True]
LONG_AGO = [0.0, 0.0, 0.0]


class Layers:
    """A selector asked as the forwarder asks it, over a timeline."""

    def __init__(self, target: int = 2):
        self.selector = LayerSelector(3)
        self.selector.set_target(target)
        self.now = 100.0
        self.usable = list(ALL)
        self.since = list(LONG_AGO)
        self.budget: int | None = None
        self.congested = False

    def choose(self):
        return self.selector.choose(self.now, self.usable, self.since, RATES, self.budget, self.congested)

    def run(self, seconds: float, step: float = 0.2) -> list:
        changes = []
        end = self.now + seconds
        while self.now < end:
            self.now += step
            change = self.choose()
            if change is not None:
                changes.append(change)
        return changes


def test_a_new_subscriber_starts_on_the_highest_layer_it_asked_for():
    assert Layers(target=2).choose() == (2, Reason.OTHER)
    assert Layers(target=0).choose() == (0, Reason.OTHER)
    assert Layers(target=1).choose() == (1, Reason.OTHER)


def test_a_known_estimate_picks_the_highest_layer_that_fits_from_the_start():
    layers = Layers()
    layers.budget = 600_000
    assert layers.choose() == (1, Reason.OTHER)


def test_a_lower_target_goes_down_at_once_and_a_higher_one_up_after_the_wait():
    layers = Layers()
    layers.choose()
    layers.selector.set_target(0)
    assert layers.choose() == (0, Reason.OTHER)
    layers.selector.set_target(2)
    assert layers.choose() is None  # not right after a change
    changes = layers.run(UP_DELAY + 0.5)
    assert changes == [(2, Reason.OTHER)]


def test_a_layer_that_stops_arriving_or_is_disabled_is_left_at_once_for_the_next_one_down():
    layers = Layers()
    layers.choose()
    layers.now += 10
    layers.usable = [True, True, False]
    assert layers.choose() == (1, Reason.ENCODING_INACTIVE)
    layers.usable = [True, False, False]
    assert layers.choose() == (0, Reason.ENCODING_INACTIVE)


def test_when_the_layer_returns_the_subscriber_goes_back_up_once_it_has_arrived_for_a_while():
    layers = Layers()
    layers.choose()
    layers.usable = [True, True, False]
    layers.choose()
    layers.run(5)
    layers.usable = list(ALL)
    layers.since = [0.0, 0.0, layers.now]  # h arrives again from now on
    assert layers.run(UP_DELAY - 0.5) == []
    assert layers.run(1.0) == [(2, Reason.OTHER)]


def test_only_the_lowest_layer_arriving_is_taken_even_above_the_target():
    layers = Layers(target=0)
    layers.usable = [False, True, True]
    assert layers.choose() == (1, Reason.OTHER)


def test_nothing_arriving_changes_nothing():
    layers = Layers()
    layers.usable = [False, False, False]
    assert layers.choose() is None and layers.selector.chosen is None


def test_congestion_moves_down_to_the_layer_that_fits_and_a_quiet_link_does_not_go_down_on_a_low_remb():
    layers = Layers()
    layers.choose()
    layers.budget = 400_000  # a receiver's REMB grows only with what it gets: low is no sign by itself
    assert layers.run(5) == []
    layers.congested = True
    assert layers.choose() == (0, Reason.LOW_BANDWIDTH)
    assert layers.run(CONGESTION_MEMORY) == []  # no way up while congested


def test_an_up_switch_the_link_cannot_carry_makes_the_next_try_wait_longer_so_it_does_not_flap():
    layers = Layers()
    layers.budget = 600_000
    layers.choose()
    layers.congested = True
    layers.selector.chosen = 2
    assert layers.choose() == (1, Reason.LOW_BANDWIDTH)
    waits = []
    for _ in range(4):  # each time: quiet, up, and congested again at once, so down
        layers.congested = False
        start = layers.now
        change = None
        while change is None and layers.now - start < 300:
            layers.now += 0.2
            change = layers.choose()
        assert change == (2, Reason.OTHER)
        waits.append(layers.now - start)
        layers.congested = True
        layers.now += 0.5
        assert layers.choose() == (1, Reason.LOW_BANDWIDTH)
    assert waits[0] >= UP_DELAY
    assert all(later > 1.5 * earlier for earlier, later in zip(waits, waits[1:]))  # backed off each time


def test_a_good_spell_after_a_failed_up_switch_resets_the_wait():
    layers = Layers()
    layers.choose()
    layers.selector.up_delay = 8 * UP_DELAY
    layers.run(60)
    assert layers.selector.up_delay == UP_DELAY


class Switching:
    """A layer switch fed packets (layer, keyframe?); what it sent, and from where runs begin."""

    def __init__(self):
        self.switch = LayerSwitch()
        self.sent: list[tuple[int, int]] = []
        self.runs: list[int] = []

    def packet(self, layer: int, number: int, keyframe: bool = False) -> None:
        verdict = self.switch.admit(layer, keyframe)
        if verdict == 2:
            self.runs.append(len(self.sent))
        if verdict:
            self.sent.append((layer, number))


def test_the_old_layer_flows_until_a_keyframe_of_the_new_one_then_only_the_new_one():
    s = Switching()
    assert s.switch.want(0) is True
    for n in range(3):
        s.packet(1, n)
        s.packet(0, n, keyframe=n == 1)
    assert s.sent == [(0, 1), (0, 2)] and s.runs == [0]
    assert s.switch.want(1) is True
    s.packet(1, 3)           # not a keyframe: still on 0
    s.packet(0, 3)
    s.packet(1, 4, keyframe=True)
    s.packet(0, 4, keyframe=True)  # the old layer is dropped from now on, keyframe or not
    s.packet(1, 5)
    assert s.sent == [(0, 1), (0, 2), (0, 3), (1, 4), (1, 5)] and s.runs == [0, 3]


def test_wanting_the_current_layer_again_cancels_a_pending_switch():
    s = Switching()
    s.switch.want(0)
    s.packet(0, 0, keyframe=True)
    s.switch.want(2)
    assert s.switch.want(0) is False
    s.packet(2, 1, keyframe=True)
    assert s.sent == [(0, 0)]


def test_the_meter_measures_each_layer_and_notices_one_that_stops():
    meter = LayerMeter(3)
    now = 0.0
    for _ in range(60):  # 3 s of 20 packets a second per layer
        now += 0.05
        for layer, size in enumerate((100, 400, 1200)):
            meter.packet(layer, size, now)
    assert meter.usable(now) == [True, True, True]
    assert 0.8 * 1200 * 8 * 20 < meter.bitrate[2] < 1.2 * 1200 * 8 * 20
    assert meter.bitrate[0] < meter.bitrate[1] < meter.bitrate[2]
    for _ in range(30):  # h stops
        now += 0.05
        meter.packet(0, 100, now)
        meter.packet(1, 400, now)
    assert meter.usable(now) == [True, True, False]
    meter.enabled[1] = False
    assert meter.usable(now) == [True, False, False]
    meter.packet(2, 1200, now + 0.01)
    assert meter.arriving_since[2] == now + 0.01  # back after a gap longer than LAYER_SILENCE
    assert LAYER_SILENCE <= 1.0


def test_the_bandwidth_estimate_follows_remb_cut_by_heavy_loss_and_is_reported_on_change_at_most_once_a_second():
    estimate = BandwidthEstimate()
    assert estimate.estimate() is None and estimate.report(0.0) is None
    estimate.remb_arrived(1_000_000, 0.0)
    assert estimate.report(0.0) == 1_000_000
    estimate.remb_arrived(1_050_000, 0.5)
    assert estimate.report(0.5) is None            # too soon
    assert estimate.report(0.5 + BANDWIDTH_REPORT_INTERVAL) is None  # less than 10% off
    assert not estimate.congested(2.0)
    estimate.remb_arrived(700_000, 2.0)             # a drop: congestion
    assert estimate.congested(2.0) and estimate.report(2.0) == 700_000
    assert not estimate.congested(2.0 + CONGESTION_MEMORY + 0.1)
    estimate.loss_reported(0.02, 9.0)
    assert estimate.estimate() == 700_000 and not estimate.congested(9.0)
    estimate.loss_reported(0.3, 10.0)
    assert estimate.estimate() == int(700_000 * 0.85) and estimate.congested(10.0)


def test_after_a_failed_up_switch_the_next_tries_go_one_layer_at_a_time():
    layers = Layers()
    layers.choose()
    layers.congested = True
    assert layers.choose() is None  # no budget known: nothing says which layer fits
    layers.budget = 200_000
    assert layers.choose() == (0, Reason.LOW_BANDWIDTH)
    layers.congested = False
    changes = layers.run(60)
    assert changes[0] == (1, Reason.OTHER)  # m first, not straight back to h


def test_a_publisher_sending_only_its_lowest_layer_of_three_is_followed_there():
    layers = Layers()
    layers.usable = [True, False, False]
    assert layers.choose() == (0, Reason.OTHER)
    assert layers.run(30) == []


def test_a_remb_dip_while_it_still_climbs_towards_what_is_sent_is_not_congestion_but_one_after_it_is():
    estimate = BandwidthEstimate()
    estimate.remb_arrived(600_000, 0.0, sending=1_500_000)
    estimate.remb_arrived(500_000, 1.0, sending=1_500_000)  # climbing after a switch up, a dip
    assert not estimate.congested(1.0)
    estimate.remb_arrived(1_600_000, 20.0, sending=1_500_000)
    estimate.remb_arrived(1_200_000, 21.0, sending=1_500_000)  # had caught up, then fell: congestion
    assert estimate.congested(21.0)


def test_a_remb_that_wavers_well_above_what_is_sent_is_not_congestion_and_the_layer_asked_for_comes():
    # A subscriber on the low layer (~100 kbit/s) whose receiver's estimate climbs with dips,
    # never below what it gets: nothing there says the link cannot carry more.
    estimate = BandwidthEstimate()
    now = 0.0
    for remb in (66_000, 120_000, 180_000, 150_000, 250_000, 200_000, 293_000, 240_000):
        estimate.remb_arrived(remb, now, sending=100_000)
        assert not estimate.congested(now), remb
        now += 1.0
    # Settled at what is sent, wavering a few percent under it (keyframes, a busy receiver).
    for remb in (120_000, 104_000, 118_000, 95_000, 110_000):
        estimate.remb_arrived(remb, now, sending=100_000)
        assert not estimate.congested(now), remb
        now += 1.0
    estimate.remb_arrived(80_000, now, sending=100_000)  # clearly below what is sent: congestion
    assert estimate.congested(now)


def test_asking_for_a_higher_layer_after_failed_up_switches_gets_there_after_the_usual_wait():
    layers = Layers(target=0)
    assert layers.choose() == (0, Reason.OTHER)
    layers.selector.up_delay = 8 * UP_DELAY  # up-switches that failed before
    layers.selector.stepwise = True
    layers.run(2 * UP_DELAY)
    layers.selector.set_target(2)
    assert layers.run(UP_DELAY + 0.5) == [(2, Reason.OTHER)]  # straight to the layer asked for
