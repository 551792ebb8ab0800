"""``python -m bench.peers``: videoroomd and Janus side by side, the same load, one sitting.

Both servers run from the start to the end of the sitting: a real
``videoroomd serve`` (as ``bench.sfu`` starts it, on 127.0.0.1, its default
media workers) and Janus's VideoRoom (:mod:`bench.janus`). For each round and
each N, N aiortc participants publish the same clip (``bench.clip``: VP8
320x240 30 fps and Opus, packed, never encoded) and receive everyone else,
first on videoroomd (:mod:`bench.bot`), then on Janus (:mod:`bench.janus_bot`),
so a slow moment of the shared machine falls on both in turn. Each run waits
until every participant receives audio and video from every other, waits
``--warmup`` seconds, and measures ``--duration`` seconds: the server's
process tree CPU (user and kernel apart, /proc) per forwarded packet, counted
at the receivers for both, and the tree's RSS at the end. The last lines are
a table with the median over rounds (and the range) and the ratio
videoroomd ÷ Janus of each round. A run whose participant failed (a call
the server dropped, say) is listed with its error and left out of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import trio

from . import clip as clips
from . import procfs
from .daemon import Daemon, room_names
from .janus import ROOM, Janus, binary, version
from .peer_figures import PeerSample, run_figures, table
from .processes import Bot, cpu_list
from .sfu import REPO, bot_failure, machine_text, revision
from testsupport.netns import NAME, PREFIX, new_host, remove

POLL = 1.0  # seconds between two looks at whether every pair has media


class Server:
    """One server under test, as the runs see it: its participants' command line and its tree."""

    def __init__(self, name: str, process: Daemon | Janus, url: str, room: str, bot_module: str,
                 bot_options: list[str], room_empty=None):
        self.name = name
        self.process = process
        self.url = url
        self.room = room
        self.bot_module = bot_module
        self.bot_options = bot_options
        self.room_empty = room_empty  # async (timeout) -> whether the room emptied: the next run starts alone

    def cpu(self) -> tuple[float, float]:
        """(user, kernel) CPU seconds of the server's process tree so far."""
        cpu, system, _threads = procfs.tree_usage(self.process.pid)
        return cpu - system, system

    def memory_mib(self) -> tuple[float, float]:
        """(RSS, PSS) of the server's process tree, each summed over its processes."""
        return procfs.tree_memory_mib(self.process.pid)

    def memory_text(self) -> str:
        rss, pss = self.memory_mib()
        return f"{self.name} {rss:.0f} MiB RSS, {pss:.0f} MiB PSS"


class Sitting:
    def __init__(self, args: argparse.Namespace, workdir: Path, clip_path: Path):
        self.args = args
        self.workdir = workdir
        self.clip_path = clip_path

    def spawn(self, server: Server, n: int, index: int) -> Bot:
        name = f"{server.name}-n{n}-bot{index}"
        a = self.args
        lifetime = 120 + 3 * n + a.settle_timeout + a.warmup + a.duration
        argv = [sys.executable, "-m", server.bot_module, server.url, server.room, name, str(self.clip_path),
                "--lifetime", str(lifetime), *server.bot_options]
        return Bot(argv, self.workdir / f"{name}.log", REPO, name, cpus=a.bot_cpus)

    async def sample(self, server: Server, bots: list[Bot]) -> PeerSample:
        """The server's CPU now and every participant's snap; raises BotFailed for one that is gone."""
        snaps: dict[str, dict] = {}

        async def one(bot: Bot) -> None:
            snaps[bot.name] = await bot.request("snap", "snap", timeout=10)

        t = time.monotonic()
        user, kernel = server.cpu()
        machine = procfs.machine_ticks()
        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(one, bot)
        return PeerSample(t, user, kernel, machine, snaps)

    @staticmethod
    def flowing(sample: PeerSample, n: int) -> bool:
        """Every participant receives packets on 2 (N - 1) receivers: audio and video of every other."""
        return all(sum(1 for entry in snap.get("received", {}).values() if entry.get("packets")) >= 2 * (n - 1)
                   for snap in sample.snaps.values())

    async def run(self, server: Server, n: int) -> dict:
        """One run of ``n`` participants on ``server``; returns its figures (:func:`run_figures`),
        with ``error`` when some pair never had media. Raises BotFailed (in trio's exception
        groups) when a participant fails; every participant is stopped before it returns."""
        bots = [self.spawn(server, n, index) for index in range(n)]
        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(bot.read_messages)
            try:
                return await self._measure(server, n, bots)
            finally:
                with trio.CancelScope(shield=True):
                    async with trio.open_nursery() as stopping:
                        for bot in bots:
                            stopping.start_soon(bot.stop)
                nursery.cancel_scope.cancel()

    async def _measure(self, server: Server, n: int, bots: list[Bot]) -> dict:
        """Join everyone, wait for media between every pair (or the settle timeout), warm up, measure."""
        a = self.args
        for bot in bots:
            await bot.expect("ready", timeout=60)
        began = time.monotonic()
        for index, bot in enumerate(bots):
            if index:
                await trio.sleep(a.stagger)
            await bot.request("join", "joined", timeout=30)
        settled = None
        while time.monotonic() < began + a.settle_timeout:
            if self.flowing(await self.sample(server, bots), n):
                settled = time.monotonic() - began
                break
            await trio.sleep(POLL)
        await trio.sleep(a.warmup)
        start = await self.sample(server, bots)
        await trio.sleep(a.duration)
        end = await self.sample(server, bots)
        figures = run_figures(server.name, n, start, end, *server.memory_mib())
        figures["flowing_after_s"] = None if settled is None else round(settled, 1)
        if settled is None:  # its figures say little about forwarding: left out of the table and ratios
            figures["error"] = f"some pair had no media {a.settle_timeout:.0f} s after the first join"
        return figures


