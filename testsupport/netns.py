"""Hosts of our own: each a network namespace joined to this one by a veth pair.

Two users, two address ranges, 10.213.X.0/24 cut into /30 blocks, that no network anywhere
uses and that nothing routes beyond the veth pairs:

- the test suite (:func:`net_host`, 10.213.77.0/24): a test that needs an address other than
  loopback (Firefox gathers no ICE candidate on 127.0.0.1) makes one and sends traffic only to
  the addresses made here. The suite runs as root where it runs, so a failure is an error,
  never a skip.
- the simulcast benchmark (:func:`hosts`, 10.213.78.0/24): ``python -m bench.sfu --simulcast``
  runs every Chromium participant on a host of its own, and the daemon on this machine's end of
  the first host's veth pair (the others route to it through their own pair). What the daemon
  sends a participant therefore leaves this namespace through that participant's veth end, and
  a token bucket (``tc qdisc … tbf``) on it limits that participant's downlink alone, at a rate
  the benchmark changes mid-run, as a weak link would. Its uplink (what it publishes) is not
  limited.

Needs root, iproute2 (``ip``, ``tc``).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

PREFIX = "10.213.78."   # the benchmark hosts' own range; block N is PREFIX{4N}/30
BLOCKS = 64
NAME = "vrbench"
TEST_PREFIX = "10.213.77."  # the test hosts' own range
TEST_NAME = "vrtest"
QUEUE_MS = 100          # the most a packet waits in a limited link's queue before it is dropped


@dataclass(frozen=True)
class Host:
    """A namespace ``name``; ``address`` is its end of the veth pair, ``gateway`` the end here
    (device ``outer``), where its downlink is limited."""

    name: str
    address: str
    gateway: str
    outer: str

    def command(self, *argv: str) -> list[str]:
        """``argv`` run inside the namespace."""
        return [_tool("ip"), "netns", "exec", self.name, *argv]

    def wrapper(self, program: str, directory: Path) -> Path:
        """An executable in ``directory`` that runs ``program`` inside the namespace (Playwright
        launches a browser by path)."""
        return wrapper(self.name, program, directory)

    def route_to(self, address: str) -> None:
        """Reach ``address`` (another host's gateway: where the daemon listens) through this host's gateway."""
        _run("ip", "-n", self.name, "route", "add", f"{address}/32", "via", self.gateway)

    def limit(self, kbps: int) -> None:
        """Limit what reaches the host to ``kbps`` kbit/s from now on (a token bucket, packets
        beyond QUEUE_MS of queue dropped), or change the limit it has."""
        burst = max(3000, kbps * 1000 // 8 // 50)  # bytes: 20 ms at the rate, at least two full packets
        _run("tc", "qdisc", "replace", "dev", self.outer, "root", "tbf", "rate", f"{kbps}kbit",
             "burst", str(burst), "latency", f"{QUEUE_MS}ms")

    def unlimit(self) -> None:
        """Take the limit away: the link is as fast as the machine again."""
        done = subprocess.run([_tool("tc"), "qdisc", "del", "dev", self.outer, "root"], capture_output=True, text=True)
        if done.returncode != 0 and "No such file" not in done.stderr and "Cannot delete" not in done.stderr:
            raise RuntimeError(f"`tc qdisc del dev {self.outer} root` failed: {done.stderr.strip()}")

    def limited_kbps(self) -> int | None:
        """The rate the host's link is limited to now (kbit/s), None when it is not."""
        shown = subprocess.run([_tool("tc"), "qdisc", "show", "dev", self.outer], capture_output=True, text=True)
        for line in shown.stdout.splitlines():
            words = line.split()
            if "tbf" in words and "rate" in words:
                return _kbits(words[words.index("rate") + 1])
        return None


def wrapper(namespace: str, program: str, directory: Path) -> Path:
    """An executable in ``directory`` that runs ``program`` with its arguments inside network
    namespace ``namespace`` (Playwright launches a browser by path)."""
    path = directory / f"{namespace}-{Path(program).name}"
    path.write_text(f"#!/bin/sh\nexec {_tool('ip')} netns exec {namespace} {program} \"$@\"\n")
    path.chmod(0o755)
    return path


def _kbits(text: str) -> int:
    """tc's way of writing a rate ("600Kbit", "2Mbit", "800bit") in kbit/s."""
    units = {"kbit": 1, "mbit": 1000, "gbit": 1_000_000, "bit": 0.001}
    lower = text.lower()
    for unit, factor in units.items():
        if lower.endswith(unit):
            return round(float(lower[: -len(unit)]) * factor)
    raise ValueError(f"not a tc rate: {text!r}")


@contextlib.contextmanager
def hosts(count: int) -> Iterator[list[Host]]:
    """``count`` new hosts, the first one's gateway reachable from all (where the daemon is to
    listen); removed again (namespaces, veth pairs, limits) however the block ends."""
    made: list[Host] = []
    try:
        for _ in range(count):
            made.append(new_host(NAME, PREFIX, "--simulcast needs root"))
        for host in made[1:]:
            host.route_to(made[0].gateway)
        yield made
    finally:
        for host in made:
            remove(host)


@contextlib.contextmanager
def net_host() -> Iterator[Host]:
    """A new test host, removed again (namespace and veth pair) however the block ends."""
    host = new_host(TEST_NAME, TEST_PREFIX, "the browser call tests need root")
    try:
        yield host
    finally:
        remove(host)


def new_host(name_stem: str, prefix: str, needs: str, blocks: int = BLOCKS) -> Host:
    """A host named ``name_stem``N in the first free /30 block N of ``prefix`` (e.g. "10.213.78."),
    to be given back with :func:`remove`. `ip netns add` of a name in use fails, so the name
    reserves the block: two runs at once, or a run after a killed one, take different blocks.
    ``needs`` says in an error what needs the host (and root)."""
    for block in range(blocks):
        name = f"{name_stem}{block}"
        made = subprocess.run([_tool("ip"), "netns", "add", name], capture_output=True, text=True)
        if made.returncode == 0:
            break
        if "exists" not in made.stderr:
            raise RuntimeError(f"`ip netns add {name}` failed ({needs}): {made.stderr.strip()}")
    else:
        raise RuntimeError(f"all {blocks} host namespaces {name_stem}0..{name_stem}{blocks - 1} are in use "
                           f"(left behind by killed runs? `ip netns del` them)")
    outer, inner = f"{name}h", f"{name}n"
    host = Host(name, f"{prefix}{4 * block + 2}", f"{prefix}{4 * block + 1}", outer)
    try:
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner, "netns", name)
        # No IPv6 link-local addresses: browsers would offer them as candidates too.
        _run("ip", "link", "set", outer, "addrgenmode", "none")
        _run("ip", "-n", name, "link", "set", inner, "addrgenmode", "none")
        _run("ip", "addr", "add", f"{host.gateway}/30", "dev", outer)
        _run("ip", "-n", name, "addr", "add", f"{host.address}/30", "dev", inner)
        _run("ip", "link", "set", outer, "up")
        _run("ip", "-n", name, "link", "set", inner, "up")
        _run("ip", "-n", name, "link", "set", "lo", "up")  # a browser's driver talks to it on the namespace's loopback
    except BaseException:
        remove(host)
        raise
    return host


def remove(host: Host) -> None:
    """Take ``host`` away: its namespace, its veth pair and any limit on it."""
    subprocess.run([_tool("ip"), "link", "del", host.outer], capture_output=True)  # its peer and qdisc with it
    subprocess.run([_tool("ip"), "netns", "del", host.name], capture_output=True)


def _tool(name: str) -> str:
    path = shutil.which(name) or f"/usr/sbin/{name}"
    if not Path(path).exists():
        raise RuntimeError(f"`{name}` is needed for network namespaces: apt-get install iproute2")
    return path


def _run(tool: str, *argv: str) -> None:
    done = subprocess.run([_tool(tool), *argv], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"`{tool} {' '.join(argv)}` failed: {done.stderr.strip()}")
