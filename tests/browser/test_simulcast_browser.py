"""Simulcast end to end: headless Chromium publishes its 1280x720 fake camera in three layers
(l, m, h: a quarter, half and full size) to the media server, driven with its messages as the
control plane drives it; Chromium subscribers each decode the layer they asked for."""

from __future__ import annotations

import pytest

from testsupport.simulcast_helpers import Bottleneck, MediaDriver, offered_rids, page_with_media, sending_mids, through
from testsupport.wait import wait_for
from videoroomd.media.workers.commands import Answer, CloseEndpoint, LayerEnabled, OpenRoom, Slot, TargetLayer
from videoroomd.media.workers.events import Bandwidth, LayerSwitched

pytestmark = pytest.mark.browser

ROOM = "sim"
TRACK = "camera"


def join_as_subscriber(media: MediaDriver, browser, endpoint: str, target: str | None, relay: Bottleneck | None = None):
    page = page_with_media(browser)
    offer = page.evaluate("subscribe()")
    mid = next(line[6:] for line in offer.split("\r\n") if line.startswith("a=mid:"))
    if target is not None:  # before its first answer, as a client may ask: it holds once it subscribes
        assert media.command(TargetLayer(room=ROOM, endpoint=endpoint, track_id=TRACK, layer=target)) is True
    answer = media.command(Answer(room=ROOM, endpoint=endpoint, sdp=offer, sending={},
                                  slots=(Slot(mid, TRACK, "publisher"),))).sdp
    if relay is not None:
        answer, relay.server = through(answer, relay.port)
    page.evaluate("sdp => accept(sdp)", answer)
    return page


def decoded_width(page) -> int:
    """The frame width the page decodes now, once frames are decoded."""
    stats = page.evaluate("inbound()")
    return stats["width"] if stats["decoded"] > 0 else 0


def layers_of(media: MediaDriver, endpoint: str) -> list[tuple[str, str]]:
    return [(e.layer, e.reason) for e in media.of_type(LayerSwitched) if e.endpoint == endpoint]


@pytest.fixture(scope="module")
def call(chromiums):
    media = MediaDriver()
    media.command(OpenRoom(room=ROOM, ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                           udp_ports=None, max_video_bitrate=None))
    with chromiums.lend() as browser:
        try:
            publisher = page_with_media(browser)
            offer = publisher.evaluate("publish(true)")
            rids = offered_rids(offer)
            assert list(rids.values()) == [["l", "m", "h"]]
            answer = media.command(Answer(room=ROOM, endpoint="publisher", sdp=offer,
                                          sending={mid: TRACK for mid in sending_mids(offer)}, slots=[], simulcast=rids)).sdp
            assert "a=simulcast:recv l;m;h" in answer and "a=rid:h recv" in answer
            assert "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id" in answer
            publisher.evaluate("sdp => accept(sdp)", answer)
            small = join_as_subscriber(media, browser, "small", "l")
            large = join_as_subscriber(media, browser, "large", "h")
            yield media, publisher, small, large
        finally:
            media.close()


def test_a_subscriber_asking_l_decodes_320x180_and_one_asking_h_decodes_1280x720(call):
    media, publisher, small, large = call
    # The publisher's browser turns h on once its bandwidth estimate allows it: within seconds.
    # (Until its estimate is well above what the three layers need, it may pause h now and then:
    # the h subscriber then falls back to m and returns.)
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber decodes 1280 wide")
    assert large.evaluate("inbound()")["height"] == 720
    assert decoded_width(small) == 320 and small.evaluate("inbound()")["height"] == 180
    assert layers_of(media, "small") == [("l", "other")]
    assert ("h", "other") in layers_of(media, "large")
    assert "low_bandwidth" not in [reason for _, reason in layers_of(media, "large")]
    assert all(e.bps > 0 for e in media.of_type(Bandwidth))
    # Still decoding, both: every switch the large one made went on in one stream.
    before = {name: page.evaluate("inbound()")["decoded"] for name, page in (("small", small), ("large", large))}
    wait_for(lambda: all(page.evaluate("inbound()")["decoded"] > before[name] + 20
                         for name, page in (("small", small), ("large", large))), 10, "both keep decoding")


