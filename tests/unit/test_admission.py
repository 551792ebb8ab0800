"""The admission gate, without a daemon: each refusal a join can meet, its code and its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from videoroomd.config import RoomConfig
from videoroomd.config.load import parse
from videoroomd.rooms.admission import Admission, AdmissionGate, JoinRefused, check_entry

ROOMS = """
[server]
dynamic_rooms = true
max_dynamic_rooms = 2
[defaults]
password = "sesame"
[rooms.board]
password = "secret"
max_peers = 2
[rooms.lobby]
"""


def gate(text: str = ROOMS) -> AdmissionGate:
    return AdmissionGate(parse(text, "test.toml", Path(".")))


def refusal(call, *args, **kwargs) -> tuple[str, str]:
    with pytest.raises(JoinRefused) as refused:
        call(*args, **kwargs)
    return refused.value.code, refused.value.reason


def test_a_good_join_is_admitted_to_its_rooms_settings():
    admitted = gate().admit("board", "secret", "192.0.2.1", running=None, now=0.0)
    assert admitted.config.name == "board" and admitted.config.max_peers == 2 and not admitted.dynamic
    dynamic = gate().admit("pop-up", "sesame", "192.0.2.1", running=None, now=0.0)
    assert dynamic.dynamic and dynamic.config.name == "pop-up"


def test_a_name_that_breaks_the_rule_is_refused_before_anything_else():
    code, reason = refusal(gate().admit, "../etc", "secret", "192.0.2.1", running=None, now=0.0)
    assert code == "bad_room_name" and reason.startswith("'../etc' is not a room name: a room name is 1 to 64")
    code, reason = refusal(gate().may_open, "a\x00b", running=None)
    assert code == "bad_room_name" and "'a\\x00b'" in reason


def test_an_unknown_room_is_refused_when_rooms_are_not_made_on_demand():
    fixed = gate("[rooms.lobby]\n")
    assert refusal(fixed.admit, "other", None, "192.0.2.1", running=None, now=0.0) == (
        "unknown_room", "there is no room called 'other'")
    assert refusal(fixed.may_open, "other", running=None)[0] == "unknown_room"


def test_wrong_passwords_are_refused_then_throttled_even_with_the_right_one():
    g = gate()
    assert refusal(g.admit, "board", None, "192.0.2.1", running=None, now=0.0) == (
        "wrong_password", "this room needs a password")
    for _ in range(5):
        assert refusal(g.admit, "board", "guess", "192.0.2.1", running=None, now=0.0) == (
            "wrong_password", "wrong password")
    assert refusal(g.admit, "board", "secret", "192.0.2.1", running=None, now=0.0) == (
        "too_many_attempts", "too many wrong passwords for room 'board' from your address; try again in 2 s")
    assert g.admit("board", "secret", "192.0.2.2", running=None, now=0.0)  # another address is not throttled
    assert g.admit("board", "secret", "192.0.2.1", running=None, now=2.0)  # and the bucket refills


def test_dynamic_rooms_share_one_password_budget():
    g = gate()
    for i in range(5):
        refusal(g.admit, f"guess{i}", "nope", "192.0.2.1", running=None, now=0.0)
    assert refusal(g.admit, "fresh", "sesame", "192.0.2.1", running=None, now=0.0)[0] == "too_many_attempts"


def test_the_settings_of_the_room_running_now_decide():
    running = Admission(RoomConfig(name="board"), False)  # the old settings, without a password, still run
    assert gate().admit("board", None, "192.0.2.1", running=running, now=0.0) == running


def test_a_draining_daemon_refuses_every_join_with_a_fresh_error():
    g = gate()
    g.refuse_all("shutting_down", "the server is shutting down")
    with pytest.raises(JoinRefused) as first:
        g.admit("lobby", None, "192.0.2.1", running=None, now=0.0)
    with pytest.raises(JoinRefused) as second:
        g.may_open("lobby", running=None)
    assert (first.value.code, first.value.reason) == ("shutting_down", "the server is shutting down")
    assert second.value is not first.value


def test_the_dynamic_room_cap_and_a_failed_room_are_refused_when_opening():
    g = gate()
    assert g.may_open("pop-up", running=None, dynamic_count=1).dynamic
    assert refusal(g.may_open, "pop-up", running=None, dynamic_count=2) == (
        "too_many_rooms", "the server already runs its limit of 2 rooms made on demand; "
                          "join a room that is open, or try again later")
    assert not g.may_open("board", running=None, dynamic_count=2).dynamic  # configured rooms do not count
    running = g.may_open("board", running=None)
    assert refusal(g.may_open, "board", running=running, failed=True) == (
        "room_failed", "room 'board' is out of order (it kept failing); the operator has been told")


def test_a_room_that_runs_elsewhere_is_refused_here():
    code, reason = refusal(gate().may_open, "board", running=None, elsewhere="node-b")
    assert code == "room_unavailable" and "runs elsewhere" in reason


def test_entry_refuses_a_closing_room_a_starting_room_a_wrong_password_and_a_full_room():
    board = gate().config.rooms["board"]
    closing = ("closed", "room settings changed; please rejoin")
    assert refusal(check_entry, board, "secret", peers=0, accepting=False, refusal=closing) == closing
    assert refusal(check_entry, board, "secret", peers=0, accepting=False, refusal=None) == (
        "starting", "room 'board' is starting; try again in a moment")
    assert refusal(check_entry, board, "nope", peers=0, accepting=True, refusal=None) == (
        "wrong_password", "wrong password")
    assert refusal(check_entry, board, "secret", peers=2, accepting=True, refusal=None) == (
        "room_full", "room 'board' is full (2 people)")
    check_entry(board, "secret", peers=1, accepting=True, refusal=None)  # one place left: in
