"""SFU benchmark: ``python -m bench.sfu [--n 2,4,6,8] [--duration 20] ...`` (see docs/benchmarks.md).

Starts ``videoroomd serve`` on 127.0.0.1 and, for each N, N participants
in separate processes (:mod:`bench.bot`) that publish a pre-encoded VP8 +
Opus clip and receive everyone else without decoding. After every pair
flows and a warm-up, it measures a steady window: the server's CPU time
(from /proc) against the RTP packets the subscribers received, frame
rates, and then one late joiner's wait for keyframes. Every child process
is stopped on the way out, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import trio

from . import clip as clips
from . import procfs
from .daemon import ROOM, Daemon, connection_drops, log_problems
from .processes import Bot, BotFailed
from .stats import Run, Sample, connection_trouble, pairs, summarize, table

REPO = Path(__file__).resolve().parent.parent
POLL = 0.5  # seconds between two looks at the bots while waiting


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, daemon: Daemon, clip_path: Path):
        self.args = args
        self.workdir = workdir
        self.daemon = daemon
        self.clip_path = clip_path

    def spawn(self, n: int, index: int) -> Bot:
        name = f"n{n}-bot{index}"
        a = self.args
        lifetime = 120 + a.stagger * n + a.settle_timeout + a.warmup + a.duration + a.late_timeout
        module = "bench.browser_bot" if a.chromium else "bench.bot"
        argv = [sys.executable, "-m", module, self.daemon.socket_url, ROOM, name, str(self.clip_path),
                "--lifetime", str(lifetime)]
        return Bot(argv, self.workdir / f"{name}.log", REPO, name)

    async def snaps(self, bots: list[Bot]) -> dict[str, dict]:
        result: dict[str, dict] = {}

        async def one(bot: Bot) -> None:
            result[bot.name] = await bot.request("snap", "snap", timeout=10)

        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(one, bot)
        return result

    async def sample(self, bots: list[Bot]) -> Sample:
        t = time.monotonic()
        cpu, system = self.daemon.cpu_seconds(), self.daemon.system_seconds()
        threads, machine = self.daemon.thread_cpu(), procfs.machine_ticks()
        return Sample(t, cpu, system, threads, machine, time.process_time(), await self.snaps(bots))

    @staticmethod
    def flowing(snaps: dict[str, dict], joined: dict[str, dict]) -> bool:
        """Every bot receives audio and video frames from every other bot."""
        for sub, pub in pairs(joined):
            received = {e.get("track"): e for e in snaps[sub].get("received", {}).values()}
            for track_id in joined[pub]["tracks"].values():
                if received.get(track_id, {}).get("frames", 0) == 0:
                    return False
        return True

    async def run_n(self, n: int) -> dict:
        bots = [self.spawn(n, i) for i in range(n + 1)]  # the last one joins late
        steady, late = bots[:n], bots[n]
        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(bot.read_messages)
            try:
                return await self._measure(n, steady, late)
            finally:
                with trio.CancelScope(shield=True):
                    async with trio.open_nursery() as stopping:
                        for bot in bots:
                            stopping.start_soon(bot.stop)
                nursery.cancel_scope.cancel()

    async def _measure(self, n: int, steady: list[Bot], late: Bot) -> dict:
        a = self.args
        for bot in steady + [late]:
            await bot.expect("ready", timeout=60)  # imports and clip loading done before anyone joins
        log_from = self.daemon.log_size()
        rss = {"before": self.daemon.rss_mib()}
        joined, settled = await self._join_all(n, steady)
        await trio.sleep(a.warmup)
        start = await self.sample(steady)
        await trio.sleep(a.duration)
        end = await self.sample(steady)
        rss["steady"] = self.daemon.rss_mib()
        run = Run(n, joined, start, end, settled, rss_mib=rss)
        run.late = await self._late_joiner(late, joined)
        run.final = {**await self.snaps(steady), late.name: run.late["snap"]}
        leaving = utc_now()
        for bot in steady + [late]:
            await bot.stop()
        if not await self.daemon.wait_room_empty(timeout=20):
            print(f"  N={n}: the room still lists peers or tracks 20 s after everyone left", flush=True)
        await trio.sleep(1)
        rss["after"] = self.daemon.rss_mib()
        entries = self.daemon.log_entries(log_from)
        run.log_problems = [(*key, count) for key, count in log_problems(entries).most_common()]
        run.server_drops = connection_drops(entries, before=leaving)
        run.restarts = (await self.daemon.room()).get("restarts", 0)
        figures = summarize(run)
        figures["details"] = {
            "log_problems": run.log_problems[:10],
            "server_drops": run.server_drops[:10],
            "bot_connection_trouble": connection_trouble(run.final)[:10],
            "bot_notes": [m for bot in steady + [late] for m in bot.notes][:10],
        }
        return figures

    async def _join_all(self, n: int, steady: list[Bot]) -> tuple[dict[str, dict], float | None]:
        """Join one bot every ``--stagger`` seconds; then wait until every pair has media (or give up)."""
        joined = {}
        began = time.monotonic()
        for index, bot in enumerate(steady):
            if index:
                await trio.sleep(self.args.stagger)
            joined[bot.name] = await bot.request("join", "joined", timeout=30)
        deadline = began + self.args.settle_timeout
        while time.monotonic() < deadline:
            if self.flowing(await self.snaps(steady), joined):
                settled = time.monotonic() - began
                print(f"  N={n}: every pair flowing after {settled:.1f} s", flush=True)
                return joined, settled
            await trio.sleep(POLL)
        print(f"  N={n}: some pairs still without media after {self.args.settle_timeout:.0f} s", flush=True)
        return joined, None

    async def _late_joiner(self, late: Bot, joined: dict[str, dict]) -> dict:
        info = await late.request("join", "joined", timeout=30)
        wanted = {j["tracks"]["video"] for j in joined.values()}
        deadline = time.monotonic() + self.args.late_timeout
        while True:
            snap = await late.request("snap", "snap", timeout=10)
            seen = {e.get("track") for e in snap["received"].values() if e.get("first_keyframe") is not None}
            if wanted <= seen or time.monotonic() > deadline:
                return {"joined": info, "snap": snap}
            await trio.sleep(POLL / 5)


def utc_now() -> str:
    """Now, as the daemon's JSON log writes time."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def revision() -> str:
    """The commit of the daemon under test, and whether its working tree differs from it."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        return result.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "videoroomd")
    return commit + (" + uncommitted changes in videoroomd/" if dirty else "")


def machine_text() -> str:
    import aiortc
    import av

    m = procfs.machine()
    return (f"{m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gib']} GiB RAM, Python {sys.version.split()[0]}, "
            f"aiortc {aiortc.__version__}, PyAV {av.__version__}")


async def main(args: argparse.Namespace) -> int:
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="videoroomd-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    tested = revision()  # now, before the daemon loads its code: others may commit while it runs
    print(f"machine: {machine_text()}\nvideoroomd: {tested}\nwork files: {workdir}", flush=True)
    daemon = Daemon(workdir, REPO, max_peers=max(args.n) + 1)
    try:
        await daemon.start()
        if args.chromium:
            status, _body = await daemon.get(f"/room/{ROOM}")
            if status != 200:
                print(f"--chromium: skipped: the daemon serves no web page at /room/{ROOM} (HTTP {status}), "
                      "so there is nothing for Chromium to drive.", flush=True)
                return 2
            media = "Chromium's fake camera and microphone, encoded by Chromium (VP8, Opus)"
        else:
            width, height = (int(v) for v in args.size.split("x"))
            clip = clips.make(width, height, args.fps, seconds=4.0, video_kbps=args.video_kbps)
            clips.save(clip, workdir / "clip.pickle")
            media = clip.describe()
        print(f"media: {media}", flush=True)
        clip_path = workdir / "clip.pickle"
        bench = Bench(args, workdir, daemon, clip_path)
        results = []
        for n in [n for _round in range(args.rounds) for n in args.n]:
            print(f"N={n}: starting {n} participants (+1 late joiner)", flush=True)
            try:
                figures = await bench.run_n(n)
            except BaseException as error:
                failure = bot_failure(error)
                if failure is None:
                    raise
                print(f"  N={n}: abandoned: {failure}", flush=True)
                figures = {"n": n, "error": str(failure)}
            results.append(figures)
            print(json.dumps(figures), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"machine": machine_text(), "videoroomd": tested,
                                                       "media": media,
                                                       "args": vars(args), "results": results}, indent=2))
        print("\n" + table(results), flush=True)
        return 0
    finally:
        code = await daemon.stop()
        print(f"videoroomd stopped (exit {code}); its log: {daemon.log_file}", flush=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sfu", description="SFU benchmark of videoroomd on 127.0.0.1")
    parser.add_argument("--n", type=lambda s: [int(v) for v in s.split(",")], default=[2, 4, 6, 8],
                        help="participant counts, comma-separated (default 2,4,6,8)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of steady state measured per N")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds between all pairs flowing and measuring")
    parser.add_argument("--stagger", type=float, default=0.5, help="seconds between two participants joining")
    parser.add_argument("--settle-timeout", type=float, default=40.0, help="seconds for every pair to flow")
    parser.add_argument("--late-timeout", type=float, default=15.0, help="seconds the late joiner may wait")
    parser.add_argument("--size", default="320x240", help="video size WxH of the clip")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--video-kbps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the whole list of N this many times on the same daemon (shows memory growth)")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--workdir", help="where config, logs and the clip go (default: a new temp dir)")
    parser.add_argument("--chromium", action="store_true",
                        help="participants are headless Chromium on the daemon's web page instead of aiortc bots")
    args = parser.parse_args(argv)
    if min(args.n) < 2 or args.duration <= 0 or not 1 <= args.rounds <= 100:
        parser.error("--n values must be at least 2, --duration positive, --rounds from 1 to 100")
    return args


def bot_failure(error: BaseException) -> BotFailed | None:
    """The BotFailed that ended a run (through trio's exception groups), if that is all that went wrong."""
    if isinstance(error, BotFailed):
        return error
    if isinstance(error, BaseExceptionGroup):
        failed, rest = error.split(BotFailed)
        if failed is not None and rest is None:
            while isinstance(failed, BaseExceptionGroup):
                failed = failed.exceptions[0]
            return failed
    return None


def interrupted(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return error.subgroup(KeyboardInterrupt) is not None
    return isinstance(error, KeyboardInterrupt)


if __name__ == "__main__":
    try:
        sys.exit(trio.run(main, parse(sys.argv[1:])))
    except BaseException as error:
        if not interrupted(error):
            raise
        print("interrupted; daemon and bots stopped", file=sys.stderr)
        sys.exit(130)
