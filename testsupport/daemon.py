"""A real `videoroomd serve` in a child process on loopback, and the config texts the tests give it."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterable, Iterator

from testsupport.wait import wait_for


FIXED_PORTS = 12000  # how many ports below the kernel's ephemeral range free_port picks from


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _free_both(host: str, port: int) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, \
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind((host, port))
            udp.bind((host, port))
    except OSError:
        return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` (IPv4) for TCP and UDP alike (a TURN listener takes both), picked below the
    kernel's ephemeral range: a port the kernel hands out for bind(0) may go to any other socket of the
    machine (an aiortc candidate of a test running beside) before the server it was meant for binds it.
    Where that range starts too low to leave room below it, a port the kernel hands out."""
    low = _ephemeral_low()
    for _ in range(100):
        if low > FIXED_PORTS + 1024:
            port = low - 1 - secrets.randbelow(FIXED_PORTS)
        else:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        if _free_both(host, port):
            return port
    raise RuntimeError(f"no port free for both TCP and UDP on {host} in 100 tries")


def config_text(rooms: str = "[rooms.lobby]\nmax_peers = 4\n", *, port: int = 0, server: str = "", log: str = "",
                media: str = "workers = 0") -> str:
    """A config for tests; the media runs on a thread of the daemon unless ``media`` says otherwise.
    ``VIDEOROOMD_TEST_DATA_PLANE`` in the environment ("python" or "native") runs every such daemon's media on
    that data plane where ``media`` names none (the media tests again on the Python reference plane; without
    it they run on the default, the compiled one)."""
    plane = os.environ.get("VIDEOROOMD_TEST_DATA_PLANE")
    if plane and "data_plane" not in media:
        media = f'{media}\ndata_plane = "{plane}"'
    return f'[server]\nlisten = "127.0.0.1:{port}"\n{server}\n[media]\n{media}\n[log]\nlevel = "debug"\n{log}\n{rooms}'


class DaemonProcess:
    """`videoroomd serve` in a child process, with its output captured to a file."""

    def __init__(self, config: Path, port: int, env: dict[str, str] | None = None):
        self.config = config
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.output = config.with_suffix(".out")
        self._out = open(self.output, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "videoroomd", "serve", "--config", str(config)],
            stdout=self._out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=config.parent,
        )

    def wait_healthy(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"daemon not healthy after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 10.0) -> str:
        """The daemon's output once ``needle`` is in it; AssertionError after ``timeout`` seconds."""
        return wait_for(lambda: text if needle in (text := self.log()) else "", timeout,
                        f"{needle!r} in the daemon's output", step=0.05, details=lambda: "output:\n" + self.log())

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()
        return self.proc.returncode


def stop_after_test(daemons: Iterable[DaemonProcess], patience: float = 1.0) -> None:
    """Stop the daemons once their test is over, all at once: SIGTERM, and to those whose drain
    still waits after ``patience`` seconds (on pages or bots the test left in a call, which would
    hold it for the whole ``drain_timeout``) the second signal that stops a daemon at once. A test
    that looks at the stop itself calls :meth:`DaemonProcess.stop`."""
    running = [daemon for daemon in daemons if daemon.proc.poll() is None]
    for daemon in running:
        daemon.signal(signal.SIGTERM)
    deadline = time.monotonic() + patience
    for daemon in running:
        try:
            daemon.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            daemon.signal(signal.SIGTERM)
    for daemon in daemons:
        daemon.stop()


@contextlib.contextmanager
def running_daemon(directory: Path, rooms: str, *, media: str = "workers = 0") -> Iterator[DaemonProcess]:
    """A daemon on a config of ``rooms`` and ``media`` (as the start_daemon fixture makes it) in
    ``directory``, healthy, for a fixture wider than one test (a module whose tests each use a room
    of their own); stopped after the block."""
    port = free_port()
    config = directory / "videoroomd.toml"
    config.write_text(config_text(rooms, port=port, media=media))
    daemon = DaemonProcess(config, port)
    try:
        daemon.wait_healthy()
        yield daemon
    finally:
        stop_after_test([daemon])
