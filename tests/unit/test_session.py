"""The engine's negotiation rules as pure code: who learns of which track, and when each client renegotiates."""

from __future__ import annotations

import json

import pytest

from videoroomd.engine import media_events as ev
from videoroomd.sdp.offer import MediaLine, SessionDescription, parse
from videoroomd.engine.session import Session, SessionError


def offer(*lines: tuple[str, str, str]) -> SessionDescription:
    """(mid, kind, direction) per m-line."""
    return SessionDescription(tuple(MediaLine(i, kind, mid, direction, 9) for i, (mid, kind, direction) in enumerate(lines)), "ufrag")


def events(out, endpoint_id):
    decoded = []
    for target, text in out:
        if target == endpoint_id:
            event = json.loads(text)
            if event["type"] == "custom":
                event = event["data"]
            decoded.append(event)
    return decoded


def kinds(out, endpoint_id):
    return [e["type"] for e in events(out, endpoint_id)]


def publish(session: Session, endpoint: str, *kinds_: str):
    """The endpoint answers an offer sending one track per kind, and its media comes up;
    returns (plan, out, track ids)."""
    lines = [(str(i), kind, "sendonly") for i, kind in enumerate(kinds_)]
    tracks = {str(i): f"{endpoint}:t{i}" for i in range(len(kinds_))}
    plan = session.plan(endpoint, offer(*lines), tracks, {t: {"n": t} for t in tracks.values()})
    out = session.answered(plan)
    out += session.media_connected(endpoint) + settled(session, endpoint)
    return plan, out, list(tracks.values())


def settled(session: Session, endpoint: str):
    """The client has applied its last answer (ANSWER_SETTLE later)."""
    return session.settled(endpoint, session.endpoints[endpoint].answers)


def answer(session: Session, endpoint: str, description: SessionDescription):
    """A receiving endpoint answers, its media is up and it has applied the answer; returns (plan, out)."""
    plan = session.plan(endpoint, description, {}, {})
    out = session.answered(plan)
    return plan, out + session.media_connected(endpoint) + settled(session, endpoint)


def a_publishing_video(*others: str) -> Session:
    """A session in which "a" published a video and ``others`` connected too, none of them answered yet."""
    session = Session()
    for endpoint in ("a", *others):
        session.connect(endpoint, None)
    session.renegotiate_tracks("a")
    publish(session, "a", "video")
    return session


def test_first_endpoint_gets_no_offer_data_and_the_second_learns_of_the_first():
    session = Session()
    out = session.connect("a", {"displayName": "A"})
    assert kinds(out, "a") == ["connected"]
    out = session.connect("b", {"displayName": "B"})
    assert events(out, "b")[0]["data"] == {"id": "b", "otherEndpoints": [
        {"id": "a", "type": "webrtc", "metadata": {"displayName": "A"}, "tracks": {}}]}
    assert events(out, "a") == [{"type": "endpointAdded", "data": {"id": "b", "type": "webrtc", "metadata": {"displayName": "B"}}}]


def test_publishing_announces_tracks_and_renegotiates_the_others_once_at_a_time():
    session = Session()
    session.connect("a", None)
    session.connect("b", None)
    session.renegotiate_tracks("a")
    _, out, (audio, video) = publish(session, "a", "audio", "video")
    assert kinds(out, "b") == ["tracksAdded", "offerData"]
    assert events(out, "b")[1]["data"] == {"tracksTypes": {"audio": 1, "video": 1}, "integratedTurnServers": []}
    # b is negotiating: another reason to renegotiate waits for its answer
    session.renegotiate_tracks("b")
    assert session.renegotiate_tracks("b") == []
    plan, out = answer(session, "b", offer(("0", "audio", "recvonly"), ("1", "video", "recvonly")))
    assert plan.mid_to_track_id == {"0": audio, "1": video}
    assert kinds(out, "b") == ["offerData"]  # the pending one


def test_receive_slots_never_shrink_and_a_freed_slot_is_inactive_once():
    session = a_publishing_video("b", "c")
    session.renegotiate_tracks("b")
    publish(session, "b", "video")
    two_slots = offer(("0", "video", "recvonly"), ("1", "video", "recvonly"))
    plan, out = answer(session, "c", two_slots)
    assert kinds(out, "c") == ["offerData"]  # b's track came while c negotiated
    plan, out = answer(session, "c", two_slots)
    assert kinds(out, "c") == []
    assert set(plan.mid_to_track_id.values()) == {"a:t0", "b:t0"}
    freed_mid = next(m for m, t in plan.mid_to_track_id.items() if t == "a:t0")
    out = session.remove("a")
    assert kinds(out, "c") == ["tracksRemoved", "endpointRemoved", "offerData"]
    assert events(out, "c")[2]["data"]["tracksTypes"] == {"audio": 0, "video": 2}  # not 1: slots never shrink
    plan = session.plan("c", two_slots, {}, {})
    assert plan.inactive == (freed_mid,) and list(plan.mid_to_track_id.values()) == ["b:t0"]
    session.answered(plan)
    # a new publisher may now take the freed slot
    session.connect("d", None)
    session.renegotiate_tracks("d")
    publish(session, "d", "video")
    plan = session.plan("c", two_slots, {}, {})
    assert plan.mid_to_track_id[freed_mid] == "d:t0" and plan.inactive == ()


