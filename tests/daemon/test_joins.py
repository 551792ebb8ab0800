"""Joins that a client can abuse: room names, passwords, dynamic rooms, drains, display names."""

from __future__ import annotations

import gc

import pytest
import trio
import trio.testing
from trio_websocket import ConnectionRejected

from testsupport.metrics import metric
from testsupport.phoenix import phoenix_client

from testsupport.signalling_helpers import relay_client, running_daemon
from testsupport.wait import until
from videoroomd.config import RoomConfig
from videoroomd.config.validate import is_room_name
from videoroomd.rooms import JoinRefused, Room
from videoroomd.rooms.throttle import PasswordThrottle
from videoroomd.signalling.peer_channel import PeerChannel

DYNAMIC = "dynamic_rooms = true"
LOCKED_DEFAULTS = "[defaults]\npassword = 'sesame'\n[rooms.lobby]\npassword = ''\n"


def refused_count(daemon, code: str) -> float:
    return metric(daemon, f'videoroomd_joins_refused_total{{reason="{code}"}}')


@pytest.mark.parametrize("name", ["lobby", "a", "Team.Standup-2_b", "x" * 64])
def test_room_names_that_are_allowed(name):
    assert is_room_name(name)


@pytest.mark.parametrize("name", ["", "x" * 65, "../etc", "a/b", "lobby\n", "a\x00b", "-lead", ".hidden", "caf\u00e9", 7])
def test_room_names_that_are_not(name):
    assert not is_room_name(name)


@pytest.mark.parametrize("topic_name", ["x" * 60000, "../x", "a\x00b", "a\x1b[2Jb", "lobby\n", "caf\u00e9"])
async def test_phoenix_topics_follow_the_room_name_rule_and_make_no_room(tmp_path, topic_name):
    async with running_daemon(tmp_path, "", server=DYNAMIC) as daemon, phoenix_client(daemon) as client:
        reply = await client.join(topic_name, displayName="Ann")
        assert reply["status"] == "error" and reply["response"]["code"] == "bad_room_name"
        reason = reply["response"]["reason"]
        assert "a room name is 1 to 64 letters, digits" in reason and len(reason) < 300
        assert daemon.rooms.entries == {}
        # the connection is still good for a proper join
        assert (await client.join("fine", displayName="Ann"))["status"] == "ok"
    assert refused_count(daemon, "bad_room_name") == 1


@pytest.mark.parametrize("path", ["..%2Fx", "a%00b", "lobby%0A", "x" * 65])
async def test_relay_paths_follow_the_same_rule(tmp_path, path):
    async with running_daemon(tmp_path, "", server=DYNAMIC) as daemon:
        with pytest.raises(ConnectionRejected) as caught:
            async with relay_client(daemon, path):
                pass
        assert caught.value.status_code == 400
        assert b"a room name is 1 to 64 letters, digits" in caught.value.body
        assert daemon.rooms.entries == {}


async def test_wrong_passwords_for_dynamic_rooms_leave_no_room_behind(tmp_path):
    # Seen: 2,000 running empty rooms in 2.5 s from one socket, never reaped.
    async with running_daemon(tmp_path, "[defaults]\npassword = 'sesame'\n", server=DYNAMIC) as daemon:
        async with phoenix_client(daemon) as client:
            codes = set()
            for i in range(40):
                reply = await client.join(f"guess{i}", password="nope")
                codes.add(reply["response"]["code"])
            assert codes == {"wrong_password", "too_many_attempts"}
            assert daemon.rooms.entries == {}
        with pytest.raises(ConnectionRejected):
            async with relay_client(daemon, "relay-guess?password=nope"):
                pass
        assert daemon.rooms.entries == {}


async def test_a_dynamic_room_nobody_joins_is_closed_after_a_grace(tmp_path):
    # A join that goes away while its room is starting leaves a room nobody is in.
    async with running_daemon(tmp_path, "", server=DYNAMIC) as daemon:
        daemon.rooms.unused_grace = 0.3
        await daemon.rooms.open_room("ghost")
        assert "ghost" in daemon.rooms.entries
        await until(lambda: "ghost" not in daemon.rooms.entries)
        async with phoenix_client(daemon) as client:  # the name works again afterwards
            assert (await client.join("ghost"))["status"] == "ok"
            await trio.sleep(0.6)
            assert daemon.rooms.get("ghost").peer_count() == 1  # a room with people is never reaped


