"""The daemon under test: a real ``videoroomd serve`` on 127.0.0.1, with a config made for the run."""

from __future__ import annotations

import json
import os
import secrets
import signal
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import trio

from testsupport.daemon import free_port

from . import procfs
from .processes import Child
from .relay import turn_counters

ROOM_PREFIX = "bench"  # the rooms are bench1, bench2, ...


def room_names(count: int) -> list[str]:
    return [f"{ROOM_PREFIX}{index}" for index in range(1, count + 1)]


def config_text(port: int, max_peers: int, log_file: Path, rooms: list[str], workers: int | str,
                turn_port: int | None = None, host: str = "127.0.0.1", plain_rooms: list[str] | None = None,
                admin_token: str | None = None, data_plane: str | None = None,
                recording_dir: Path | None = None, recorded_rooms: list[str] | None = None) -> str:
    """The daemon's config; ``turn_port``: run the built-in TURN server on 127.0.0.1 there
    (for ``--relay``), with its defaults otherwise (per-user bandwidth limit included).
    ``host``: the address it listens and has its media on (``--simulcast``: a benchmark host's
    gateway, testsupport.netns), then answering to that name alone and showing its admin view to
    ``admin_token``; ``plain_rooms``: rooms with ``simulcast = false`` besides ``rooms``;
    ``data_plane``: ``[media] data_plane`` (None: the daemon's default); ``recorded_rooms``: rooms
    with ``recording = "always"`` into ``recording_dir`` (bench.recording_runs)."""
    workers_value = f'"{workers}"' if isinstance(workers, str) else str(workers)
    room_tables = "".join(f"\n[rooms.{room}]\nmax_peers = {max_peers}\n" for room in rooms)
    room_tables += "".join(f"\n[rooms.{room}]\nmax_peers = {max_peers}\nsimulcast = false\n"
                           for room in plain_rooms or [])
    room_tables += "".join(f'\n[rooms.{room}]\nmax_peers = {max_peers}\nrecording = "always"\n'
                           for room in recorded_rooms or [])
    if recording_dir is not None:
        room_tables += f'\n[recording]\ndirectory = "{recording_dir}"\n'
    turn = "" if turn_port is None else f'\n[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    server = "" if host == "127.0.0.1" else f'hostnames = ["{host}"]\n'
    if admin_token is not None:
        server += f'admin_token = "{admin_token}"\n'
    plane = "" if data_plane is None else f'data_plane = "{data_plane}"\n'
    return f"""\
[server]
listen = "{host}:{port}"
connections_per_second = 1000   # every bot and every poll of this harness comes from one address
drain_timeout = 1
{server}
[ice]
addresses = ["{host}"]

[log]
level = "info"
format = "json"
file = "{log_file}"

[media]
workers = {workers_value}
{plane}{turn}{room_tables}"""


