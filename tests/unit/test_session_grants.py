"""The engine's session honours a participant's grants: what it may publish, per source, and whether it receives."""

from __future__ import annotations

import json

import pytest

from videoroomd.auth.tokens import Grants
from videoroomd.engine.session import Session, SessionError
from videoroomd.sdp.offer import MediaLine, SessionDescription


def offer(*lines: tuple[str, str, str]) -> SessionDescription:
    """(mid, kind, direction) per m-line."""
    return SessionDescription(tuple(MediaLine(i, kind, mid, direction, 9) for i, (mid, kind, direction) in enumerate(lines)),
                              "ufrag")


def events(out, endpoint_id) -> list[dict]:
    decoded = [json.loads(text) for target, text in out if target == endpoint_id]
    return [e["data"] if e["type"] == "custom" else e for e in decoded]


def kinds(out, endpoint_id) -> list[str]:
    return [e["type"] for e in events(out, endpoint_id)]


def answer(session: Session, endpoint: str, description: SessionDescription):
    """A receiving endpoint answers, and its media is up; returns (plan, out)."""
    plan = session.plan(endpoint, description, {}, {})
    return plan, session.answered(plan) + session.media_connected(endpoint)


def sending(session: Session, endpoint: str, *sources: str):
    """An offer sending one track per source (audio, video, screen); returns the plan."""
    lines = [(str(i), "audio" if s == "audio" else "video", "sendonly") for i, s in enumerate(sources)]
    tracks = {str(i): f"{endpoint}:t{i}" for i in range(len(sources))}
    metadata = {tracks[str(i)]: ({"type": "screen"} if s == "screen" else {}) for i, s in enumerate(sources)}
    return session.plan(endpoint, offer(*lines), tracks, metadata)


@pytest.mark.parametrize("allowed, published", [
    (frozenset(), []),
    (frozenset({"audio"}), ["audio"]),
    (frozenset({"video"}), ["video"]),
    (frozenset({"audio", "video"}), ["audio", "video"]),
    (frozenset({"screen"}), ["screen"]),
])
def test_only_the_granted_sources_are_published(allowed, published):
    session = Session()
    session.connect("a", None, grants=Grants(publish=allowed))
    session.connect("b", None)
    plan = sending(session, "a", "audio", "video", "screen")
    sources = {"a:t0": "audio", "a:t1": "video", "a:t2": "screen"}
    assert sorted(sources[t.id] for t in plan.publish) == sorted(published)
    assert set(plan.sending.values()) == {t for t, s in sources.items() if s in published}
    out = session.answered(plan)
    if published:
        added = next(e for e in events(out, "b") if e["type"] == "tracksAdded")
        assert sorted(sources[t] for t in added["data"]["tracks"]) == sorted(published)
    else:
        assert "tracksAdded" not in kinds(out, "b")  # the others hear of nothing
    assert session.track_count() == len(published)


def test_a_camera_cannot_become_a_screen_without_the_screen_grant():
    session = Session()
    session.connect("a", None, grants=Grants(publish=frozenset({"video"})))
    session.answered(sending(session, "a", "video"))
    with pytest.raises(SessionError, match="screen"):
        session.update_track_metadata("a", "a:t0", {"type": "screen"})


def test_without_the_subscribe_grant_nothing_is_received():
    session = Session()
    session.connect("a", None)
    session.connect("b", None, grants=Grants(subscribe=False))
    out = session.answered(sending(session, "a", "audio", "video"))
    assert kinds(out, "b") == ["tracksAdded"]  # told, but not asked to negotiate for them
    offer_data = events(session.renegotiate_tracks("b"), "b")  # its own renegotiation (to publish)
    assert offer_data[0]["data"]["tracksTypes"] == {"audio": 0, "video": 0}
    plan, _ = answer(session, "b", offer(("0", "audio", "recvonly"), ("1", "video", "recvonly")))
    assert plan.mid_to_track_id == {} and set(plan.inactive) == {"0", "1"}


def test_a_token_name_is_the_display_name_whatever_the_metadata_says():
    session = Session()
    session.connect("a", None)
    out = session.connect("b", {"displayName": "Someone else", "x": 1}, name="Bob")
    assert events(out, "a")[0]["data"]["metadata"] == {"displayName": "Bob", "x": 1}
    assert events(session.connect("c", None), "c")[0]["data"]["otherEndpoints"][1]["metadata"]["displayName"] == "Bob"
    out = session.update_endpoint_metadata("b", {"displayName": "Mallory"})
    assert events(out, "a")[0]["data"]["metadata"] == {"displayName": "Bob"}