def test_a_publisher_turning_h_off_moves_its_h_subscriber_down_and_back_up_when_it_returns(call):
    media, publisher, small, large = call
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber decodes 1280 wide")
    publisher.evaluate("setActive('h', false)")
    assert media.command(LayerEnabled(room=ROOM, track_id=TRACK, layer="h", enabled=False)) is True
    wait_for(lambda: decoded_width(large) == 640, 30, "the h subscriber falls back to m")
    assert layers_of(media, "large")[-1] == ("m", "encoding_inactive")
    publisher.evaluate("setActive('h', true)")
    assert media.command(LayerEnabled(room=ROOM, track_id=TRACK, layer="h", enabled=True)) is True
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber goes back up to h")
    assert decoded_width(small) == 320  # the l subscriber never noticed


def test_a_layer_that_stops_arriving_unannounced_is_left_for_the_next_one_down(call):
    media, publisher, small, large = call
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber decodes 1280 wide")
    publisher.evaluate("setActive('h', false)")  # no layer_enabled: the server notices the silence
    wait_for(lambda: decoded_width(large) == 640, 30, "the h subscriber falls back to m")
    assert layers_of(media, "large")[-1] == ("m", "encoding_inactive")
    publisher.evaluate("setActive('h', true)")
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber goes back up to h")


def test_bad_layer_requests_are_refused_harmlessly_and_the_subscribers_keep_decoding(call):
    media, publisher, small, large = call
    assert media.command(TargetLayer(room=ROOM, endpoint="small", track_id="nope", layer="h")) is False
    assert media.command(TargetLayer(room=ROOM, endpoint="small", track_id=TRACK, layer="x")) is False
    assert media.command(TargetLayer(room=ROOM, endpoint="small", track_id=TRACK, layer="")) is False
    assert media.command(LayerEnabled(room=ROOM, track_id="nope", layer="h", enabled=False)) is False
    for i in range(300):  # a flood, flapping between the ends
        assert media.command(TargetLayer(room=ROOM, endpoint="small", track_id=TRACK, layer="lh"[i % 2])) is True
    assert media.command(TargetLayer(room=ROOM, endpoint="small", track_id=TRACK, layer="l")) is True
    wait_for(lambda: decoded_width(small) == 320, 20, "the l subscriber is back on l")
    before = large.evaluate("inbound()")["decoded"]
    wait_for(lambda: large.evaluate("inbound()")["decoded"] > before + 20, 10, "the h subscriber keeps decoding")
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber is on h")


def test_a_subscriber_behind_a_slow_link_ends_on_a_lower_layer_while_an_unlimited_one_stays_on_h(call):
    media, publisher, small, large = call
    wait_for(lambda: decoded_width(large) == 1280, 60, "the h subscriber decodes 1280 wide")
    relay = Bottleneck(bps=300_000)  # l fits, m (up to 500 kbit/s) does not
    try:
        slow = join_as_subscriber(media, media_browser(small), "slow", "h", relay)
        wait_for(lambda: ("low_bandwidth" in [r for _, r in layers_of(media, "slow")]), 45,
                 "the slow subscriber is moved down for its bandwidth")
        wait_for(lambda: 0 < decoded_width(slow) < 1280, 20, "the slow subscriber decodes a lower layer")
        widths = []
        for _ in range(16):  # and stays below h: a try up is one layer, and each waits longer than the last
            slow.wait_for_timeout(500)
            widths.append(decoded_width(slow))
        assert all(widths) and sum(w < 1280 for w in widths) >= 12, (widths, layers_of(media, "slow"))
        before = slow.evaluate("inbound()")["decoded"]
        wait_for(lambda: slow.evaluate("inbound()")["decoded"] > before + 10, 20, "the slow subscriber keeps decoding")
        # The unlimited one was never moved down for bandwidth (h may pause at the publisher).
        assert "low_bandwidth" not in [reason for _, reason in layers_of(media, "large")]
        wait_for(lambda: decoded_width(large) == 1280, 60, "the unlimited subscriber is on h")
        assert relay.dropped > 0
        slow.close()
        media.command(CloseEndpoint(room=ROOM, endpoint="slow"))
    finally:
        relay.close()


def media_browser(page):
    return page.context.browser