async def test_dynamic_rooms_are_capped(tmp_path):
    async with running_daemon(tmp_path, "[rooms.lobby]\n", server=f"{DYNAMIC}\nmax_dynamic_rooms = 3") as daemon:
        async with phoenix_client(daemon) as a, phoenix_client(daemon) as b, phoenix_client(daemon) as c, \
                phoenix_client(daemon) as d:
            for client, name in ((a, "r1"), (b, "r2"), (c, "r3")):
                assert (await client.join(name))["status"] == "ok"
            reply = await d.join("r4")
            assert reply["status"] == "error" and reply["response"]["code"] == "too_many_rooms"
            assert "limit of 3 rooms made on demand" in reply["response"]["reason"]
            assert (await d.join("r1"))["status"] == "ok"  # rooms already open still take people
        async with phoenix_client(daemon) as e:
            assert (await e.join("lobby"))["status"] == "ok"  # configured rooms do not count
            await until(lambda: daemon.rooms.dynamic_count() == 0)
            metrics = daemon.metrics.render().decode()
            assert "videoroomd_dynamic_rooms 0.0" in metrics
        async with phoenix_client(daemon) as f:  # once they emptied, new names work again
            assert (await f.join("r4"))["status"] == "ok"
    assert refused_count(daemon, "too_many_rooms") == 1


async def test_wrong_passwords_are_throttled_per_address_and_room(tmp_path):
    rooms = "[rooms.board]\npassword = 'secret'\n[rooms.lobby]\n"
    async with running_daemon(tmp_path, rooms) as daemon, phoenix_client(daemon) as client:
        for _ in range(5):
            assert (await client.join("board", password="guess"))["response"]["code"] == "wrong_password"
        reply = await client.join("board", password="guess")
        assert reply["response"]["code"] == "too_many_attempts"
        assert "try again in 2 s" in reply["response"]["reason"]
        # throttled: even the right password is refused, so the guesser learns nothing
        assert (await client.join("board", password="secret"))["response"]["code"] == "too_many_attempts"
        with pytest.raises(ConnectionRejected) as caught:
            async with relay_client(daemon, "board?password=secret"):
                pass
        assert caught.value.status_code == 429 and b"too many wrong passwords" in caught.value.body
        assert (await client.join("lobby"))["status"] == "ok"  # other rooms are not affected
    assert refused_count(daemon, "too_many_attempts") == 3


async def test_relay_wrong_passwords_count_too_and_dynamic_names_share_one_budget(tmp_path):
    async with running_daemon(tmp_path, "[defaults]\npassword = 'sesame'\n", server=DYNAMIC) as daemon:
        for i in range(5):  # a new name for each guess gets no new attempts: they share one password
            with pytest.raises(ConnectionRejected) as caught:
                async with relay_client(daemon, f"n{i}?password=guess"):
                    pass
            assert caught.value.status_code == 401
        async with phoenix_client(daemon) as client:
            reply = await client.join("n9", password="sesame")
            assert reply["response"]["code"] == "too_many_attempts"


def test_throttle_refills_and_forgets_the_stalest():
    throttle = PasswordThrottle(burst=2, seconds_per_try=2.0, max_tracked=3)
    throttle.wrong("a", "r", 0.0)
    throttle.wrong("a", "r", 0.0)
    assert throttle.wait("a", "r", 0.0) == 2
    assert throttle.wait("a", "r", 1.5) == 1
    assert throttle.wait("a", "r", 2.0) == 0
    assert throttle.wait("a", "other", 0.0) == 0 and throttle.wait("b", "r", 0.0) == 0
    assert len(throttle) == 1  # looking remembers nothing
    for address in "bcdefg":
        throttle.wrong(address, "r", 0.0)
    assert len(throttle) == 3


def test_throttle_counts_an_ipv6_64_as_one_client():
    throttle = PasswordThrottle(burst=1, seconds_per_try=2.0)
    throttle.wrong("2001:db8:1:2::1", "r", 0.0)
    assert throttle.wait("2001:db8:1:2:ffff::9", "r", 0.0) == 2
    assert throttle.wait("2001:db8:1:3::1", "r", 0.0) == 0
    throttle.wrong("::ffff:192.0.2.7", "r", 0.0)
    assert throttle.wait("192.0.2.7", "r", 0.0) == 2 and throttle.wait("192.0.2.8", "r", 0.0) == 0


