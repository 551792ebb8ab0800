"""coturn's own test client against the built-in TURN server: credentials, channels and indications, UDP and TCP."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import trio

from videoroomd.config.schema import TurnConfig
from videoroomd.turn.peers import MediaAddresses
from videoroomd.turn.server import TurnService

from conftest import free_port

SECRET = "a-test-secret-long-enough"
UCLIENT = shutil.which("turnutils_uclient")
PEER = shutil.which("turnutils_peer")

pytestmark = pytest.mark.skipif(UCLIENT is None or PEER is None,
                                reason="coturn's turnutils are needed: apt-get install coturn (tests/run.sh does)")


async def run_uclient(media_ports: list[int], peer_port: int, *flags: str) -> tuple[str, dict]:
    media = MediaAddresses(["127.0.0.1"])
    for port in media_ports:
        media.add("127.0.0.1", port)
    service = TurnService(TurnConfig(enabled=True, host="127.0.0.1", port=0, relay_ports=(43000, 43999), secret=SECRET),
                          media.contains, relay_host="127.0.0.1")
    peer = subprocess.Popen([PEER, "-L", "127.0.0.1", "-p", str(peer_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(service.run)
            args = [UCLIENT, *flags, "-W", SECRET, "-u", "peer-1", "-e", "127.0.0.1", "-r", str(peer_port),
                    "-n", "10", "-c", "-p", str(addresses["udp"][1]), "127.0.0.1"]
            with trio.fail_after(30):
                done = await trio.run_process(args, capture_stdout=True, capture_stderr=True, check=False)
            nursery.cancel_scope.cancel()
    finally:
        peer.terminate()
        peer.wait(timeout=5)
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace"), service.stats()


@pytest.mark.parametrize("flags", [(), ("-s",), ("-t",), ("-t", "-s")], ids=["udp-channels", "udp-send", "tcp-channels", "tcp-send"])
async def test_turnutils_uclient_relays_through_us_to_a_media_socket(flags):
    port = free_port()
    output, stats = await run_uclient([port, port + 1], port, *flags)
    assert re.search(r"tot_send_msgs=10, tot_recv_msgs=10", output), output
    assert "Total lost packets 0 " in output, output
    assert stats["created"] >= 1 and not stats["dropped"]


async def test_turnutils_uclient_is_refused_a_peer_that_is_not_our_media():
    port = free_port()
    output, stats = await run_uclient([], port)
    assert "403" in output and "tot_recv_msgs=10" not in output, output
    assert stats["refused"].get(403, 0) >= 1
