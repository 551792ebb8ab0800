"""The daemon under test: a real ``videoroomd serve`` on 127.0.0.1, with a config made for the run."""

from __future__ import annotations

import json
import socket
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import trio

from . import procfs
from .processes import Child

ROOM = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config_text(port: int, max_peers: int, log_file: Path) -> str:
    return f"""\
[server]
listen = "127.0.0.1:{port}"
connections_per_second = 1000   # every bot and every poll of this harness comes from 127.0.0.1
drain_timeout = 1

[ice]
addresses = ["127.0.0.1"]

[log]
level = "info"
format = "json"
file = "{log_file}"

[rooms.{ROOM}]
max_peers = {max_peers}
"""


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Daemon:
    def __init__(self, workdir: Path, repo: Path, max_peers: int):
        self.workdir = workdir
        self.repo = repo
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.socket_url = f"ws://127.0.0.1:{self.port}/socket/websocket?vsn=2.0.0"
        self.log_file = workdir / "videoroomd.log"
        self.config = workdir / "videoroomd.toml"
        self.config.write_text(config_text(self.port, max_peers, self.log_file))
        self.child: Child | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    async def start(self, timeout: float = 30.0) -> None:
        argv = [sys.executable, "-m", "videoroomd", "serve", "--config", str(self.config)]
        self.child = Child(argv, self.workdir / "videoroomd.out", self.repo)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.proc.poll() is not None:
                raise RuntimeError(f"videoroomd exited with {self.child.proc.returncode}; see {self.child.log}")
            try:
                if (await trio.to_thread.run_sync(_get, self.url + "/healthz"))[0] == 200:
                    return
            except OSError:
                pass
            await trio.sleep(0.2)
        raise RuntimeError(f"videoroomd not healthy after {timeout:.0f} s; see {self.child.log}")

    async def stop(self) -> int | None:
        return await self.child.stop(grace=10.0) if self.child is not None else None

    async def get(self, path: str) -> tuple[int, bytes]:
        return await trio.to_thread.run_sync(_get, self.url + path)

    async def room(self) -> dict:
        status, body = await self.get("/admin/rooms")
        if status != 200:
            raise RuntimeError(f"/admin/rooms answered {status}: {body[:200]!r}")
        return next(r for r in json.loads(body)["rooms"] if r["name"] == ROOM)

    async def wait_room_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            room = await self.room()
            if room.get("peers", 0) == 0 and room.get("tracks", 0) == 0:
                return True
            await trio.sleep(0.25)
        return False

    # -- what the process costs --------------------------------------------------------
    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self.pid)

    def system_seconds(self) -> float:
        return procfs.system_seconds(self.pid)

    def thread_cpu(self) -> dict[int, float]:
        return procfs.thread_cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return procfs.rss_mib(self.pid)

    # -- its log -----------------------------------------------------------------------
    def log_size(self) -> int:
        return self.log_file.stat().st_size if self.log_file.exists() else 0

    def log_entries(self, since: int) -> list[dict]:
        """The JSON log entries written after byte ``since``."""
        if not self.log_file.exists():
            return []
        entries = []
        with open(self.log_file, "rb") as log:
            log.seek(since)
            for line in log:
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    continue
        return entries


def log_problems(entries: list[dict]) -> Counter:
    """Warnings and errors, counted by (level, event, error)."""
    problems: Counter = Counter()
    for entry in entries:
        level = entry.get("level", "")
        if level in ("warning", "error", "critical"):
            problems[(level, entry.get("event", ""), str(entry.get("error", ""))[:120])] += 1
    return problems


def connection_drops(entries: list[dict], before: str) -> list[str]:
    """Media connections the server saw close, fail or disconnect before ISO time ``before``."""
    return [f"{e['timestamp']} {e.get('peer', '?')[:8]} {e['state']}" for e in entries
            if e.get("event") == "media connection" and e.get("state") in ("closed", "failed", "disconnected")
            and e.get("timestamp", "") < before]
