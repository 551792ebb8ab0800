"""A room's max_video_bitrate seen by headless Chromium publishing three layers: the answer
tells it (b=AS) and our REMB keeps to it, so it never turns on its top layer. (A module of its
own: it needs a browser and a media server without the other simulcast tests' call.)"""

from __future__ import annotations

import pytest
from playwright.sync_api import sync_playwright

from testsupport.browser import launch
from testsupport.simulcast_helpers import MediaDriver, offered_rids, page_with_media, sending_mids
from testsupport.wait import wait_for
from videoroomd.media.workers.commands import Answer, OpenRoom

pytestmark = pytest.mark.browser

TRACK = "camera"


def test_a_rooms_max_video_bitrate_keeps_a_publisher_under_it_so_its_top_layer_stays_off():
    media = MediaDriver()
    media.command(OpenRoom(room="capped", ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                           udp_ports=None, max_video_bitrate=600_000))
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            publisher = page_with_media(browser)
            offer = publisher.evaluate("publish(true)")
            answer = media.command(Answer(room="capped", endpoint="publisher", sdp=offer,
                                          sending={mid: TRACK for mid in sending_mids(offer)}, slots=[],
                                          simulcast=offered_rids(offer))).sdp
            assert "b=AS:600" in answer
            publisher.evaluate("sdp => accept(sdp)", answer)
            wait_for(lambda: publisher.evaluate("outbound()").get("m", {}).get("sent", 0) > 30, 30, "m is sent")
            # Uncapped, h comes within about 20 s (the other tests wait for it); capped, l and m
            # (150 + 500 kbit/s at most) already fill what the room allows.
            publisher.wait_for_timeout(25_000)
            sent = publisher.evaluate("outbound()")
            assert sent["h"]["sent"] == 0 and sent["m"]["sent"] > 0 and sent["l"]["sent"] > 0, sent
        finally:
            browser.close()
            media.close()