async def test_refused_joins_during_a_drain_keep_nothing_alive(tmp_path):
    # Seen: one refusal instance raised again for every join kept each refused
    # join's frames (its connection and buffers) alive through __traceback__.
    async with running_daemon(tmp_path, server="drain_timeout = 30") as daemon:
        async with phoenix_client(daemon) as staying:
            assert (await staying.join("lobby"))["status"] == "ok"
            async with trio.open_nursery() as nursery:
                nursery.start_soon(daemon.shutdown, "test")
                await until(lambda: daemon.rooms.refusal is not None)
                for _ in range(30):
                    async with phoenix_client(daemon) as client:
                        reply = await client.join("lobby")
                        assert reply["response"]["code"] == "shutting_down"
                        reply = await client.join("other")  # through the registry's refusal too
                        assert reply["response"]["code"] == "shutting_down"

                with pytest.raises(ConnectionRejected) as caught:
                    async with relay_client(daemon, "lobby"):
                        pass
                assert caught.value.status_code == 503 and b"the server is shutting down" in caught.value.body

                def channels_alive() -> int:
                    gc.collect()
                    return sum(1 for o in gc.get_objects() if isinstance(o, PeerChannel))

                await until(lambda: channels_alive() <= 1)  # only the one still in the call
                nursery.cancel_scope.cancel()


async def test_a_room_that_is_stopping_takes_nobody():
    room = Room(RoomConfig(name="r"))
    async with trio.open_nursery() as nursery:
        await nursery.start(room.run)
        room.stop("settings changed")
        with pytest.raises(JoinRefused) as caught:
            room.join("Ann", None)
        assert caught.value.code == "closed" and room.peers == {}
        with pytest.raises(JoinRefused) as again:
            room.join("Bob", None)
        assert again.value is not caught.value and again.value.__traceback__ is not caught.value.__traceback__


async def test_display_names_lose_control_characters_and_are_cut_short(tmp_path):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        reply = await client.join("lobby", displayName="\x1b[31mEve\x00\u202e\r\n  " + "x" * 60000)
        assert reply["status"] == "ok"
        name = daemon.rooms.get("lobby").peers[reply["response"]["peer_id"]].name
        assert name.startswith("[31mEve x") and len(name) == 64
        assert all(c.isprintable() for c in name)
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        reply = await client.join("lobby", displayName="\x00\x01\u200b")
        assert daemon.rooms.get("lobby").peers[reply["response"]["peer_id"]].name == "Guest"


@pytest.mark.parametrize("params", [[1, 2], "Ann", 7, True])
async def test_join_params_that_are_not_an_object_get_a_clear_error(tmp_path, params):
    async with running_daemon(tmp_path) as daemon, phoenix_client(daemon) as client:
        ref = await client.send("room:lobby", "phx_join", params, join_ref="1")
        reply = await client.reply_to(ref)
        assert reply["status"] == "error" and "join params must be an object" in reply["response"]["reason"]
        assert daemon.rooms.get("lobby").peer_count() == 0
        assert (await client.join("lobby", displayName="Ann"))["status"] == "ok"



