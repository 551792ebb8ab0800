"""``[ice] udp_ports``: every media socket of a call is bound inside the range (read from
/proc), and a participant for whom no port is left is told so while the call goes on."""

from __future__ import annotations

import json
import os
import random
import socket
import urllib.request
from contextlib import AsyncExitStack

import pytest
import trio

from testsupport.media_bot import bot, media_thread

SERVER = "connections_per_second = 1000\ndrain_timeout = 1\n"


def free_udp_range(count: int) -> tuple[int, int]:
    """``count`` consecutive UDP ports on 127.0.0.1 that nobody holds right now."""
    for _ in range(200):
        first = random.randrange(20000, 60000 - count)
        held = []
        try:
            for port in range(first, first + count):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(s)
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
        return first, first + count - 1
    raise AssertionError("no free range of UDP ports")


def udp_ports_of(pid: int) -> list[int]:
    """The local ports of the UDP sockets process ``pid`` holds (its fds, looked up in its net/udp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    ports = []
    for table in ("udp", "udp6"):
        with open(f"/proc/{pid}/net/{table}") as f:
            for line in f.readlines()[1:]:
                columns = line.split()
                if columns[9] in inodes:
                    ports.append(int(columns[1].rsplit(":", 1)[1], 16))
    return ports


def media_pid(daemon, workers: int) -> int:
    """The process that holds the media sockets: the daemon itself, or its one worker."""
    if workers == 0:
        return daemon.proc.pid
    with urllib.request.urlopen(f"{daemon.url}/admin/rooms", timeout=5) as response:
        (row,) = json.load(response)["media_workers"]
    return row["pid"]


def rooms(first: int, last: int) -> str:
    return f'[ice]\naddresses = ["127.0.0.1"]\nudp_ports = "{first}-{last}"\n[rooms.lobby]\nmax_peers = 4\n'


@pytest.mark.parametrize("workers", [0, 1], ids=["media-thread", "worker-process"])
async def test_every_media_socket_of_a_call_is_bound_inside_udp_ports(start_daemon, workers):
    first, last = free_udp_range(12)
    daemon = start_daemon(rooms=rooms(first, last), server=SERVER, media=f"workers = {workers}")
    async with media_thread() as media, AsyncExitStack() as stack:
        a = await stack.enter_async_context(bot(daemon, "a", media=media))
        b = await stack.enter_async_context(bot(daemon, "b", media=media))
        (a_video,) = await a.publish(audio=False)
        (b_video,) = await b.publish(audio=False)
        await a.frames_from(b_video, at_least=5)
        await b.frames_from(a_video, at_least=5)
        ports = udp_ports_of(media_pid(daemon, workers))
        assert len(ports) >= 2, ports  # one connection each, bundled
        assert all(first <= port <= last for port in ports), (ports, first, last)


@pytest.mark.slow
async def test_a_participant_for_whom_no_port_is_left_is_told_and_the_call_goes_on(start_daemon):
    first, last = free_udp_range(2)  # one bundled connection each: room for two
    daemon = start_daemon(rooms=rooms(first, last), server=SERVER, media="workers = 1")
    async with media_thread() as media, AsyncExitStack() as stack:
        a = await stack.enter_async_context(bot(daemon, "a", media=media))
        b = await stack.enter_async_context(bot(daemon, "b", media=media))
        (a_video,) = await a.publish(audio=False)
        (b_video,) = await b.publish(audio=False)
        await b.frames_from(a_video, at_least=5)
        third = await stack.enter_async_context(bot(daemon, "c", media=media))
        await third.publish(audio=False)
        error = await third.wait_for(lambda e: e["type"] == "error")
        message = error["data"]["message"]
        assert message.startswith("the server could not accept this offer"), message
        assert f"no free UDP port on 127.0.0.1 in [ice] udp_ports {first}-{last}" in message, message
        # the two in the call still see each other
        await a.frames_from(b_video, at_least=a.received[b_video] + 10)
        await b.frames_from(a_video, at_least=b.received[a_video] + 10)
        assert all(first <= port <= last for port in udp_ports_of(media_pid(daemon, 1)))


def test_a_port_of_the_range_in_use_is_skipped_and_a_full_range_says_so():
    from videoroomd.media.webrtc.compat.ice import NoFreePort, bind_in_range

    first, last = free_udp_range(2)
    taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taken.bind(("127.0.0.1", first))
    try:
        for _ in range(5):  # whichever port it starts at, it lands on the free one
            with bind_in_range("127.0.0.1", (first, last)) as sock:
                assert sock.getsockname()[1] == last
        with bind_in_range("127.0.0.1", (first, last)):
            with pytest.raises(NoFreePort) as caught:
                bind_in_range("127.0.0.1", (first, last))
        assert str(caught.value).startswith(f"no free UDP port on 127.0.0.1 in [ice] udp_ports {first}-{last}: all 2 are in use")
    finally:
        taken.close()
