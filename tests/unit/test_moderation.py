"""Moderation requests read with limits, and what a room remembers of its moderators' actions (pure)."""

from __future__ import annotations

import pytest

from videoroomd.auth.tokens import AccessToken, Grants
from videoroomd.rooms.admission import JoinRefused
from videoroomd.rooms.moderation import MAX_BANS, ModerationRefused, ModerationRequest, RoomModeration, parse_request


def test_requests_are_read_with_their_defaults_and_the_reason_made_one_line():
    assert parse_request({"action": "mute", "peer": "p1"}) == ModerationRequest("mute", "p1")
    assert parse_request({"action": "remove", "peer": "p1", "reason": " be\n kind ", "ban_seconds": 60}) == \
        ModerationRequest("remove", "p1", "be kind", 60)
    assert parse_request({"action": "end"}).peer is None
    assert parse_request({"action": "unmute", "peer": "p", "source": "video"}).source == "video"
    assert parse_request({"action": "stop_screen", "peer": "p"}).source == "screen"


@pytest.mark.parametrize("payload, words", [
    ("mute", "must be an object"),
    ({"action": "mute", "peer": "p", "why": 1}, "unknown field 'why'"),
    ({"action": "kick", "peer": "p"}, "action must be one of"),
    ({"action": "mute"}, "mute needs peer"),
    ({"action": "mute", "peer": "x" * 65}, "at most 64"),
    ({"action": "end", "peer": "p"}, "takes no peer"),
    ({"action": "remove", "peer": "p", "reason": 5}, "reason must be a string"),
    ({"action": "remove", "peer": "p", "ban_seconds": True}, "ban_seconds must be a whole number"),
    ({"action": "remove", "peer": "p", "ban_seconds": 7 * 86400 + 1}, "from 0 to 604800"),
    ({"action": "mute", "peer": "p", "ban_seconds": 5}, "only with remove"),
    ({"action": "mute", "peer": "p", "source": "video"}, "source goes only with unmute"),
    ({"action": "unmute", "peer": "p", "source": "smell"}, "one of audio, video, screen"),
])
def test_a_malformed_request_says_which_field_is_wrong(payload, words):
    with pytest.raises(ModerationRefused) as refused:
        parse_request(payload)
    assert refused.value.code == "malformed" and words in refused.value.reason


def ticket(identity: str) -> AccessToken:
    return AccessToken(identity, None, "r", Grants(), "app", 0.0)


def test_bans_hold_against_the_identity_until_they_end_and_a_lock_lets_only_moderators_in():
    now = [1000.0]
    state = RoomModeration(wall_clock=lambda: now[0])
    assert state.ban("ann", 60) == 1060.0
    with pytest.raises(JoinRefused) as refused:
        state.check_join("r", ticket("ann"), moderator=False)
    assert refused.value.code == "banned" and "60 s" in refused.value.reason
    state.check_join("r", ticket("bob"), moderator=False)
    state.check_join("r", None, moderator=False)
    now[0] = 1061.0
    state.check_join("r", ticket("ann"), moderator=False)
    assert "ann" not in state.bans
    state.locked = True
    with pytest.raises(JoinRefused) as refused:
        state.check_join("r", ticket("bob"), moderator=False)
    assert refused.value.code == "room_locked"
    state.check_join("r", ticket("chair"), moderator=True)


def test_bans_are_bounded_the_soonest_to_end_going_first():
    state = RoomModeration(wall_clock=lambda: 0.0)
    for i in range(MAX_BANS):
        state.ban(f"p{i}", 100 + i)
    state.ban("late", 5000)
    assert len(state.bans) == MAX_BANS and "p0" not in state.bans and "late" in state.bans


def test_a_blocked_source_is_taken_from_the_grants_of_the_same_identity_until_unblocked():
    state = RoomModeration()
    who = RoomModeration.key("ann", "peer-1")
    state.block(who, "audio")
    assert state.is_blocked(who, "audio") and not state.is_blocked(RoomModeration.key(None, "peer-1"), "audio")
    assert state.grants_for("ann", Grants()).publish == {"video", "screen"}
    assert state.grants_for("bob", Grants()) == Grants() and state.grants_for(None, Grants()) == Grants()
    state.unblock(who, "audio")
    assert state.grants_for("ann", Grants()) == Grants() and not state.blocked
