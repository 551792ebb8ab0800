"""What every test folder shares: a real `videoroomd serve` process on loopback.

Tests are filed by kind: unit/ opens no socket and starts no daemon; daemon/ runs a real daemon,
sockets on loopback or aiortc participants; browser/ drives Chromium, Firefox or the official
npm clients. The support code they use is the top-level package testsupport/; no test module
imports a conftest.
"""

from __future__ import annotations

import pytest

from testsupport.daemon import DaemonProcess, config_text, free_port, stop_after_test
from testsupport.redis_server import redis_prefix, redis_server  # noqa: F401  (fixtures: the test run's Redis)


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
    stop_after_test(started)

