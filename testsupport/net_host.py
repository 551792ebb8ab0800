"""Test hosts of the project's own: a network namespace joined to this one by a veth pair.

A test that needs an address other than loopback (a browser that gathers no ICE candidate on
127.0.0.1) makes one here and sends traffic only to the addresses made here. The addresses,
10.213.77.0/24 cut into /30 blocks, belong to these test hosts alone (the benchmark's hosts use
10.213.78.0/24): no network anywhere uses them, and nothing here is routed beyond the veth pairs.
The hosts are made as the benchmark makes its own (testsupport/netns.py). Needs root and Debian's
iproute2 (`ip`); the suite runs as root where it runs, so a failure is an error, never a skip.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from testsupport.netns import Host as NetHost
from testsupport.netns import new_host, remove

PREFIX = "10.213.77."   # the test hosts' own range; block N is PREFIX{4N}/30
NAME = "vrtest"

__all__ = ["NetHost", "net_host"]


@contextlib.contextmanager
def net_host() -> Iterator[NetHost]:
    """A new test host, removed again (namespace and veth pair) however the block ends."""
    host = new_host(NAME, PREFIX, "the browser call tests need root")
    try:
        yield host
    finally:
        remove(host)
