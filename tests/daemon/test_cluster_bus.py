"""A node that reads its link channel slowly: what it cannot hold is dropped and counted, and the links
it was for end with retry, instead of the node's memory growing without bound."""

from __future__ import annotations

from contextlib import AsyncExitStack

import trio

from testsupport.cluster_nodes import cluster_daemons
from testsupport.phoenix import phoenix_client
from videoroomd.cluster.cluster_service import OVERRUN
from videoroomd.cluster.link_bus import INBOX, LinkBus
from videoroomd.cluster.redis_client import open_redis
from videoroomd.rooms.link_codec import encode

EXTRA = 200
# Publishes every ARGV on KEYS[1] in one step: a flood faster than any reader, and than the links' beats.
FLOOD = "for i = 1, #ARGV do redis.call('PUBLISH', KEYS[1], ARGV[i]) end return #ARGV"


def cluster(url: str, node: str) -> str:
    return f'[cluster]\nredis = "{url}"\nnode_id = "{node}"\nlease_ttl = 3\nheartbeat = 0.5\n'


async def until(condition, timeout: float = 10) -> None:
    with trio.fail_after(timeout):
        while not condition():
            await trio.sleep(0.02)


async def test_a_slow_reader_holds_a_bounded_inbox_and_names_the_links_of_what_it_dropped(redis_server, redis_prefix):
    async with open_redis(redis_server.url) as client, trio.open_nursery() as nursery:
        bus = LinkBus(client, "slow", prefix=redis_prefix)
        release, handled, lost = trio.Event(), [], []

        async def handler(kind, fields):
            await release.wait()
            handled.append(fields["link"])

        bus.handler, bus.on_lost = handler, lost.append
        await nursery.start(bus.run)
        with trio.fail_after(5):
            await bus.subscribed.wait()
        sent = INBOX + EXTRA
        await client.eval(FLOOD, keys=[bus.channel("slow")],
                          args=[encode("leave", link=f"l{n}", reason="x") for n in range(sent)])
        await until(lambda: bus.overrun + bus._inbox.statistics().current_buffer_used >= sent - 1)
        # one message in the handler, INBOX waiting; the rest dropped, and their links named
        assert bus.overrun in (EXTRA - 1, EXTRA) and lost == [f"l{n}" for n in range(sent - bus.overrun, sent)]
        release.set()
        await until(lambda: len(handled) == sent - bus.overrun)
        assert handled == [f"l{n}" for n in range(len(handled))]  # in order
        await client.publish(bus.channel("slow"), encode("leave", link="after", reason="x"))
        await until(lambda: handled[-1] == "after")  # and it reads on
        nursery.cancel_scope.cancel()


async def test_a_participant_whose_messages_were_dropped_is_told_to_rejoin(tmp_path, redis_server):
    redis_server.command("FLUSHALL")
    async with AsyncExitStack() as stack:
        daemons = await cluster_daemons(stack, tmp_path, ("node-a", "node-b"),
                                        lambda node: cluster(redis_server.url, node) + "[rooms.lobby]\n")
        home, edge = sorted(daemons, key=lambda d: d.rooms.get("lobby") is None)
        bob = await stack.enter_async_context(phoenix_client(edge))
        assert (await bob.join("lobby", displayName="Bob"))["status"] == "ok"
        (key,) = edge.cluster.service.edge.links
        bus, handle, release = edge.cluster.bus, edge.cluster.bus.handler, trio.Event()

        async def slow(kind, fields):  # this node falls behind its channel
            await release.wait()
            await handle(kind, fields)

        bus.handler = slow
        async with open_redis(redis_server.url) as client:
            await client.eval(FLOOD, keys=[bus.channel(edge.cluster.node_id)],
                              args=[encode("sent", link=key, req=10_000 + n) for n in range(INBOX + EXTRA)])
        with trio.fail_after(10):
            while True:
                _, _, _, event, payload = await bob.receive(timeout=10)
                if event == "phx_close":
                    break
        assert payload == {"reason": OVERRUN, "retry": True}
        await until(lambda: bus.overrun >= EXTRA - 1)  # the rest of the flood, read meanwhile
        release.set()
        assert f"videoroomd_cluster_link_messages_overrun_total {float(bus.overrun)}" in edge.metrics.render().decode()
        with trio.fail_after(5):  # the room's node lets Bob go once the edge no longer names his link
            while home.rooms.get("lobby").peer_count():
                await trio.sleep(0.05)
        async with phoenix_client(edge) as again:
            reply = await again.join("lobby", displayName="Bob")
            assert reply["status"] == "ok", reply