def test_tracks_removed_only_for_tracks_the_client_has_in_an_answer():
    session = a_publishing_video("b")
    # b was told of the track but has not negotiated it yet
    out = session.remove("a")
    assert kinds(out, "b") == ["endpointRemoved"]


def test_unpublishing_a_track_removes_it_from_receivers():
    session = Session()
    session.connect("a", None)
    session.connect("b", None)
    session.renegotiate_tracks("a")
    _, _, (audio, video) = publish(session, "a", "audio", "video")
    answer(session, "b", offer(("0", "audio", "recvonly"), ("1", "video", "recvonly")))
    session.renegotiate_tracks("a")
    plan = session.plan("a", offer(("0", "audio", "sendonly"), ("1", "video", "inactive")), {"0": audio}, {})
    out = session.answered(plan)
    assert events(out, "b")[0] == {"type": "tracksRemoved", "data": {"endpointId": "a", "trackIds": [video]}}
    assert kinds(out, "b") == ["tracksRemoved", "offerData"]


def test_metadata_updates_reach_those_who_know_the_track():
    session = Session()
    session.connect("a", None)
    session.connect("b", None)
    session.renegotiate_tracks("a")
    _, _, (audio,) = publish(session, "a", "audio")
    out = session.update_track_metadata("a", audio, {"muted": True})
    assert events(out, "b") == [{"type": "trackUpdated", "data": {"endpointId": "a", "trackId": audio, "metadata": {"muted": True}}}]
    assert kinds(session.update_endpoint_metadata("a", {"displayName": "Z"}), "b") == ["endpointUpdated"]
    with pytest.raises(SessionError):
        session.update_track_metadata("a", "a:nope", {})


def test_offers_that_break_the_rules_are_refused():
    session = Session()
    session.connect("a", None)
    with pytest.raises(SessionError, match="mid '5'"):
        session.plan("a", offer(("0", "video", "sendonly")), {"5": "a:x"}, {})
    with pytest.raises(SessionError, match="must be"):
        session.plan("a", offer(("0", "video", "sendonly")), {"0": "someone-else:x"}, {})
    with pytest.raises(SessionError, match="connect first"):
        session.renegotiate_tracks("stranger")


def test_voice_activity_goes_to_receivers_and_to_late_receivers_too():
    session = Session()
    session.connect("a", None)
    session.connect("b", None)
    session.renegotiate_tracks("a")
    _, _, (audio,) = publish(session, "a", "audio")
    assert session.voice_activity(audio, True) == []  # nobody receives it yet
    out = session.answered(session.plan("b", offer(("0", "audio", "recvonly")), {}, {}))
    assert events(out, "b") == [{"type": "vadNotification", "data": {"trackId": audio, "status": "speech"}}]
    assert kinds(session.voice_activity(audio, False), "b") == ["vadNotification"]


def test_turn_servers_and_media_event_parsing():
    session = Session([{"serverAddr": "127.0.0.1", "serverPort": 3478, "transport": "udp", "username": "u", "password": "p"}])
    session.connect("a", None)
    (_, text), = session.renegotiate_tracks("a")
    assert json.loads(text)["data"]["data"]["integratedTurnServers"][0]["serverPort"] == 3478
    assert ev.parse('{"type":"custom","data":{"type":"renegotiateTracks"}}') == ev.ClientEvent("renegotiateTracks", {})
    for bad, message in [("[", "not JSON"), ('{"type":"nope"}', "unknown media event 'nope'"),
                         ('{"type":"custom","data":{"type":"connect"}}', "unknown custom media event 'connect'"),
                         ('{"type":"connect","data":[1]}', "data must be an object")]:
        with pytest.raises(ev.MediaEventError, match=message):
            ev.parse(bad)


def test_sdp_reading():
    text = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n" \
           "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=sendonly\r\n" \
           "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=recvonly\r\n"
    description = parse(text)
    assert description.ice_ufrag == "abcd"
    assert [(m.mid, m.kind, m.direction) for m in description.media] == [("0", "audio", "sendonly"), ("1", "video", "recvonly")]


