"""Which of a client's ICE candidates the daemon pairs with its own (pure)."""

import pytest

from videoroomd.media.webrtc.candidates import reachable, without_unreachable
from videoroomd.sdp.candidates import candidate_host

LOOPBACK = ("127.0.0.1",)
PUBLIC = ("203.0.113.7",)


@pytest.mark.parametrize("remote, local, expected", [
    ("127.0.0.1", LOOPBACK, True),
    ("::1", LOOPBACK, True),
    ("192.0.2.2", LOOPBACK, False),          # a daemon keeping media on this machine sends no check elsewhere
    ("3f1c0d6e-aaaa.local", LOOPBACK, False),  # nor resolves mDNS names by multicast
    ("198.51.100.9", PUBLIC, True),
    ("127.0.0.1", PUBLIC, False),            # a public socket cannot reach the client's loopback
    ("3f1c0d6e-aaaa.local", PUBLIC, True),
    ("192.0.2.2", (), True),                 # every interface: as before
])
def test_loopback_pairs_only_with_loopback(remote, local, expected):
    assert reachable(remote, local) is expected


def test_an_offer_keeps_only_the_candidates_the_daemon_can_reach():
    sdp = "\r\n".join([
        "v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "a=candidate:1 1 udp 2122260223 192.0.2.2 50000 typ host generation 0",
        "a=candidate:2 1 udp 2122194687 127.0.0.1 50001 typ host generation 0",
        "a=candidate:3 1 udp 2122129151 abcd.local 50002 typ host generation 0",
        "a=end-of-candidates", ""])
    kept = without_unreachable(sdp, LOOPBACK)
    assert "127.0.0.1 50001" in kept and "192.0.2.2" not in kept and ".local" not in kept
    assert kept.endswith("a=end-of-candidates\r\n")
    assert candidate_host("candidate:1 1 udp 1 10.1.2.3 9 typ host") == "10.1.2.3" and candidate_host("nonsense") is None
