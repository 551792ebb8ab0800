"""Shared test helpers: config files, and a real `videoroomd serve` process on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from redis_server import redis_prefix, redis_server  # noqa: F401  (fixtures: the session's Redis)

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(rooms: str = "[rooms.lobby]\nmax_peers = 4\n", *, port: int = 0, server: str = "", log: str = "",
                media: str = "workers = 0") -> str:
    """A config for tests; the media runs on a thread of the daemon unless ``media`` says otherwise."""
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log()
            if needle in text:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} never appeared in the daemon's output:\n{self.log()}")

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


@pytest.fixture
def start_daemon(tmp_path):
    """Start a real daemon on a config text; every one started is stopped afterwards."""
    started: list[DaemonProcess] = []

    def start(text: str | None = None, *, rooms: str = "[rooms.lobby]\nmax_peers = 4\n", server: str = "",
              log: str = "", media: str = "workers = 0", port: int | None = None, env: dict[str, str] | None = None,
              wait: bool = True, name: str = "videoroomd.toml") -> DaemonProcess:
        """``text`` is used as it is (it must listen on ``port``); else a config is made of the parts."""
        port = free_port() if port is None else port
        path = tmp_path / name
        path.write_text(text if text is not None else config_text(rooms, port=port, server=server, log=log, media=media))
        daemon = DaemonProcess(path, port, env)
        started.append(daemon)
        if wait:
            daemon.wait_healthy()
        return daemon

    yield start
    for daemon in started:
        daemon.stop()
