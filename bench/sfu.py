"""SFU benchmark: ``python -m bench.sfu [--n 2,4,6,8] [--duration 20] ...`` (see docs/benchmarks.md).

Starts ``videoroomd serve`` on 127.0.0.1 (with ``--workers`` media
workers) and, for each N, ``--rooms`` rooms of N participants at once, each
participant a separate process (:mod:`bench.bot`) that publishes a
pre-encoded VP8 + Opus clip and receives everyone else in its room without
decoding. After every pair flows and a warm-up, it measures a steady
window: the server's CPU time (the daemon and its media workers, from
/proc) against the RTP packets the subscribers received, each worker's CPU
and memory, frame rates per room and in total, and then one late joiner
per room waiting for keyframes. With ``--relay udp|tcp`` the daemon runs its
built-in TURN server and (``--relay-share``) some or all bots send and
receive only through it; each run then reports the TURN server's counters
and how many of those bots really were on a relayed ICE pair. Every child
process is stopped on the way out, Ctrl-C included, and the daemon's workers
must be gone with it.

With ``--simulcast`` (Chromium participants) each N is run twice on the same
daemon: in a room with ``simulcast = false`` (one stream per camera: the
plain figure) and in one where every page publishes three layers. Every
participant's Chromium runs on a network host of its own (:mod:`testsupport.netns`)
and the daemon on the first one's address; after the measured window the
``--limited-share`` first participants' links are limited with ``tc`` to
``--limit-kbps``, held, and freed, and the pages' ``encodingSwitched`` give
how long each limited subscriber took to be switched down and up
(:mod:`bench.switches`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import trio

from . import clip as clips
from . import procfs
from . import recording_runs
from .daemon import Daemon, connection_drops, log_problems, room_names
from .processes import Bot, BotFailed, cpu_list
from testsupport.netns import Host, hosts
from .relay import TRANSPORTS, relayed, routes, turn_figures
from .stats import Run, Sample, capacity, connection_trouble, pairs, summarize, table
from .switches import Limit, layers_now, limited, switch_figures

REPO = Path(__file__).resolve().parent.parent
POLL = 0.5  # seconds between two looks at the bots while waiting
LIMIT_PER_PUBLISHER_KBPS = 300  # --simulcast's default limit: the low layer (150) and audio of each fit, the middle (500) not
PLAIN_ROOM = "plain1"  # --simulcast: the room with simulcast = false, for the plain figure


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path, daemon: Daemon, clip_path: Path,
                 net_hosts: list[Host] | None = None):
        self.args = args
        self.workdir = workdir
        self.daemon = daemon
        self.clip_path = clip_path
        self.relayed: set[str] = set()  # the bots sent through the TURN server
        self.net_hosts = net_hosts or []  # --simulcast: participant index -> the host its Chromium runs on
        self.limited: dict[str, Host] = {}  # --simulcast: the bots whose link is limited, and their hosts

    def spawn(self, n: int, room: str, index: int) -> Bot:
        name = f"n{n}-{room}-bot{index}"
        a = self.args
        loading = 3 * max(a.rooms) * (n + 1)  # seconds: every participant loads at once, on a few cores
        lifetime = 120 + loading + a.stagger * n + a.settle_timeout + a.warmup + a.duration + a.late_timeout
        if a.simulcast:  # the wait for layer h, and the limit, come before the late joiner
            lifetime += a.layer_timeout + a.switch_timeout + 2 * POLL + a.limit_hold + a.recover_timeout + 30
        module = "bench.browser_bot" if a.chromium else "bench.bot"
        argv = [sys.executable, "-m", module, self.daemon.socket_url, room, name, str(self.clip_path),
                "--lifetime", str(lifetime)]
        if a.relay != "none" and relayed(index, n, a.relay_share):
            argv += ["--relay", a.relay]
            self.relayed.add(name)
        if self.net_hosts:
            argv += ["--netns", self.net_hosts[index].name, "--secure-origin", self.daemon.url]
            if limited(index, n, a.limited_share):
                self.limited[name] = self.net_hosts[index]
        return Bot(argv, self.workdir / f"{name}.log", REPO, name, cpus=a.bot_cpus)

    async def snaps(self, bots: list[Bot]) -> dict[str, dict]:
        result: dict[str, dict] = {}

        async def one(bot: Bot) -> None:
            result[bot.name] = await bot.request("snap", "snap", timeout=10)

        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(one, bot)
        return result

    async def sample(self, bots: list[Bot]) -> Sample:
        admin = await self.daemon.admin()  # first: which pids the workers have (an HTTP round trip)
        t = time.monotonic()
        cpu, system, threads = self.daemon.usage()
        daemon_cpu = self.daemon.cpu_seconds()
        workers = self.daemon.worker_cpu(admin.get("media_workers", []))
        machine = procfs.machine_ticks()
        placement = {r["name"]: r.get("worker") for r in admin["rooms"] if r["name"] in self.daemon.rooms}
        return Sample(t, cpu, system, threads, machine, time.process_time(), await self.snaps(bots),
                      daemon_cpu=daemon_cpu, workers=workers, placement=placement)

    @staticmethod
    def flowing(snaps: dict[str, dict], joined: dict[str, dict]) -> bool:
        """Every bot receives audio and video frames from every other bot (``joined``: one room's)."""
        for sub, pub in pairs(joined):
            received = {e.get("track"): e for e in snaps[sub].get("received", {}).values()}
            for track_id in joined[pub]["tracks"].values():
                if received.get(track_id, {}).get("frames", 0) == 0:
                    return False
        return True

    async def run_n(self, n: int, rooms: list[str], mode: str | None = None) -> dict:
        """One run: ``rooms`` of ``n`` participants each at once; returns its figures. ``mode``
        (--simulcast): "plain" or "simulcast", the latter with a limit on some links after the window."""
        steady = {room: [self.spawn(n, room, i) for i in range(n)] for room in rooms}
        late = {room: self.spawn(n, room, n) for room in rooms}  # one late joiner per room
        bots = [bot for room in rooms for bot in steady[room] + [late[room]]]
        async with trio.open_nursery() as nursery:
            for bot in bots:
                nursery.start_soon(bot.read_messages)
            try:
                figures = await self._measure(n, steady, late, mode)
                if mode is not None:
                    figures["mode"] = mode
                return figures
            finally:
                with trio.CancelScope(shield=True):
                    async with trio.open_nursery() as stopping:
                        for bot in bots:
                            stopping.start_soon(bot.stop)
                nursery.cancel_scope.cancel()

    async def _measure(self, n: int, steady: dict[str, list[Bot]], late: dict[str, Bot],
                       mode: str | None = None) -> dict:
        a = self.args
        everyone = [bot for room in steady for bot in steady[room]]
        for bot in everyone + list(late.values()):
            await bot.expect("ready", timeout=60)  # imports and clip loading done before anyone joins
        log_from = self.daemon.log_size()
        memory = {"before": await self.daemon.memory()}
        relay = a.relay != "none"
        turn = [await self.daemon.turn_counters()] if relay else []  # before the joins
        joined_by_room, settled_by_room = await self._join_all(n, steady)
        await trio.sleep(a.warmup)
        layers_settled = None
        if mode == "simulcast":
            layers_settled = await self._wait_layers(n, everyone, next(iter(joined_by_room.values())))
        if relay:  # just outside the CPU window: the scrape costs the daemon some
            turn.append(await self.daemon.turn_counters())
        recorded = mode == "recorded" and self.daemon.recording_dir is not None
        tracks = [recording_runs.recorded_total(self.daemon.recording_dir)] if recorded else []
        start = await self.sample(everyone)
        await trio.sleep(a.duration)
        end = await self.sample(everyone)
        if recorded:
            tracks.append(recording_runs.recorded_total(self.daemon.recording_dir))
        if relay:
            turn.append(await self.daemon.turn_counters())
        memory["steady"] = await self.daemon.memory()
        switching = None
        if mode == "simulcast":  # before the late joiner: one more tile would change the layers the pages ask
            switching = await self._limit_and_recover(n, everyone, next(iter(joined_by_room.values())))
        joined = {name: info for room in joined_by_room.values() for name, info in room.items()}
        settled = None if None in settled_by_room.values() else max(settled_by_room.values())
        run = Run(n, joined, start, end, settled, rooms={room: list(j) for room, j in joined_by_room.items()},
                  settled_by_room=settled_by_room)
        run.late = await self._late_joiners(late, joined_by_room)
        run.final = {**await self.snaps(everyone), **{late[room].name: info["snap"] for room, info in run.late.items()}}
        leaving = utc_now()
        for bot in everyone + list(late.values()):
            await bot.stop()
        if not await self.daemon.wait_rooms_empty(timeout=20):
            print(f"  N={n}: a room still lists peers or tracks 20 s after everyone left", flush=True)
        await trio.sleep(1)
        memory["after"] = await self.daemon.memory()
        run.rss_mib = {moment: m["daemon"] for moment, m in memory.items()}
        run.pss_total_mib = {moment: m["pss_total"] for moment, m in memory.items()}
        for moment, m in memory.items():
            for worker, mib in m["workers"].items():
                run.worker_rss_mib.setdefault(worker, {})[moment] = mib
        entries = self.daemon.log_entries(log_from)
        run.log_problems = [(*key, count) for key, count in log_problems(entries).most_common()]
        run.server_drops = connection_drops(entries, before=leaving)
        run.restarts = sum(r.get("restarts", 0) for r in (await self.daemon.admin())["rooms"] if r["name"] in steady)
        figures = summarize(run)
        if relay:
            figures.update(self._relay_figures(n, run.final, turn))
        if mode == "simulcast":
            figures["layers_settled_s"] = layers_settled
        if tracks:
            figures.update(recording_runs.window_figures(n, end.t - start.t, *tracks))
        if a.record or a.record_compare:
            figures.update(recording_runs.split_cpu(figures))
        if a.simulcast:  # the plain run too: what its browsers' estimates were, to compare
            figures["publishers_layers_in_window"] = publishers_layers(start, end, list(joined))
        if switching is not None:
            figures.update(switching)
        figures["details"] = {
            "log_problems": run.log_problems[:10],
            "server_drops": run.server_drops[:10],
            "bot_connection_trouble": connection_trouble(run.final)[:10],
            "bot_notes": [m for bot in everyone + list(late.values()) for m in bot.notes][:10],
        }
        return figures

    async def _wait_layers(self, n: int, bots: list[Bot], joined: dict[str, dict]) -> float | None:
        """Wait (at most --layer-timeout) until every subscriber receives layer h of every
        publisher, as the publishers' browsers raise their own bitrate step by step; returns the
        seconds it took, None when some pair was not on h in time (said aloud)."""
        began = time.monotonic()
        while True:
            snaps = await self.snaps(bots)
            now = time.monotonic()
            layers = layers_now(snaps, joined, now)
            if all(layer == "h" for layer in layers.values()):
                print(f"  N={n}: every pair on layer h after {now - began:.1f} s", flush=True)
                return round(now - began, 1)
            if now - began > self.args.layer_timeout:
                below = ", ".join(f"{sub}<-{pub}: {layer}" for (sub, pub), layer in layers.items() if layer != "h")
                print(f"  N={n}: not every pair on layer h after {self.args.layer_timeout:.0f} s ({below}); "
                      "measuring anyway", flush=True)
                return None
            await trio.sleep(POLL)

    async def _limit_and_recover(self, n: int, bots: list[Bot], joined: dict[str, dict]) -> dict:
        """Limit the links of the limited participants, wait for their switches down, hold the
        limit (measuring the server meanwhile), free the links and wait for the switches up;
        returns the figures (bench.switches) and the cost of the limited window."""
        a = self.args
        kbps = a.limit_kbps or LIMIT_PER_PUBLISHER_KBPS * (n - 1)
        mine = {name: host for name, host in self.limited.items() if name in joined}
        drops: dict[str, float] = {}
        for name, host in mine.items():
            drops[name] = time.monotonic()
            await trio.to_thread.run_sync(host.limit, kbps)
        print(f"  N={n}: links of {', '.join(mine)} limited to {kbps} kbit/s", flush=True)

        async def watch(limits, until_done: tuple[str, str], timeout: float) -> dict:
            """The figures once every limited pair has the switch and the picture change
            ``until_done`` names (the picture follows at the next decoded frame), or at ``timeout``."""
            deadline = time.monotonic() + timeout
            while True:
                snaps = await self.snaps(bots)
                now = time.monotonic()
                figures = switch_figures(snaps, joined, limits(now), now, kbps)
                if all(figures[key] == 0 for key in until_done) or now > deadline:
                    return figures
                await trio.sleep(POLL)

        down = await watch(lambda now: {name: Limit(t, now) for name, t in drops.items()},
                           ("down_ms_missing", "picture_down_ms_missing"), a.switch_timeout)
        print(f"  N={n}: switched down: {down['limited_pairs'] - down['down_ms_missing']} of "
              f"{down['limited_pairs']} limited pairs", flush=True)
        start = await self.sample(bots)
        await trio.sleep(a.limit_hold)
        end = await self.sample(bots)
        recovers: dict[str, float] = {}
        for name, host in mine.items():
            recovers[name] = time.monotonic()
            await trio.to_thread.run_sync(host.unlimit)
        limits = {name: Limit(drops[name], recovers[name]) for name in mine}
        figures = await watch(lambda _now: limits, ("back_ms_missing", "picture_up_ms_missing"), a.recover_timeout)
        print(f"  N={n}: limit freed; back on the starting layer: "
              f"{figures['limited_pairs'] - figures['back_ms_missing']} of {figures['limited_pairs']} limited pairs",
              flush=True)
        held = summarize(Run(n, joined, start, end, None))
        sent_layers = publishers_layers(start, end, list(joined))

        def pair(key: str) -> str:
            median, top, missing = (figures[f"{key}_{part}"] for part in ("median", "max", "missing"))
            text = "—" if median is None else f"{median} / {top}"
            return text + (f" ({missing} never)" if missing else "")

        return {
            "limit_kbps": kbps,
            "limited_ended_lower": f"{figures['limited_ended_lower']} of {figures['limited_pairs']}",
            "switch_down": pair("down_ms"), "picture_down": pair("picture_down_ms"),
            "switch_up": pair("up_ms"), "switch_back": pair("back_ms"),
            "unlimited_switched_down": f"{figures['unlimited_switched_down']} of {figures['unlimited_pairs']}",
            "limited_window_s": held["window_s"], "limited_forwarded_pps": held["forwarded_pps"],
            "limited_us_per_packet": held["server_us_per_packet"],
            "simulcast": {**figures, "publishers_layers_while_limited": sent_layers,
                          "limited_window": {key: held[key] for key in (
                "window_s", "forwarded_pps", "server_us_per_packet", "server_cpu_pct", "bots_cpu_pct",
                "others_cpu_pct", "received_fps_min", "loss_to_subscribers_pct")}},
        }

    def _relay_figures(self, n: int, final: dict[str, dict], turn: list[dict]) -> dict:
        """How the relayed bots' media went: through a relay pair or not (said aloud when not),
        and the TURN server's counters; the table's rows are ``relay_pairs`` and
        ``turn_dropped_in_window``."""
        path = routes(final, self.relayed)
        server = turn_figures(*turn)
        if path["relayed_not_on_relay_pair"]:
            print(f"  N={n}: {len(path['relayed_not_on_relay_pair'])} of {path['relayed_bots']} bots meant to relay "
                  f"were not on a relay pair: {', '.join(path['relayed_not_on_relay_pair'])}", flush=True)
        if path["direct_on_relay_pair"]:
            print(f"  N={n}: bots meant to go direct were on a relay pair: {', '.join(path['direct_on_relay_pair'])}",
                  flush=True)
        if server["dropped_in_window"]:
            print(f"  N={n}: the TURN server dropped datagrams in the window: {server['dropped_in_window']}", flush=True)
        return {"relay": {"transport": self.args.relay, "share": self.args.relay_share, **path, "turn": server},
                "relay_pairs": f"{path['relayed_on_relay_pair']} of {path['relayed_bots']}",
                "turn_dropped_in_window": sum(server["dropped_in_window"].values())}

    async def _join_all(self, n: int, steady: dict[str, list[Bot]]) -> tuple[dict[str, dict[str, dict]],
                                                                             dict[str, float | None]]:
        """Join one bot of each room every ``--stagger`` seconds (the rooms side by side); then wait
        until every pair of every room has media (or give up). Returns each room's "joined"
        messages and the seconds until it flowed (None: it never did)."""
        joined: dict[str, dict[str, dict]] = {room: {} for room in steady}
        began = time.monotonic()

        async def join_room(room: str) -> None:
            for index, bot in enumerate(steady[room]):
                if index:
                    await trio.sleep(self.args.stagger)
                joined[room][bot.name] = await bot.request("join", "joined", timeout=30)

        async with trio.open_nursery() as nursery:
            for room in steady:
                nursery.start_soon(join_room, room)
        everyone = [bot for room in steady for bot in steady[room]]
        settled: dict[str, float | None] = {room: None for room in steady}
        deadline = began + self.args.settle_timeout
        while time.monotonic() < deadline and None in settled.values():
            snaps = await self.snaps(everyone)
            for room in steady:
                if settled[room] is None and self.flowing(snaps, joined[room]):
                    settled[room] = time.monotonic() - began
                    print(f"  N={n}, room {room}: every pair flowing after {settled[room]:.1f} s", flush=True)
            if None in settled.values():
                await trio.sleep(POLL)
        for room, after in settled.items():
            if after is None:
                print(f"  N={n}, room {room}: some pairs still without media after "
                      f"{self.args.settle_timeout:.0f} s", flush=True)
        return joined, settled

    async def _late_joiners(self, late: dict[str, Bot], joined: dict[str, dict[str, dict]]) -> dict[str, dict]:
        """Each room's late joiner joins (all rooms at once) and waits for a keyframe of every publisher."""
        result: dict[str, dict] = {}

        async def one(room: str) -> None:
            result[room] = await self._late_joiner(late[room], joined[room])

        async with trio.open_nursery() as nursery:
            for room in late:
                nursery.start_soon(one, room)
        return result

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


def publishers_layers(start: Sample, end: Sample, names: list[str]) -> dict[str, dict]:
    """Each Chromium participant's layers between two samples: frames per second, width and
    what Chromium says limits it (``qualityLimitationReason``); and its ``estimates`` at the
    end: what its browser thinks it may send, what the server said it can send it."""
    wall = max(end.t - start.t, 1e-9)
    result = {}
    for name in names:
        before = start.snaps[name].get("layers", {})
        result[name] = {rid: {"fps": round((layer["frames"] - before.get(rid, {}).get("frames", 0)) / wall, 1),
                              "width": layer["width"], "limited_by": layer["limited_by"],
                              # why a layer is off: what the browser aims at, what the server asks
                              # again and reports lost of it (its receiver reports)
                              "target_bps": layer.get("target_bps"), "nacks": layer.get("nacks"),
                              "plis": layer.get("plis"), "lost_at_server": layer.get("lost_at_server"),
                              "fraction_lost_at_server": layer.get("fraction_lost_at_server")}
                        for rid, layer in sorted(end.snaps[name].get("layers", {}).items())}
        result[name]["estimates"] = end.snaps[name].get("estimates")
    return result


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
    if args.server_cpus or args.bot_cpus:
        print(f"CPUs: daemon and workers {cpus_text(args.server_cpus)}, participants {cpus_text(args.bot_cpus)}",
              flush=True)
    rooms = room_names(max(args.rooms))
    with contextlib.ExitStack() as stack:
        net_hosts = stack.enter_context(hosts(max(args.n) + 1)) if args.simulcast else []
        if net_hosts:
            print(f"participants' hosts: {', '.join(f'{h.name} {h.address}' for h in net_hosts)}; "
                  f"the daemon on {net_hosts[0].gateway}", flush=True)
        recording = args.record or args.record_compare
        daemon = Daemon(workdir, REPO, max_peers=max(args.n) + 1, rooms=rooms, workers=args.workers,
                        cpus=args.server_cpus, turn=args.relay != "none",
                        host=net_hosts[0].gateway if net_hosts else "127.0.0.1",
                        plain_rooms=[PLAIN_ROOM] if net_hosts else None,
                        recorded_rooms=[recording_runs.REC_ROOM] if recording else None,
                        data_plane=args.data_plane)
        return await run_all(args, workdir, tested, daemon, rooms, net_hosts)


async def run_all(args: argparse.Namespace, workdir: Path, tested: str, daemon: Daemon, rooms: list[str],
                  net_hosts: list[Host]) -> int:
    """Every run of the command line on ``daemon``, started here and stopped before this returns."""
    try:
        await daemon.start()
        at_start = await wait_workers(daemon)
        print(f"media workers ([media] workers = {args.workers}): {describe_workers(at_start, daemon.pid)}", flush=True)
        memory = await daemon.memory()
        print(f"RSS before anyone joined: daemon {memory['daemon']:.0f} MiB"
              + "".join(f", worker {w} {mib:.0f} MiB" for w, mib in sorted(memory["workers"].items()))
              + f"; PSS of the tree {memory['pss_total']:.0f} MiB", flush=True)
        if args.chromium:
            status, _body = await daemon.get(f"/room/{rooms[0]}")
            if status != 200:
                print(f"--chromium: skipped: the daemon serves no web page at /room/{rooms[0]} (HTTP {status}), "
                      "so there is nothing for Chromium to drive.", flush=True)
                return 2
            media = "Chromium's fake camera and microphone, encoded by Chromium (VP8, Opus)"
            if args.simulcast:
                media += ("; 1280x720 asked of the camera: three layers l, m, h (320x180, 640x360, 1280x720) "
                          f"in room {rooms[0]}, one stream of 640x360 in room {PLAIN_ROOM}")
        else:
            width, height = (int(v) for v in args.size.split("x"))
            clip = clips.make(width, height, args.fps, seconds=4.0, video_kbps=args.video_kbps)
            clips.save(clip, workdir / "clip.pickle")
            media = clip.describe()
        print(f"media: {media}", flush=True)
        if args.relay != "none":
            print(f"relay: the built-in TURN server on 127.0.0.1:{daemon.turn_port}; over {args.relay}: "
                  + ("every participant" if args.relay_share >= 1 else
                     f"the first {args.relay_share:g} of each room's participants (rounded up)"), flush=True)
        clip_path = workdir / "clip.pickle"
        bench = Bench(args, workdir, daemon, clip_path, net_hosts)
        results = []

        def best() -> dict | None:
            return capacity(results, None if args.chromium else args.fps)

        modes = ("plain", "simulcast") if args.simulcast else recording_runs.modes(args)
        for count, n, mode in [(count, n, mode) for _round in range(args.rounds) for count in args.rooms
                               for n in args.n for mode in modes]:
            names = [PLAIN_ROOM] if mode == "plain" and args.simulcast else rooms[:count]
            names = [recording_runs.REC_ROOM] if mode == "recorded" else names
            if mode is not None:
                print(f"N={n}, {mode}: starting {n} participants (+1 late joiner) in room {names[0]}", flush=True)
            elif count == 1:
                print(f"N={n}: starting {n} participants (+1 late joiner) in room {rooms[0]}", flush=True)
            else:
                print(f"N={n}: starting {count} rooms ({', '.join(rooms[:count])}) of {n} participants "
                      f"(+1 late joiner each)", flush=True)
            try:
                figures = await bench.run_n(n, names, mode)
            except BaseException as error:
                failure = bot_failure(error)
                if failure is None:
                    raise
                print(f"  N={n}: abandoned: {failure}", flush=True)
                figures = {"n": n, "rooms": count, "error": str(failure), **({"mode": mode} if mode else {})}
            results.append(figures)
            print(json.dumps(figures), flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps({"machine": machine_text(), "videoroomd": tested,
                                                       "media": media, "rss_at_start_mib": memory,
                                                       "media_workers_at_start": at_start,
                                                       "args": vars(args), "results": results,
                                                       "capacity": best(),
                                                       "recording": recording_runs.comparisons(results)},
                                                      indent=2,
                                                      default=lambda value: sorted(value)))  # CPU sets
        print("\n" + table(results), flush=True)
        recording_runs.print_comparison(args, results)
        top = best()
        if top is None:
            print("\nat full frame rate: no run (in each, some subscriber got < 99 % of the frames sent, or some "
                  "publisher sent < 99 % of --fps: the bots were short of CPU)", flush=True)
        else:
            print(f"\nat full frame rate: at most {top['forwarded_pps']} forwarded RTP packets/s "
                  f"({top['rooms']} room(s) of {top['n']}, {top['media_workers']} media worker(s); worker CPU, "
                  f"% of one core: {', '.join(f'{w}: {pct}' for w, pct in top['worker_cpu_pct'].items())})",
                  flush=True)
        return 0
    finally:
        code, left = await daemon.stop()
        print(f"videoroomd stopped (exit {code}); its log: {daemon.log_file}", flush=True)
        if left:
            print(f"processes the daemon started were still there 5 s after it ended, now killed: {left}", flush=True)


async def wait_workers(daemon: Daemon, timeout: float = 30.0) -> list[dict]:
    """The admin view's ``media_workers`` once every one of them that was started runs (or after ``timeout``
    seconds); a worker that starts when a room is first placed on it (``started`` false) is not waited for."""
    deadline = time.monotonic() + timeout
    while True:
        workers = (await daemon.admin()).get("media_workers", [])
        if (workers and all(w.get("running") or not w.get("started", True) for w in workers)) \
                or time.monotonic() > deadline:
            return workers
        await trio.sleep(0.2)


def describe_workers(workers: list[dict], daemon_pid: int) -> str:
    if not workers:
        return "none"
    def one(worker: dict) -> str:
        where = "a thread of the daemon" if worker.get("pid") == daemon_pid else f"pid {worker.get('pid')}"
        if not worker.get("started", True):
            return f"{worker['worker']} (starts when a room is first placed on it)"
        return f"{worker['worker']} ({where}{'' if worker.get('running') else ', not running'})"

    return ", ".join(one(worker) for worker in workers)


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
    parser.add_argument("--rooms", type=lambda s: [int(v) for v in s.split(",")], default=[1],
                        help="how many rooms of N participants at once (bench1..benchR), comma-separated: "
                             "one run for each, and each N (default 1)")
    parser.add_argument("--workers", type=workers_setting, default="auto",
                        help='[media] workers of the daemon: "auto" (one per core, the default) or a number; '
                             "0 runs the media on a thread of the daemon")
    parser.add_argument("--data-plane", choices=("python", "native"),
                        help="[media] data_plane of the daemon (default: the daemon's own default)")
    parser.add_argument("--server-cpus", type=cpu_list, metavar="LIST",
                        help='run the daemon and its media workers on these CPUs only ("0-1", "0,2"); '
                             '"auto" workers are then one per CPU of the list')
    parser.add_argument("--bot-cpus", type=cpu_list, metavar="LIST",
                        help="run the participants on these CPUs only")
    parser.add_argument("--chromium", action="store_true",
                        help="participants are headless Chromium on the daemon's web page instead of aiortc bots")
    parser.add_argument("--relay", choices=("none", *TRANSPORTS), default="none",
                        help="run the daemon's built-in TURN server and send the participants' media only "
                             "through it, over UDP or TCP (default none: direct)")
    parser.add_argument("--relay-share", type=float, default=1.0, metavar="F",
                        help="with --relay: the share of each room's participants relayed (rounded up), "
                             "the rest direct (default 1: all, the late joiner too)")
    parser.add_argument("--simulcast", action="store_true",
                        help="Chromium participants (implies --chromium), each N twice: one stream per camera, "
                             "then three layers, with some participants' links limited after the window")
    parser.add_argument("--limited-share", type=float, default=0.5, metavar="F",
                        help="with --simulcast: the share of each room's participants whose link is limited, "
                             "the first ⌈F × N⌉ to join (default 0.5)")
    parser.add_argument("--limit-kbps", type=int, metavar="KBPS",
                        help=f"with --simulcast: the limited links' rate, kbit/s (default "
                             f"{LIMIT_PER_PUBLISHER_KBPS} × (N − 1): each publisher's low layer fits, the middle one not)")
    parser.add_argument("--limit-hold", type=float, default=15.0,
                        help="with --simulcast: seconds the limit stays after the switches down")
    parser.add_argument("--layer-timeout", type=float, default=60.0,
                        help="with --simulcast: seconds every pair gets to reach layer h before the window")
    parser.add_argument("--switch-timeout", type=float, default=30.0,
                        help="with --simulcast: seconds the limited subscribers get to be switched down")
    parser.add_argument("--recover-timeout", type=float, default=60.0,
                        help="with --simulcast: seconds they get, once the limit is gone, to be back on their layer")
    recording_runs.add_arguments(parser)
    args = parser.parse_args(argv)
    recording_runs.check(parser, args)
    if args.simulcast:
        args.chromium = True
        if args.relay != "none" or args.rooms != [1]:
            parser.error("--simulcast runs one room of Chromium participants: no --relay, no --rooms")
        if not 0 < args.limited_share < 1:
            parser.error(f"--limited-share must be above 0 and below 1 (some participants stay unlimited), "
                         f"got {args.limited_share}")
        if args.limit_kbps is not None and not 50 <= args.limit_kbps <= 100_000:
            parser.error(f"--limit-kbps must be from 50 to 100000, got {args.limit_kbps}")
        if os.geteuid() != 0:
            parser.error("--simulcast needs root: it makes network namespaces and limits their links with tc")
    if args.relay != "none" and args.chromium:
        parser.error("--relay works with the aiortc bots only, not --chromium")
    if not 0 < args.relay_share <= 1:
        parser.error(f"--relay-share must be above 0 and at most 1, got {args.relay_share}")
    available = os.sched_getaffinity(0)
    for flag, cpus in (("--server-cpus", args.server_cpus), ("--bot-cpus", args.bot_cpus)):
        if cpus is not None and not cpus <= available:
            parser.error(f"{flag}: CPUs {cpus_text(cpus - available)} are not among the ones this may use "
                         f"({cpus_text(available)})")
    rooms_ok = 1 <= min(args.rooms) <= max(args.rooms) <= 50
    if min(args.n) < 2 or args.duration <= 0 or not 1 <= args.rounds <= 100 or not rooms_ok:
        parser.error("--n values must be at least 2, --duration positive, --rounds from 1 to 100, --rooms from 1 to 50")
    return args


def cpus_text(cpus: set[int] | None) -> str:
    return ",".join(str(c) for c in sorted(cpus)) if cpus else "any"


def workers_setting(text: str) -> int | str:
    """``--workers``: "auto" or a number of media workers (0: a thread of the daemon)."""
    if text == "auto":
        return text
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected "auto" or a number from 0 to 256, got {text!r}') from None
    if not 0 <= count <= 256:
        raise argparse.ArgumentTypeError(f"expected a number of media workers from 0 to 256, got {count}")
    return count


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
