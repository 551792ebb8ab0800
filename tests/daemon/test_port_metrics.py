"""/metrics shows what the compiled module's media sockets (``_native.Port``) counted, per media worker:
datagrams read, batches, strangers dropped, SRTP failures, sent, send errors; summed over the worker's
sockets (each publisher's packets all read there), and still counted once the connections that had them
are closed."""

from __future__ import annotations

import json
import urllib.request
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.media_bot import bot, media_thread
from testsupport.metrics import read, sample

ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.red]\nmax_peers = 4\n'
SERVER = "connections_per_second = 1000\ndrain_timeout = 1\n"
NAMES = ("datagrams", "batches", "unvalidated", "srtp_failures", "sent", "send_errors")


def port_counters(daemon) -> dict[str, float]:
    """The worker's Port counters, and ``received``: the room's RTP packets received, from the same heartbeat."""
    page = read(daemon)
    counters = {name: sample(page, f"videoroomd_media_worker_port_{name}_total", default=None, worker="1")
                for name in NAMES}
    return {**counters, "received": sample(page, "videoroomd_media_packets_received_total", room="red")}


async def counted(daemon, enough) -> dict[str, float]:
    """The worker's Port counters once ``enough(counters)`` holds (the heartbeat brings them each second)."""
    with trio.fail_after(10):
        while True:
            counters = port_counters(daemon)
            if None not in counters.values() and enough(counters):
                return counters
            await trio.sleep(0.2)


def peers(daemon) -> int:
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        return sum(row["peers"] for row in json.load(response)["rooms"])


@pytest.mark.slow
async def test_a_bot_calls_port_counters_reach_metrics_and_outlive_its_connections(start_daemon):
    daemon = start_daemon(rooms=ROOMS, server=SERVER, media='workers = 1\ndata_plane = "native"')
    async with media_thread() as media:
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(bot(daemon, "a", room="red", media=media))
            b = await stack.enter_async_context(bot(daemon, "b", room="red", media=media))
            (a_video,) = await a.publish(audio=False)
            (b_video,) = await b.publish(audio=False)
            await a.frames_from(b_video, at_least=30)
            await b.frames_from(a_video, at_least=30)
            during = await counted(daemon, lambda c: c["received"] >= 60)
            assert during["datagrams"] >= during["received"]
            # Every RTP packet the publishers sent (and their RTCP, STUN, DTLS) was read by the Port, in
            # batches; nothing came from a stranger, nothing failed to decrypt or to go out.
            assert 1 <= during["batches"] <= during["datagrams"]
            assert during["unvalidated"] == during["srtp_failures"] == during["send_errors"] == 0
            # The compiled plane sends its packets itself (videoroomd_media_packets_forwarded); the Port's
            # own queue carries only the Python plane's.
            assert during["sent"] == 0
        with trio.fail_after(10):
            while peers(daemon):
                await trio.sleep(0.1)
        await trio.sleep(2.5)  # two heartbeats after the Ports closed
        after = port_counters(daemon)
        for name in NAMES:  # counters never go back: the closed Ports' counts are kept
            assert after[name] >= during[name], name