def _get(url: str, timeout: float = 2.0, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Daemon:
    def __init__(self, workdir: Path, repo: Path, max_peers: int, rooms: list[str], workers: int | str = "auto",
                 cpus: set[int] | None = None, turn: bool = False, host: str = "127.0.0.1",
                 plain_rooms: list[str] | None = None, data_plane: str | None = None,
                 recorded_rooms: list[str] | None = None):
        """``host``: where it listens and has its media (not loopback: its admin view then needs a
        token, made here); ``plain_rooms``: rooms without simulcast, besides ``rooms``;
        ``recorded_rooms``: rooms recorded from their first track on, into ``recording_dir``."""
        self.workdir = workdir
        self.cpus = cpus  # the daemon runs on these CPUs only, and so do its workers ("auto": one per CPU)
        self.rooms = rooms + list(plain_rooms or []) + list(recorded_rooms or [])
        self.recording_dir = workdir / "recordings" if recorded_rooms else None
        if self.recording_dir is not None:
            self.recording_dir.mkdir(exist_ok=True)
        self.workers = workers
        self.repo = repo
        self.port = free_port(host=host)
        self.url = f"http://{host}:{self.port}"
        self.socket_url = f"ws://{host}:{self.port}/socket/websocket?vsn=2.0.0"
        self.admin_token = None if host == "127.0.0.1" else secrets.token_hex(16)
        self.log_file = workdir / "videoroomd.log"
        self.config = workdir / "videoroomd.toml"
        self.turn_port = free_port() if turn else None
        self.config.write_text(config_text(self.port, max_peers, self.log_file, rooms, workers, self.turn_port,
                                           host=host, plain_rooms=plain_rooms, admin_token=self.admin_token,
                                           data_plane=data_plane, recording_dir=self.recording_dir,
                                           recorded_rooms=recorded_rooms))
        self.child: Child | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    async def start(self, timeout: float = 30.0) -> None:
        argv = [sys.executable, "-m", "videoroomd", "serve", "--config", str(self.config)]
        self.child = Child(argv, self.workdir / "videoroomd.out", self.repo, cpus=self.cpus)
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

    async def stop(self) -> tuple[int | None, list[int]]:
        """Stop the daemon; returns its exit status and the pids of processes it started (its
        media workers) that were still there 5 s after it ended, which are then killed."""
        if self.child is None:
            return None, []
        below = {}
        if self.child.proc.poll() is None:
            below = {pid: procfs.start_ticks(pid) for pid in self.processes() - {self.pid}}
        code = await self.child.stop(grace=10.0)
        deadline = time.monotonic() + 5.0
        left = below
        while left and time.monotonic() < deadline:
            await trio.sleep(0.1)
            left = {pid: started for pid, started in left.items() if procfs.start_ticks(pid) == started}
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return code, sorted(left)

    async def get(self, path: str) -> tuple[int, bytes]:
        return await trio.to_thread.run_sync(_get, self.url + path, 2.0, self.admin_token)

    async def admin(self) -> dict:
        """The admin view (/admin/rooms): every room with its worker, and ``media_workers``."""
        status, body = await self.get("/admin/rooms")
        if status != 200:
            raise RuntimeError(f"/admin/rooms answered {status}: {body[:200]!r}")
        return json.loads(body)

    async def turn_counters(self) -> dict:
        """The built-in TURN server's counters from /metrics (bench.relay.turn_counters)."""
        status, body = await self.get("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}: {body[:200]!r}")
        return turn_counters(body.decode())

    async def wait_rooms_empty(self, timeout: float) -> bool:
        """Whether every bench room lists no peers and no tracks within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rooms = [r for r in (await self.admin())["rooms"] if r["name"] in self.rooms]
            if all(r.get("peers", 0) == 0 and r.get("tracks", 0) == 0 for r in rooms):
                return True
            await trio.sleep(0.25)
        return False

    # -- what the processes cost -------------------------------------------------------
    def usage(self) -> tuple[float, float, dict[tuple[int, int], float]]:
        """CPU seconds of the daemon and its media workers together, of which system, and per thread."""
        return procfs.tree_usage(self.pid)

    def cpu_seconds(self) -> float:
        """CPU seconds of the daemon process alone (its media workers not counted)."""
        return procfs.cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return procfs.rss_mib(self.pid)

    def worker_cpu(self, workers: list[dict]) -> dict[str, dict]:
        """Each media worker (rows of the admin view's ``media_workers``) with its CPU seconds so far.

        A worker process's CPU comes from /proc of its pid; a worker that is a thread of the
        daemon (``workers = 0``) has the daemon's pid, and its CPU is the thread's own time
        as the worker reports it. ``cpu`` is None for a worker that is not running.
        """
        result = {}
        for row in workers:
            pid, cpu, thread = row.get("pid"), None, row.get("pid") == self.pid
            if row.get("running") and pid is not None:
                try:
                    cpu = row.get("cpu_seconds") if thread else procfs.cpu_seconds(pid)
                except (FileNotFoundError, ProcessLookupError):
                    cpu = None
            result[str(row["worker"])] = {"pid": pid, "thread": thread, "cpu": cpu,
                                          "restarts": row.get("restarts", 0)}
        return result

    async def memory(self) -> dict:
        """RSS in MiB of the daemon process and of each media worker process (a worker
        that is a thread of the daemon has no RSS of its own and is left out), and the PSS of the
        whole tree (``pss_total``: the pages its processes share counted once)."""
        workers = {}
        for row in (await self.admin()).get("media_workers", []):
            pid = row.get("pid")
            if row.get("running") and pid is not None and pid != self.pid:
                try:
                    workers[str(row["worker"])] = procfs.rss_mib(pid)
                except (FileNotFoundError, ProcessLookupError):
                    continue
        return {"daemon": self.rss_mib(), "workers": workers, "pss_total": procfs.tree_memory_mib(self.pid)[1]}

    def processes(self) -> set[int]:
        """The daemon and every live process below it."""
        return procfs.tree_pids(self.pid)

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
