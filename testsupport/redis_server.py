"""A real Redis for the tests: one ``redis-server`` per test run, on a free loopback port.

Debian's ``redis-server`` (tests/run.sh installs it), started with nothing
written to disk and stopped when the run ends. Tests reach it only
through the ``redis_server`` fixture, and each test keeps to keys under a
prefix of its own (``redis_prefix``), so that tests never see each other's
keys and no test talks to a Redis it did not start.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from testsupport.daemon import free_port

START_TIMEOUT = 10.0


@dataclass
class RedisServer:
    """A running ``redis-server``: where it listens, and its process."""

    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self, *words: str) -> str:
        """Run one command with redis-cli; returns its output (for a test's deliberate faults)."""
        done = subprocess.run(["redis-cli", "-p", str(self.port), *words], capture_output=True, text=True, timeout=10)
        return done.stdout.strip()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(log: Path, port: int | None = None) -> RedisServer:
    """A new ``redis-server`` on ``port`` (default: a free loopback port), answering PING, holding nothing;
    raises RuntimeError when it does not start."""
    port = free_port() if port is None else port
    out = log.open("wb")
    process = subprocess.Popen(
        ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", str(port),
         "--protected-mode", "yes", "--dir", str(log.parent)],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out.close()
    deadline = time.monotonic() + START_TIMEOUT
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_redis(RedisServer(port, process, log))
            raise RuntimeError(f"redis-server did not start on port {port}:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)
    return RedisServer(port, process, log)


def stop_redis(server: RedisServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """The test run's Redis (started on first use, stopped at the end); skips when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (tests/run.sh installs it: apt-get install redis-server)")
    server = start_redis(tmp_path_factory.mktemp("redis") / "redis-server.log")
    yield server
    stop_redis(server)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{uuid.uuid4().hex[:12]}:"
