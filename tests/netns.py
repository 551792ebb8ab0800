"""Test hosts of the project's own: a network namespace joined to this one by a veth pair.

A test that needs an address other than loopback (a browser that gathers no ICE candidate on
127.0.0.1) makes one here and sends traffic only to the addresses made here. The addresses,
10.213.77.0/24 cut into /30 blocks, belong to these test hosts alone: no network anywhere uses
them, and nothing here is routed beyond the veth pairs. Needs root and Debian's iproute2 (`ip`);
the suite runs as root where it runs, so a failure is an error, never a skip.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PREFIX = "10.213.77."   # the test hosts' own range; block N is PREFIX{4N}/30
BLOCKS = 64
NAME = "vrtest"


@dataclass(frozen=True)
class NetHost:
    """A namespace ``name``; ``address`` is its end of the veth pair, ``gateway`` the end in this namespace."""

    name: str
    address: str
    gateway: str
    outer: str  # the veth end in this namespace

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return [_ip(), "netns", "exec", self.name, *argv]

    def route_to(self, address: str) -> None:
        """Reach ``address`` (another test host's gateway) through this host's gateway."""
        _run("-n", self.name, "route", "add", f"{address}/32", "via", self.gateway)

    def wrapper(self, program: str, directory: Path) -> Path:
        """An executable in ``directory`` that runs ``program`` with its arguments inside the namespace
        (for launchers that take a path, not a command, such as Playwright's)."""
        path = directory / f"{self.name}-{Path(program).name}"
        path.write_text(f"#!/bin/sh\nexec {_ip()} netns exec {self.name} {program} \"$@\"\n")
        path.chmod(0o755)
        return path


@contextlib.contextmanager
def net_host() -> Iterator[NetHost]:
    """A new test host, removed again (namespace and veth pair) however the block ends.

    The namespace's name reserves its address block: `ip netns add` of a name in use fails, so two
    runs at once (or a run after one that was killed before cleaning up) take different blocks."""
    for block in range(BLOCKS):
        name = f"{NAME}{block}"
        made = subprocess.run([_ip(), "netns", "add", name], capture_output=True, text=True)
        if made.returncode == 0:
            break
        if "exists" not in made.stderr:
            raise RuntimeError(f"`ip netns add {name}` failed (the browser call tests need root): {made.stderr.strip()}")
    else:
        raise RuntimeError(f"all {BLOCKS} test host namespaces {NAME}0..{NAME}{BLOCKS - 1} are in use "
                           f"(left behind by killed runs? `ip netns del` them)")
    outer, inner = f"{name}h", f"{name}n"
    host = NetHost(name, f"{PREFIX}{4 * block + 2}", f"{PREFIX}{4 * block + 1}", outer)
    try:
        _run("link", "add", outer, "type", "veth", "peer", "name", inner, "netns", name)
        # No IPv6 link-local addresses: the browsers would offer them as candidates too.
        _run("link", "set", outer, "addrgenmode", "none")
        _run("-n", name, "link", "set", inner, "addrgenmode", "none")
        _run("addr", "add", f"{host.gateway}/30", "dev", outer)
        _run("-n", name, "addr", "add", f"{host.address}/30", "dev", inner)
        _run("link", "set", outer, "up")
        _run("-n", name, "link", "set", inner, "up")
        _run("-n", name, "link", "set", "lo", "up")  # the browser's driver talks to it on the namespace's loopback
        yield host
    finally:
        subprocess.run([_ip(), "link", "del", outer], capture_output=True)  # takes its peer with it
        subprocess.run([_ip(), "netns", "del", name], capture_output=True)


def _ip() -> str:
    path = shutil.which("ip") or "/usr/sbin/ip"
    if not Path(path).exists():
        raise RuntimeError("`ip` is needed for the test hosts: apt-get install iproute2 (tests/run.sh does)")
    return path


def _run(*argv: str) -> None:
    done = subprocess.run([_ip(), *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(argv)}` failed: {done.stderr.strip()}")
