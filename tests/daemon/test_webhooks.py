"""Webhooks against a real daemon and a receiver on 127.0.0.1: what a call tells, signed; and endpoints
that are slow, refuse, redirect or never answer cost the calls nothing and the daemon bounded memory."""

from __future__ import annotations

import signal
import socket
import time
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.daemon import free_port
from testsupport.media_bot import bot, media_thread
from testsupport.metrics import metric
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from testsupport.webhook_receiver import webhook_receiver
from videoroomd.auth.tokens import mint
from videoroomd.webhooks.signing import verify

KEY = "a-webhook-secret-of-thirty-two-characters-or-more"


def webhooks(*urls: str, extra: str = "") -> str:
    listed = ", ".join(f'"{url}"' for url in urls)
    return f'[webhooks]\nurls = [{listed}]\nkey = "{KEY}"\n{extra}\n'


def rooms(*urls: str, extra: str = "") -> str:
    return '[ice]\naddresses = ["127.0.0.1"]\n' + webhooks(*urls, extra=extra) + "[rooms.lobby]\nmax_peers = 8\n"


def names(events: list[dict]) -> list[str]:
    return [e["event"] for e in events]


async def test_a_call_is_told_in_order_with_valid_signatures(tmp_path):
    events_setting = 'events = ["room.started", "room.ended", "participant.joined", "participant.left", ' \
                     '"track.published", "track.unpublished", "chat.message"]'
    app_key = "an-app-signing-key-of-32-characters-or-more"
    token = mint("app", app_key, room="lobby", identity="bob@school", now=time.time(), ttl=600, name="Bob B.")
    async with webhook_receiver() as receiver, \
            running_daemon(tmp_path, f'[auth]\nkeys = {{ app = "{app_key}" }}\n' + rooms(receiver.url, extra=events_setting)
                           ) as daemon, media_thread() as media:
        await receiver.wait_for(lambda events: "room.started" in names(events))
        async with bot(daemon, "Ann", media=media) as ann:
            audio_id, video_id = await ann.publish()  # sent once the server answered her offer
            await receiver.wait_for(lambda events: names(events).count("track.published") == 2, timeout=20)
            async with phoenix_client(daemon) as bob:
                reply = await bob.join("lobby", displayName="Bob", token=token)
                bob_id = reply["response"]["peer_id"]
                await bob.send("room:lobby", "chat", {"text": "hello, webhooks"}, bob.join_ref)
                await receiver.wait_for(lambda events: "chat.message" in names(events))
            await receiver.wait_for(lambda events: names(events).count("participant.left") == 1)
        events = await receiver.wait_for(lambda events: names(events).count("participant.left") == 2)
        await daemon.shutdown("test")
        events = await receiver.wait_for(lambda events: "room.ended" in names(events))

    for received in receiver.received:  # each signed, the timestamp in the signed body, its id and event in headers
        event = verify(KEY, received.body, received.headers["x-videoroomd-signature"], now=time.time(), tolerance=60)
        assert received.headers["x-videoroomd-id"] == event["id"]
        assert received.headers["x-videoroomd-event"] == event["event"]
        assert received.headers["content-type"] == "application/json"
        assert event["room"] == "lobby"
    assert len({e["id"] for e in events}) == len(events)
    with pytest.raises(ValueError, match="signature"):
        verify("another-key-of-thirty-two-characters-at-least", receiver.received[0].body,
               receiver.received[0].headers["x-videoroomd-signature"], now=time.time())

    ann_events = [e for e in events if e.get("participant", {}).get("id") == ann.id]
    assert names(ann_events) == ["participant.joined", "track.published", "track.published",
                                 "track.unpublished", "track.unpublished", "participant.left"]
    assert {e["track"]["id"]: e["track"]["source"] for e in ann_events[1:3]} == {audio_id: "audio", video_id: "video"}
    assert ann_events[0]["participant"] == {"id": ann.id, "name": "Ann", "identity": None, "kind": "rtc"}
    assert ann_events[-1]["reason"]
    bob_events = [e for e in events if e.get("participant", {}).get("id") == bob_id]
    assert names(bob_events) == ["participant.joined", "chat.message", "participant.left"]
    assert bob_events[1]["message"]["text"] == "hello, webhooks"
    assert bob_events[0]["participant"] == {"id": bob_id, "name": "Bob B.", "identity": "bob@school", "kind": "rtc"}
    assert names(events)[0] == "room.started" and names(events)[-1] == "room.ended"
    assert events[-1]["reason"] == "the server is shutting down"


async def counted(daemon, selector: str, timeout: float = 10.0) -> None:
    """Once ``selector`` on /metrics is above 0; TooSlowError after ``timeout``."""
    with trio.fail_after(timeout):
        while metric(daemon, selector) == 0:
            await trio.sleep(0.1)


