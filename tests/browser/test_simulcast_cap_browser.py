"""A room's max_video_bitrate seen by headless Chromium publishing three layers: the answer
tells it (b=AS) and our REMB keeps to it, so it never turns on its top layer. (A module of its
own: it needs a browser and a media server without the other simulcast tests' call.)"""

from __future__ import annotations

import pytest

from testsupport.simulcast_helpers import MediaDriver, offered_rids, page_with_media, sending_mids
from testsupport.wait import wait_for
from videoroomd.media.workers.commands import Answer, OpenRoom

pytestmark = pytest.mark.browser

TRACK = "camera"
CAP = 600_000

# Chromium's own account of its sending: its bandwidth estimate (what it may send in all, the
# candidate pair's availableOutgoingBitrate) and, per layer, the frames sent, the bitrate its
# allocator gives the layer, and why the layer's quality is limited.
SENDING = """async () => {
    const stats = await window.pc.getStats();
    const out = {estimate: 0, layers: {}};
    for (const s of stats.values()) {
        if (s.type === 'candidate-pair' && s.availableOutgoingBitrate)
            out.estimate = Math.max(out.estimate, s.availableOutgoingBitrate);
        if (s.type === 'outbound-rtp' && s.kind === 'video')
            out.layers[s.rid] = {sent: s.framesSent || 0, target: s.targetBitrate || 0, reason: s.qualityLimitationReason};
    }
    return out;
}"""


def test_a_rooms_max_video_bitrate_keeps_a_publisher_under_it_so_its_top_layer_stays_off(browser):
    media = MediaDriver()
    media.command(OpenRoom(room="capped", ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                           udp_ports=None, max_video_bitrate=CAP))
    try:
        publisher = page_with_media(browser)
        offer = publisher.evaluate("publish(true)")
        answer = media.command(Answer(room="capped", endpoint="publisher", sdp=offer,
                                      sending={mid: TRACK for mid in sending_mids(offer)}, slots=[],
                                      simulcast=offered_rids(offer))).sdp
        assert "b=AS:600" in answer
        publisher.evaluate("sdp => accept(sdp)", answer)
        wait_for(lambda: publisher.evaluate("outbound()").get("m", {}).get("sent", 0) > 30, 30, "m is sent")
        # Uncapped, Chromium's estimate climbs past what l, m and h need together and h comes
        # within about 20 s (the other tests wait for it). Capped, its estimate rises to the
        # cap and stays under it: l and m (150 + 500 kbit/s at most) are given all of it, m less
        # than its own 500 kbit/s, so nothing is left for h. Seen at the cap and held under it
        # for some seconds, that is the state h never leaves.
        reached = wait_for(lambda: (s := publisher.evaluate(SENDING))["estimate"] >= 0.9 * CAP and s, 30,
                           "Chromium's bandwidth estimate reaching the cap",
                           details=lambda: str(publisher.evaluate(SENDING)))
        for _ in range(5):
            sending = publisher.evaluate(SENDING)
            layers = sending["layers"]
            assert 0 < sending["estimate"] <= CAP, (reached, sending)
            assert layers["h"]["sent"] == 0 and layers["h"]["target"] == 0, (reached, sending)
            assert layers["l"]["target"] + layers["m"]["target"] <= CAP, (reached, sending)
            assert 0 < layers["m"]["target"] < 500_000, (reached, sending)
            publisher.wait_for_timeout(1000)
        sent = publisher.evaluate("outbound()")
        assert sent["h"]["sent"] == 0 and sent["m"]["sent"] > 0 and sent["l"]["sent"] > 0, sent
    finally:
        media.close()