def test_renegotiations_wait_for_the_first_connection_to_come_up():
    session = a_publishing_video("b")
    session.answered(session.plan("b", offer(("0", "video", "recvonly")), {}, {}))
    assert settled(session, "b") == []
    # a new track while b's first connection is still being set up: held back
    session.connect("c", None)
    session.renegotiate_tracks("c")
    _, out, _ = publish(session, "c", "video")
    assert kinds(out, "b") == ["tracksAdded"]
    assert kinds(session.media_connected("b"), "b") == ["offerData"]
    assert session.media_connected("b") == []  # once


def test_a_renegotiation_waits_until_the_client_has_applied_the_last_answer():
    # The official client applies an answer asynchronously; an offerData arriving meanwhile never
    # gets its sdpOffer, and both sides then wait for each other for good.
    session = a_publishing_video("b")
    plan, _ = answer(session, "b", offer(("0", "video", "recvonly")))
    session.renegotiate_tracks("b")  # b adds a track: it gets its offerData at once (settled)
    plan = session.plan("b", offer(("0", "video", "recvonly"), ("1", "audio", "sendonly")), {"1": "b:mic"},
                        {"b:mic": {}})
    session.connect("c", None)
    session.renegotiate_tracks("c")
    out = session.answered(session.plan("c", offer(("0", "video", "sendonly")), {"0": "c:cam"}, {"c:cam": {}}))
    assert kinds(out, "b") == ["tracksAdded"]  # b negotiates: its renegotiation for c's track waits
    out = session.answered(plan)
    assert kinds(out, "b") == []  # not with the answer: b is still applying it
    number = session.endpoints["b"].answers
    assert session.settled("b", number - 1) == []  # an earlier answer's settling says nothing now
    assert kinds(session.settled("b", number), "b") == ["offerData"]
    assert session.settled("b", number) == []  # once
    assert session.settled("gone", 1) == []


def test_a_shared_screen_is_forwarded_like_any_track_and_a_second_one_is_refused():
    session = Session()
    session.connect("a", None)
    session.connect("b", None)
    screen = {"kind": "video", "type": "screen", "muted": False}
    lines = offer(("0", "video", "sendonly"), ("1", "video", "sendonly"))
    plan = session.plan("a", lines, {"0": "a:camera", "1": "a:screen"}, {"a:camera": {"kind": "video"}, "a:screen": screen})
    out = session.answered(plan)
    added = events(out, "b")[0]
    assert added["type"] == "tracksAdded"
    assert added["data"]["tracks"]["a:screen"]["metadata"] == screen  # the others can tell it is a screen
    two = offer(("0", "video", "sendonly"), ("1", "video", "sendonly"), ("2", "video", "sendonly"))
    with pytest.raises(SessionError, match="one shared screen per person: this offer sends 2"):
        session.plan("a", two, {"0": "a:camera", "1": "a:screen", "2": "a:screen2"}, {"a:screen2": screen})
    with pytest.raises(SessionError, match="one shared screen per person"):
        session.update_track_metadata("a", "a:camera", screen)
    # stopping the share and sharing again (a new track) is fine
    session.answered(session.plan("a", offer(("0", "video", "sendonly"), ("1", "video", "inactive")), {"0": "a:camera"}, {}))
    again = offer(("0", "video", "sendonly"), ("1", "video", "inactive"), ("2", "video", "sendonly"))
    session.plan("a", again, {"0": "a:camera", "2": "a:screen2"}, {"a:screen2": screen})


def test_offers_bringing_fresh_mids_every_time_are_refused_once_they_add_up():
    from videoroomd.engine.session import MAX_MIDS

    session = Session()
    session.connect("a", None)
    per_offer = 32
    for round_ in range(MAX_MIDS // per_offer):
        plan = session.plan("a", offer(*[(f"r{round_}m{i}", "video", "recvonly") for i in range(per_offer)]), {}, {})
        session.answered(plan)
    with pytest.raises(SessionError, match=f"at most {MAX_MIDS} mids in all"):
        session.plan("a", offer(("fresh", "video", "recvonly")), {}, {})
    # the mids it has already are always fine
    session.plan("a", offer(*[(f"r0m{i}", "video", "recvonly") for i in range(per_offer)]), {}, {})


def test_an_offer_with_other_than_audio_and_video_is_refused_unless_rejected():
    session = Session()
    session.connect("a", None)
    with pytest.raises(SessionError, match="m-line 1: 'application' m-lines are not served"):
        session.plan("a", offer(("0", "video", "recvonly"), ("1", "application", "sendrecv")), {}, {})
    rejected = SessionDescription((MediaLine(0, "video", "0", "recvonly", 9), MediaLine(1, "application", "1", "sendrecv", 0)), "u")
    session.plan("a", rejected, {}, {})