async def main(args: argparse.Namespace) -> int:
    """The whole sitting; returns the exit status (2: no Janus). Both servers and the veth pair
    are stopped and removed however it ends."""
    if binary() is None:
        print("bench.peers: the `janus` program is not installed (apt-get install janus)", file=sys.stderr)
        return 2
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="videoroomd-peers-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tested = revision()
    print(f"machine: {machine_text()}\nvideoroomd: {tested} (data plane: {args.data_plane or 'default'})\nJanus: {version()}\nwork files: {workdir}", flush=True)
    width, height = (int(v) for v in args.size.split("x"))
    clip = clips.make(width, height, args.fps, seconds=4.0, video_kbps=args.video_kbps)
    clips.save(clip, workdir / "clip.pickle")
    print(f"media: {clip.describe()}", flush=True)
    host = new_host(NAME, PREFIX, "bench.peers needs root (Janus's media address)")
    daemon = Daemon(workdir, REPO, max_peers=max(args.n) + 1, rooms=room_names(1), workers=args.workers,
                    cpus=args.server_cpus, data_plane=args.data_plane)
    janus = Janus(workdir, max(args.n) + 1, host.gateway, cpus=args.server_cpus)
    try:
        await daemon.start()
        await janus.start()
        servers = [Server("videoroomd", daemon, daemon.socket_url, daemon.rooms[0], "bench.bot", [],
                          room_empty=daemon.wait_rooms_empty),
                   Server("janus", janus, janus.url, str(ROOM), "bench.janus_bot", ["--address", host.gateway])]
        await trio.sleep(2)  # the daemon's workers start after it answers
        print("idle memory of the tree: " + ", ".join(s.memory_text() for s in servers)
              + f"; Janus's media on {host.gateway} (this machine's end of a veth pair of its own)", flush=True)
        results = await run_all(args, workdir, servers)
    finally:
        with trio.CancelScope(shield=True):
            await janus.stop()
            await daemon.stop()
            remove(host)
    print(table(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"commit": tested, "machine": procfs.machine(), "runs": results},
                                              indent=1))
    return 0


async def run_all(args: argparse.Namespace, workdir: Path, servers: list[Server]) -> list[dict]:
    """Every round, N and server in turn; returns each run's figures (a failed run: its error)."""
    sitting = Sitting(args, workdir, workdir / "clip.pickle")
    results = []
    for round_index in range(args.rounds):
        for n in args.n:
            for server in servers:
                try:
                    figures = await sitting.run(server, n)
                except BaseException as error:
                    failure = bot_failure(error)
                    if failure is None:
                        raise
                    figures = {"server": server.name, "n": n, "error": str(failure)}
                figures["round"] = round_index + 1
                results.append(figures)
                print(json.dumps(figures), flush=True)
                if args.json:
                    Path(args.json).write_text(json.dumps({"runs": results}, indent=1))
                if server.room_empty is not None and not await server.room_empty(30):
                    print(f"  {server.name}: the room was not empty 30 s after the run", flush=True)
                await trio.sleep(args.pause)
    return results


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=lambda text: [int(v) for v in text.split(",")], default=[2, 4, 6, 8],
                        help="participant counts (default 2,4,6,8)")
    parser.add_argument("--rounds", type=int, default=2, help="how often the whole --n list runs on both servers")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds between every pair flowing and the window")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between two participants joining")
    parser.add_argument("--settle-timeout", type=float, default=40.0,
                        help="seconds every pair gets to start flowing before the run goes on regardless")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between two runs (the room empties)")
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--video-kbps", type=int, default=400)
    parser.add_argument("--workers", default="auto", help="videoroomd's [media] workers")
    parser.add_argument("--data-plane", choices=("python", "native"),
                        help="videoroomd's [media] data_plane (default: the daemon's default)")
    parser.add_argument("--server-cpus", type=cpu_list, help="run both servers on these CPUs only (taskset -c)")
    parser.add_argument("--bot-cpus", type=cpu_list, help="run the participants on these CPUs only")
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--workdir", help="config, logs, the clip (default: a new temporary directory)")
    args = parser.parse_args(argv)
    if args.workers != "auto":
        args.workers = int(args.workers)
    if min(args.n) < 2:
        parser.error("--n: every count must be at least 2 (someone to forward to)")
    return args


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("bench.peers: needs root (it makes a veth pair for Janus's media address)", file=sys.stderr)
        sys.exit(2)
    sys.exit(trio.run(main, parse(sys.argv[1:])))