class NeverOpens:
    """An engine whose start hangs (a media thread that does not answer)."""

    async def run(self, room, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        await trio.sleep_forever()

    def peer_joined(self, peer) -> None:
        pass

    def peer_left(self, peer) -> None:
        pass

    def media_event(self, peer, data) -> None:
        pass


async def test_a_room_stopped_while_opening_ends_and_takes_nobody():
    room = Room(RoomConfig(name="r"), engine=NeverOpens())
    async with trio.open_nursery() as nursery:
        nursery.start_soon(room.run)
        await trio.testing.wait_all_tasks_blocked()
        room.stop("settings changed")
        await room.settled.wait()
        assert not room.opened.is_set() and room.stopping
        with pytest.raises(JoinRefused):
            room.join("Ann", None)


@pytest.mark.slow
async def test_a_join_waiting_for_a_room_that_a_reload_changes_lands_in_the_new_room(tmp_path):
    def engines(config):
        return NeverOpens() if config.max_peers == 4 else None  # the old room never opens

    async with running_daemon(tmp_path, "[rooms.lobby]\nmax_peers = 4\n", engine_factory=engines) as daemon, \
            phoenix_client(daemon) as client:
        ref = await client.send("room:lobby", "phx_join", {"displayName": "Ann"}, join_ref="1")
        await trio.sleep(0.2)  # the join is waiting for the room to open
        path = tmp_path / "videoroomd.toml"
        path.write_text(path.read_text().replace("max_peers = 4", "max_peers = 5"))
        assert await daemon.reload("test")
        reply = await client.reply_to(ref, timeout=3)
        assert reply["status"] == "ok"
        room = daemon.rooms.get("lobby")
        assert room.config.max_peers == 5 and reply["response"]["peer_id"] in room.peers


async def test_relay_user_names_are_cleaned_like_display_names(tmp_path):
    async with running_daemon(tmp_path) as daemon, relay_client(daemon, "lobby?username=%1B%5B2J%00Zed%0A" + "z" * 5000):
        await until(lambda: daemon.rooms.get("lobby").peer_count("relay") == 1)
        (peer,) = daemon.rooms.get("lobby").peers.values()
        assert peer.name.startswith("[2JZed z") and len(peer.name) == 64 and peer.name.isprintable()


async def test_the_first_stop_reason_stands(tmp_path):
    # A dynamic room turned into a configured one by a reload: its last peer leaving
    # must not rewrite why the room closed.
    async with running_daemon(tmp_path, "", server=DYNAMIC) as daemon, phoenix_client(daemon) as client:
        assert (await client.join("team"))["status"] == "ok"
        old = daemon.rooms.get("team")
        path = tmp_path / "videoroomd.toml"
        path.write_text(path.read_text() + "\n[rooms.team]\nmax_peers = 3\n")
        assert await daemon.reload("test")
        join_ref, ref, topic, event, payload = await client.receive()
        assert (event, payload["reason"]) == ("phx_error", "room settings changed; please rejoin")
        await old.settled.wait()
        assert old.stop_reason == "room settings changed; please rejoin" and old.stop_rejoin
        assert daemon.rooms.get("team").config.max_peers == 3


class FailsToOpen(NeverOpens):
    async def run(self, room, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        raise RuntimeError("media thread gone")


async def test_a_failed_dynamic_room_gives_its_place_back(tmp_path):
    from videoroomd.daemon.supervisor import RestartPolicy
    policy = RestartPolicy(first_delay=0.01, max_delay=0.01, max_crashes=2, window=0.5)

    def engines(config):
        return FailsToOpen() if config.name == "broken" else None

    async with running_daemon(tmp_path, "", server=f"{DYNAMIC}\nmax_dynamic_rooms = 1", policy=policy,
                              engine_factory=engines) as daemon, phoenix_client(daemon) as client:
        assert (await client.join("broken"))["status"] == "error"
        await until(lambda: daemon.rooms.entries.get("broken") is not None
                         and daemon.rooms.entries["broken"].state.status == "failed")
        assert (await client.join("broken"))["response"]["code"] == "room_failed"
        assert (await client.join("fine"))["response"]["code"] == "too_many_rooms"
        await until(lambda: "broken" not in daemon.rooms.entries)
        assert (await client.join("fine"))["status"] == "ok"


async def test_a_stop_waits_for_and_then_closes_a_room_a_reload_removed(tmp_path):
    async with running_daemon(tmp_path, "[rooms.lobby]\n[rooms.old]\n", server="drain_timeout = 30") as daemon, \
            phoenix_client(daemon) as client:
        assert (await client.join("old"))["status"] == "ok"
        path = tmp_path / "videoroomd.toml"
        path.write_text(path.read_text().replace("[rooms.old]\n", ""))
        assert await daemon.reload("removed")  # "old" drains for up to 30 s
        path.write_text(path.read_text().replace("drain_timeout = 30", "drain_timeout = 0.3"))
        assert await daemon.reload("shorter drain")
        assert daemon.rooms.get("old") is None and daemon.rooms.total_peers() == 1  # the call goes on
        async with trio.open_nursery() as nursery:
            nursery.start_soon(daemon.shutdown, "test")
            # the stop counts the call in the removed room, and at its end tells it to come back
            join_ref, ref, topic, event, payload = await client.receive()
            assert (topic, event, payload["reason"]) == ("room:old", "phx_error", "the server is shutting down")
