"""A daemon started under a low file-descriptor limit: it raises what it may, says so, and keeps serving at the limit."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
import urllib.request

import pytest
import trio

from testsupport.daemon import config_text, free_port
from testsupport.edge_helpers import connect, exchange, get, status_of

SERVER = "max_connections = 1000\nmax_connections_per_address = 1000\nconnections_per_second = 100000"

pytestmark = pytest.mark.slow  # each fills a daemon's house or its descriptors: seconds


def start(tmp_path, soft: int, hard: int) -> tuple[subprocess.Popen, int, object]:
    port = free_port()
    config = tmp_path / "videoroomd.toml"
    config.write_text(config_text(port=port, server=SERVER).replace('level = "debug"', 'level = "info"'))
    output = open(tmp_path / "videoroomd.out", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "videoroomd", "serve", "--config", str(config)], stdout=output,
        stderr=subprocess.STDOUT, cwd=tmp_path,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)))
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as answer:
                assert answer.status == 200
                return process, port, output
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "videoroomd.out").read_text()
            time.sleep(0.1)


def log_lines(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "videoroomd.out").read_text().splitlines() if line.startswith("{")]


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=15)


async def healthz_kept_alive(stream: trio.SocketStream) -> int:
    """/healthz asked on an open connection that stays open; the status of the answer."""
    await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    with trio.fail_after(5):
        while not data.endswith(b"\r\n\r\nok\n"):
            chunk = await stream.receive_some(4096)
            assert chunk, "the kept-alive connection was closed"
            data += chunk
    return status_of(data)


def test_the_soft_limit_is_raised_to_the_hard_one_at_start(tmp_path):
    process, _port, _output = start(tmp_path, 200, 4096)
    try:
        raised = [line for line in log_lines(tmp_path) if line["event"] == "file descriptor limit raised"]
        assert [(line["soft_before"], line["soft"]) for line in raised] == [(200, 4096)]
        assert not [line for line in log_lines(tmp_path) if "below what the configured caps" in line["event"]]
    finally:
        stop(process)


async def test_out_of_descriptors_the_open_connections_are_served_and_the_log_stays_small(tmp_path):
    process, port, _output = start(tmp_path, 60, 60)
    try:
        warned = [line for line in log_lines(tmp_path) if "below what the configured caps" in line["event"]]
        assert warned and warned[0]["limit"] == 60 and warned[0]["needed"] >= 1000
        kept = await connect(port)
        assert await healthz_kept_alive(kept) == 200
        flood = []
        with trio.move_on_after(5):
            for _ in range(200):  # far more than fit: the rest wait in the kernel's queue
                flood.append(await connect(port))
        await trio.sleep(2)  # the accept loop meets the limit again and again meanwhile
        assert await healthz_kept_alive(kept) == 200
        for stream in flood:
            await trio.aclose_forcefully(stream)
        with trio.fail_after(15):
            while status_of(await exchange(port, get("/healthz"))) != 200:
                await trio.sleep(0.2)
        assert await healthz_kept_alive(kept) == 200
        assert process.poll() is None
        lines = log_lines(tmp_path)
        short = [line for line in lines if line["event"].startswith("cannot accept connections")]
        assert 1 <= len(short) <= 2 and "Too many open files" in short[0]["error"]
        assert not [line for line in lines if "Traceback" in json.dumps(line)]
        assert len((tmp_path / "videoroomd.out").read_bytes()) < 20000
    finally:
        stop(process)
