"""Simulcast on the control side, as pure code: which layers an offer sends (simulcast_rids), what
each client hears of them (simulcastConfig, trackEncodingEnabled/Disabled, encodingSwitched,
bandwidthEstimation), and which requests go on to the media worker."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from videoroomd.engine import media_events as ev
from videoroomd.sdp import offer as sdp
from videoroomd.sdp.offer import SdpError, simulcast_rids
from videoroomd.engine.session import Session

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# The video m-line of Chromium's offer for the official client's simulcast track (abridged).
CHROME_VIDEO = """m=video 9 UDP/TLS/RTP/SAVPF 96 97
c=IN IP4 0.0.0.0
a=mid:1
a=sendonly
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id
a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id
a=rtpmap:96 VP8/90000
a=rid:l send
a=rid:m send
a=rid:h send
a=simulcast:send l;m;h
"""
AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\nc=IN IP4 0.0.0.0\na=mid:0\na=sendonly\na=rtpmap:111 opus/48000/2\n"
HEAD = "v=0\no=- 1 2 IN IP4 127.0.0.1\ns=-\nt=0 0\na=group:BUNDLE 0 1\n"


def offer_text(*sections: str, newline: str = "\r\n") -> str:
    return (HEAD + "".join(sections)).replace("\n", newline)


# -- simulcast_rids ---------------------------------------------------------------------------
def test_a_chromium_simulcast_offer_names_its_layers_low_to_high():
    assert simulcast_rids(offer_text(AUDIO, CHROME_VIDEO)) == {"1": ["l", "m", "h"]}
    assert simulcast_rids(offer_text(AUDIO, CHROME_VIDEO, newline="\n")) == {"1": ["l", "m", "h"]}


@pytest.mark.parametrize("change, expected", [
    (("a=simulcast:send l;m;h", "a=simulcast:send h;m;l"), ["h", "m", "l"]),          # the offer's order
    (("a=simulcast:send l;m;h", "a=simulcast:send ~l;m;h"), ["l", "m", "h"]),         # a paused layer is still one
    (("a=simulcast:send l;m;h", "a=simulcast:send l,x;m;h"), ["l", "m", "h"]),        # first alternative
    (("a=simulcast:send l;m;h", "a=simulcast:recv a send l;h"), ["l", "h"]),
    (("a=rid:m send\n", ""), ["l", "h"]),                                             # no a=rid line: not sent
    (("a=rid:m send", "a=rid:m recv"), ["l", "h"]),
    (("a=rid:l send", "a=rid:l send pt=96;max-width=320"), ["l", "m", "h"]),
    (("a=simulcast:send l;m;h", "a=simulcast:send q;r"), None),                        # no RID of it has a=rid
    (("a=simulcast:send l;m;h\n", ""), None),                                         # RIDs without a=simulcast
    (("m=video 9", "m=video 0"), None),                                               # a rejected m-line
    (("a=mid:1\n", ""), None),                                                        # no mid to name it by
])
def test_only_layers_with_both_a_rid_and_a_simulcast_line_count(change, expected):
    text = offer_text(AUDIO, CHROME_VIDEO.replace(*change))
    assert simulcast_rids(text) == ({"1": expected} if expected else {})


def test_audio_and_offers_without_simulcast_have_no_layers():
    assert simulcast_rids(offer_text(AUDIO)) == {}
    audio_with_rids = AUDIO + "a=rid:a send\na=rid:b send\na=simulcast:send a;b\n"
    assert simulcast_rids(offer_text(audio_with_rids)) == {}


def test_two_simulcast_video_lines_each_keep_their_own_layers():
    screen = CHROME_VIDEO.replace("a=mid:1", "a=mid:2").replace("l;m;h", "m;h").replace("a=rid:l send\n", "")
    assert simulcast_rids(offer_text(AUDIO, CHROME_VIDEO, screen)) == {"1": ["l", "m", "h"], "2": ["m", "h"]}


@pytest.mark.parametrize("change, message", [
    (("a=rid:l send", "a=rid:" + "x" * 17 + " send"), "line 19: a RID is 1 to 16 letters, digits, '-' or '_'"),
    (("a=rid:l send", "a=rid:l\u00e9 send"), "a RID is 1 to 16"),
    (("a=rid:l send", "a=rid:l"), "line 19: a=rid is 'a=rid:ID send|recv ...'"),
    (("a=rid:l send", "a=rid:l sideways"), "a=rid is 'a=rid:ID send|recv ...'"),
    (("a=simulcast:send l;m;h", "a=simulcast:send"), "a=simulcast is 'send LIST' and/or 'recv LIST'"),
    (("a=simulcast:send l;m;h", "a=simulcast:sideways l;m;h"), "direction 'sideways' is neither send nor recv"),
    (("a=simulcast:send l;m;h", "a=simulcast:send l;;h"), "a RID is 1 to 16"),
    (("a=simulcast:send l;m;h", "a=simulcast:send " + ";".join("r%d" % i for i in range(9))), "more than 8 simulcast layers"),
    (("a=rid:l send", "".join("a=rid:r%d send\n" % i for i in range(9))), "more than 8 a=rid lines in one m-line"),
    (("a=simulcast:send l;m;h", "a=simulcast:send l;m;h\na=simulcast:send l"), "a second a=simulcast"),
])
def test_malformed_or_oversized_layer_lines_are_refused_saying_what_and_where(change, message):
    with pytest.raises(SdpError) as refused:
        simulcast_rids(offer_text(AUDIO, CHROME_VIDEO.replace(*change, 1)))
    assert message in str(refused.value)


def test_simulcast_rids_keeps_the_offer_limits():
    with pytest.raises(SdpError, match="bytes; at most"):
        simulcast_rids("a=x\n" * (sdp.MAX_SDP_BYTES // 4 + 1))
    with pytest.raises(SdpError, match="characters long"):
        simulcast_rids(offer_text(AUDIO, CHROME_VIDEO) + "a=" + "x" * sdp.MAX_LINE_LENGTH)
    with pytest.raises(SdpError, match="must be a string"):
        simulcast_rids(None)  # type: ignore[arg-type]


rid_names = st.sampled_from(["l", "m", "h", "q", "x-1", "", "~l", "l,m", "é", "a" * 17])
sdp_lines = st.one_of(
    st.sampled_from(["m=video 9 UDP 96", "m=audio 9 UDP 111", "m=video 0 UDP 96", "m=video", "a=mid:0", "a=mid:1",
                     "a=sendonly", "v=0", "", "a=simulcast:", "a=rid:"]),
    st.builds("a=rid:{} {}".format, rid_names, st.sampled_from(["send", "recv", "", "send pt=96"])),
    st.builds("a=simulcast:{} {}".format, st.sampled_from(["send", "recv", "x", ""]),
              st.lists(rid_names, max_size=10).map(";".join)),
    st.text(max_size=30).map(lambda t: "a=" + t),
)


@SETTINGS
@given(st.lists(sdp_lines, max_size=40), st.sampled_from(["\r\n", "\n"]))
def test_any_offer_gives_bounded_layers_or_an_sdp_error(lines, newline):
    try:
        layers = simulcast_rids(newline.join(lines))
    except SdpError as error:
        assert str(error)
        return
    for mid, rids in layers.items():
        assert isinstance(mid, str) and 1 <= len(rids) <= sdp.MAX_RIDS
        assert len(set(rids)) == len(rids)
        assert all(1 <= len(r) <= sdp.MAX_RID_LENGTH and r.replace("-", "").replace("_", "").isalnum() and r.isascii() for r in rids)


@SETTINGS
@given(st.text(max_size=400))
def test_any_text_gives_layers_or_an_sdp_error(text):
    try:
        simulcast_rids(text)
    except SdpError:
        pass


# -- the session -----------------------------------------------------------------------------
def decoded(out, endpoint_id):
    events = []
    for target, text in out:
        if target == endpoint_id:
            event = json.loads(text)
            events.append(event["data"] if event["type"] == "custom" else event)
    return events


def room_with_a_simulcast_publisher(rids=("l", "m", "h")):
    """a publishes audio (mid 0) and simulcast video (mid 1); b is connected and knows of both."""
    session = Session()
    session.connect("a", {})
    session.connect("b", {})
    description = sdp.parse(offer_text(AUDIO, CHROME_VIDEO))
    plan = session.plan("a", description, {"0": "a:audio", "1": "a:video"}, {}, {"1": list(rids)} if rids else {})
    out = session.answered(plan)
    return session, out


def test_a_simulcast_track_is_announced_with_its_layers_and_a_plain_one_without():
    session, out = room_with_a_simulcast_publisher()
    (added,) = [e for e in decoded(out, "b") if e["type"] == "tracksAdded"]
    tracks = added["data"]["tracks"]
    assert tracks["a:video"]["simulcastConfig"] == {"enabled": True, "activeEncodings": ["l", "m", "h"], "disabledEncodings": []}
    assert tracks["a:audio"]["simulcastConfig"] == ev.NO_SIMULCAST


def test_a_room_without_simulcast_announces_every_track_as_one_stream():
    session, out = room_with_a_simulcast_publisher(rids=None)
    (added,) = [e for e in decoded(out, "b") if e["type"] == "tracksAdded"]
    assert all(t["simulcastConfig"] == ev.NO_SIMULCAST for t in added["data"]["tracks"].values())
    assert session.encoding_changes("a", "a:video", "h", False) is False
    assert session.target("b", "a:video", "l") == "the track is not simulcast"


def test_a_disabled_layer_is_told_to_the_others_once_and_shown_to_late_joiners():
    session, _ = room_with_a_simulcast_publisher()
    changed, out = session.set_encoding("a", "a:video", "h", False)
    assert changed and decoded(out, "b") == [
        {"type": "trackEncodingDisabled", "data": {"endpointId": "a", "trackId": "a:video", "encoding": "h"}}]
    assert decoded(out, "a") == []
    # the client repeats it after every answer: nothing more is said
    assert session.set_encoding("a", "a:video", "h", False) == (False, [])
    connected = decoded(session.connect("c", {}), "c")[0]
    (a,) = [e for e in connected["data"]["otherEndpoints"] if e["id"] == "a"]
    assert a["tracks"]["a:video"]["simulcastConfig"] == {"enabled": True, "activeEncodings": ["l", "m"], "disabledEncodings": ["h"]}
    changed, out = session.set_encoding("a", "a:video", "h", True)
    assert changed and [e["type"] for e in decoded(out, "c")] == ["trackEncodingEnabled"]
    connected = decoded(session.connect("d", {}), "d")[0]
    (a,) = [e for e in connected["data"]["otherEndpoints"] if e["id"] == "a"]
    assert a["tracks"]["a:video"]["simulcastConfig"]["activeEncodings"] == ["l", "m", "h"]


@pytest.mark.parametrize("who, track, encoding", [
    ("a", "a:nope", "h"), ("a", "a:audio", "h"), ("a", "a:video", "x"), ("b", "a:video", "h"),
])
def test_layer_changes_for_what_is_not_the_senders_simulcast_layer_change_nothing(who, track, encoding):
    session, _ = room_with_a_simulcast_publisher()
    assert session.set_encoding(who, track, encoding, False) == (False, [])
    assert session.tracks()["a:video"].disabled == set()


def test_layer_requests_are_checked_against_the_track_and_repeats_are_dropped():
    session, _ = room_with_a_simulcast_publisher()
    assert session.target("b", "a:nope", "l") == "no such remote track"
    assert session.target("a", "a:video", "l") == "no such remote track"  # its own
    assert session.target("b", "a:audio", "l") == "the track is not simulcast"
    assert session.target("b", "a:video", "x") == "the track has no layer 'x' (it has l, m, h)"
    assert session.target("b", "a:video", "h") == "already the layer asked for"  # h is where everyone starts
    assert session.target("b", "a:video", "l") is None
    assert session.target("b", "a:video", "l") == "already the layer asked for"
    assert session.target("b", "a:video", "h") is None


def test_encoding_switched_reaches_only_a_subscriber_that_knows_the_track_with_the_clients_reason():
    session, _ = room_with_a_simulcast_publisher()
    out = session.encoding_switched("b", "a:video", "m", "low_bandwidth")
    assert decoded(out, "b") == [{"type": "encodingSwitched", "data": {
        "endpointId": "a", "trackId": "a:video", "encoding": "m", "reason": "lowBandwidth"}}]
    assert json.loads(out[0][1])["type"] == "custom"
    assert decoded(session.encoding_switched("b", "a:video", "l", "encoding_inactive"), "b")[0]["data"]["reason"] == "encodingInactive"
    assert decoded(session.encoding_switched("b", "a:video", "l", "other"), "b")[0]["data"]["reason"] == "other"
    assert decoded(session.encoding_switched("b", "a:video", "l", "???"), "b")[0]["data"]["reason"] == "other"
    session.connect("c", {})  # knows of a:video from "connected"
    assert session.encoding_switched("c", "a:video", "l", "other")
    assert session.encoding_switched("a", "a:video", "l", "other") == []    # its own track
    assert session.encoding_switched("b", "a:gone", "l", "other") == []
    assert session.encoding_switched("nobody", "a:video", "l", "other") == []


def test_bandwidth_estimation_goes_to_that_client_in_bits_per_second():
    session, _ = room_with_a_simulcast_publisher()
    assert decoded(session.bandwidth("b", 1_500_000), "b") == [{"type": "bandwidthEstimation", "data": {"estimation": 1_500_000}}]
    assert session.bandwidth("gone", 1) == []


def test_a_removed_track_forgets_the_layers_asked_for_it():
    session, _ = room_with_a_simulcast_publisher()
    assert session.target("b", "a:video", "l") is None
    session.remove("a")
    assert session.endpoints["b"].targets == {}