@pytest.mark.slow
async def test_endpoints_that_are_slow_refuse_redirect_or_hang_cost_the_calls_nothing(tmp_path):
    settings = "timeout = 1\nretry_for = 3\nqueue_size = 4"
    refused = f"http://127.0.0.1:{free_port()}/hooks"
    async with webhook_receiver() as good, webhook_receiver("ok", delay=3) as slow, \
            webhook_receiver("redirect") as redirect, webhook_receiver("hang") as hang, \
            webhook_receiver("fail", failures=2) as flaky, \
            running_daemon(tmp_path, rooms(good.url, slow.url, refused, redirect.url, hang.url, flaky.url,
                                           extra=settings)) as daemon:
        await good.wait_for(lambda events: names(events) == ["room.started"])
        depths = []
        for number in range(12):
            started = trio.current_time()
            async with phoenix_client(daemon) as client:
                reply = await client.join("lobby", displayName=f"P{number}")
                assert reply["status"] == "ok"
                assert trio.current_time() - started < 1.0  # the endpoints hold up no join
            depths.append(metric(daemon, "videoroomd_webhooks_queue_depth"))
        # the good endpoint has every event, in the order they happened
        events = await good.wait_for(lambda events: len(events) == 25)
        assert names(events) == ["room.started"] + ["participant.joined", "participant.left"] * 12
        assert [e["participant"]["name"] for e in events[1::2]] == [f"P{n}" for n in range(12)]
        assert good.connections == 1  # kept open from one event to the next
        # the endpoints cost at most their queues: 4 events waiting for each of the 6
        assert 0 < max(depths) <= 4 * 6
        assert metric(daemon, 'videoroomd_webhooks_dropped_total{reason="queue_full"}') > 0
        for reason in ("connect", "redirect", "timeout", "status"):
            await counted(daemon, f'videoroomd_webhooks_failed_total{{reason="{reason}"}}')
        # a redirect is not followed; a failure is tried again with the very same body, then taken
        assert {r.target for r in redirect.received} == {"/hooks/videoroomd?app=secret-part"}
        await flaky.wait_for(lambda events: len(events) >= 3)
        assert flaky.received[0].body == flaky.received[1].body == flaky.received[2].body
        # an event failing for retry_for is dropped and counted
        await counted(daemon, 'videoroomd_webhooks_dropped_total{reason="gave_up"}')
        assert metric(daemon, "videoroomd_webhooks_sent_total") >= 25


@pytest.mark.slow
def test_sigterm_does_not_wait_on_a_hung_endpoint_longer_than_the_drain_deadline(start_daemon):
    with socket.socket() as hung:  # accepts connections (the kernel does) and never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        url = f"http://127.0.0.1:{hung.getsockname()[1]}/hooks"
        daemon = start_daemon(rooms=webhooks(url, extra="timeout = 60") + "[rooms.lobby]\n",
                              server="drain_timeout = 1")
        daemon.wait_log("webhooks on")
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        assert daemon.proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 1 + 2.5  # the drain deadline, and the process's own exit
        assert "stopping with webhook events not delivered" in daemon.log()


def test_check_config_names_the_webhooks_without_their_secrets(tmp_path):
    from click.testing import CliRunner

    from testsupport.daemon import config_text
    from videoroomd.cli.main import cli

    path = tmp_path / "hooks.toml"
    path.write_text(config_text(webhooks("https://app.example.org/hooks/T0123/s3cret?sig=x", "http://[::1]:9000/")
                                + "[rooms.lobby]\n", port=8443))
    result = CliRunner().invoke(cli, ["check-config", str(path)], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output.endswith("; webhooks to https://app.example.org/..., http://[::1]:9000/\n")
    assert "s3cret" not in result.output and KEY not in result.output
    path.write_text(config_text('[webhooks]\nurls = ["http://127.0.0.1/"]\nkey = "too-short-a-secret"\n[rooms.lobby]\n'))
    result = CliRunner().invoke(cli, ["check-config", str(path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "webhooks.key: expected a secret of 32 to 1024 characters" in result.stderr
    assert "too-short-a-secret" not in result.stderr


async def test_a_reload_keeps_the_webhooks_the_daemon_started_with(tmp_path):
    async with webhook_receiver() as first, webhook_receiver() as second, \
            running_daemon(tmp_path, rooms(first.url)) as daemon:
        await first.wait_for(lambda events: names(events) == ["room.started"])
        path = tmp_path / "videoroomd.toml"
        path.write_text(path.read_text().replace(first.url, second.url))
        assert await daemon.reload("test")  # the rooms' settings are unchanged: no room restarts
        async with phoenix_client(daemon) as client:
            assert (await client.join("lobby", displayName="Ann"))["status"] == "ok"
        await first.wait_for(lambda events: names(events) == ["room.started", "participant.joined", "participant.left"])
        assert second.received == [] and second.connections == 0


@pytest.mark.slow
async def test_with_a_cluster_the_rooms_node_alone_tells_of_a_participant_on_another_node(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with webhook_receiver() as receiver, AsyncExitStack() as stack:
        daemons = []
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            cluster = f'[cluster]\nredis = "{redis_server.url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'
            daemons.append(await stack.enter_async_context(running_daemon(tmp_path / node, cluster + rooms(receiver.url))))
        for daemon in daemons:
            with trio.fail_after(5):
                await daemon.cluster.bus.subscribed.wait()
        home, other = sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)
        async with phoenix_client(other) as bob:
            reply = await bob.join("lobby", displayName="Bob")
            assert reply["status"] == "ok" and other.rooms.get("lobby") is None  # Bob is in home's room
        events = await receiver.wait_for(lambda events: "participant.left" in names(events))
        await trio.sleep(0.5)  # nothing more comes, from either node
        assert names(receiver.events()) == ["room.started", "participant.joined", "participant.left"]
        assert events[1]["participant"]["id"] == reply["response"]["peer_id"]
