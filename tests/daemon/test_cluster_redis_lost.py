"""Redis lost mid-call: the call goes on, /healthz says degraded, new joins that need the directory get
a clear error, /metrics counts it, the node logs it once; Redis back: the nodes re-register and go on."""

from __future__ import annotations

import urllib.error
import urllib.request
from contextlib import AsyncExitStack

import pytest
import trio
from structlog.testing import capture_logs

from testsupport.media_bot import bot, media_thread
from testsupport.phoenix import phoenix_client
from testsupport.redis_server import start_redis, stop_redis
from testsupport.signalling_helpers import running_daemon
from videoroomd.cluster.redis_client import open_redis
from videoroomd.cluster.redis_nodes import RedisNodeDirectory

LOBBY = "[rooms.lobby]\nmax_peers = 4\n"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


def healthz(daemon) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{daemon.port}/healthz", timeout=2) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def health_of(daemon) -> tuple[int, str]:
    return await trio.to_thread.run_sync(healthz, daemon)


async def until_health(daemon, start: str, timeout: float = 10) -> str:
    with trio.fail_after(timeout):
        while not (answer := await health_of(daemon))[1].startswith(start):
            await trio.sleep(0.1)
    assert answer[0] == 200
    return answer[1]


@pytest.mark.slow
async def test_redis_stopped_mid_call_the_call_goes_on_and_the_nodes_come_back_with_it(tmp_path):
    server = start_redis(tmp_path / "redis.log")  # a Redis of this test's own: it is stopped mid-call
    try:
        async with AsyncExitStack() as stack:
            daemons = []
            for node in ("node-a", "node-b"):
                (tmp_path / node).mkdir()
                daemons.append(await stack.enter_async_context(running_daemon(
                    tmp_path / node, rooms=cluster(server.url, node) + LOBBY, server="dynamic_rooms = true")))
            for daemon in daemons:
                with trio.fail_after(5):
                    await daemon.cluster.bus.subscribed.wait()
            home, other = sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)
            media = await stack.enter_async_context(media_thread())
            ann = await stack.enter_async_context(bot(home, "Ann", media=media))
            bob = await stack.enter_async_context(bot(other, "Bob", media=media))  # in home's room, through Redis
            _, video = await bob.publish()
            seen = await ann.frames_from(video, at_least=10)
            assert [await health_of(d) for d in daemons] == [(200, "ok\n")] * 2
            with capture_logs() as logs:
                stop_redis(server)
                for daemon in daemons:
                    why = await until_health(daemon, "degraded")
                    assert "Redis does not answer" in why and "calls in progress go on" in why
                seen = await ann.frames_from(video, at_least=seen + 30)  # media never went through Redis
                async with phoenix_client(other) as late:
                    reply = await late.join("fresh", displayName="Late")
                assert (reply["status"], reply["response"]["code"]) == ("error", "room_unavailable")
                assert "room directory (Redis) does not answer" in reply["response"]["reason"]
                await trio.sleep(1.5)  # more beats fail: still one line each
                metrics = other.metrics.render().decode()
                assert "videoroomd_cluster_redis_up 0.0" in metrics
                assert "videoroomd_cluster_joins_refused_no_directory_total 1.0" in metrics
            lost = [e for e in logs if e["event"].startswith("cluster: cannot publish this node's load")]
            assert len(lost) == 2  # once per node, not once per beat
            for kind in ("cluster: link messages cannot be published", "cluster: link channel not readable"):
                assert len([e for e in logs if e["event"].startswith(kind)]) <= 2, kind
            server = start_redis(tmp_path / "redis-again.log", port=server.port)  # back, and empty
            for daemon in daemons:
                await until_health(daemon, "ok")
            async with open_redis(server.url) as client:  # re-registered
                assert [n.node for n in await RedisNodeDirectory(client).nodes()] == ["node-a", "node-b"]
            async with phoenix_client(other) as late:
                with trio.fail_after(10):
                    while (await late.join("fresh", displayName="Late"))["status"] != "ok":
                        await trio.sleep(0.2)
            await ann.frames_from(video, at_least=seen + 30)
            assert home.rooms.get("lobby").peer_count() == 2
    finally:
        stop_redis(server)
