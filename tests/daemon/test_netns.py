"""The test hosts of testsupport/netns.py: reachable from this machine on their own addresses only, and
gone (namespace and veth pair) when the test ends, also when it fails."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from testsupport.netns import net_host


def _exists(*argv: str) -> bool:
    return subprocess.run(["ip", *argv], capture_output=True).returncode == 0


def test_two_test_hosts_reach_this_machine_and_are_removed_when_the_test_fails():
    made = []
    with pytest.raises(RuntimeError, match="the test failed"):
        with net_host() as first, net_host() as second:
            made = [first, second]
            assert len({first.name, second.name}) == 2 and len({first.address, second.address, first.gateway}) == 3
            with socket.socket() as listener:
                listener.bind((first.gateway, 0))
                listener.listen()
                listener.settimeout(10)
                port = listener.getsockname()[1]
                second.route_to(first.gateway)
                for host in made:
                    client = subprocess.Popen(host.command(
                        sys.executable, "-c",
                        f"import socket; s = socket.create_connection(('{first.gateway}', {port}), timeout=5); "
                        "print(s.getsockname()[0])"), stdout=subprocess.PIPE, text=True)
                    connection, peer = listener.accept()
                    connection.close()
                    assert client.communicate(timeout=10)[0].strip() == host.address == peer[0]
            raise RuntimeError("the test failed")
    for host in made:
        assert not _exists("netns", "pids", host.name)
        assert not _exists("link", "show", host.outer)
