"""From what the bots and /proc said to the figures of one run (pure code).

A *pair* is one subscriber and one publisher's video track of the same
room. The window is the steady state between two samples, ``start`` and
``end``: each sample holds every bot's counters, the server's CPU time
(the daemon and its media workers) and each media worker's.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field


FULL_FRAME_RATE = 0.99  # received/sent frames of the worst pair at or above which a run is "at full frame rate"


@dataclass
class Sample:
    t: float                 # monotonic seconds, taken by the harness
    server_cpu: float        # seconds: the daemon and every process below it (its media workers)
    server_system: float     # seconds of server_cpu spent in the kernel
    server_threads: dict[tuple[int, int], float]  # (pid, thread id) -> seconds, daemon and workers
    machine: tuple[int, int]  # (busy, total) ticks
    harness_cpu: float       # seconds of CPU this harness used so far
    snaps: dict[str, dict]   # bot name -> its "snap" message
    daemon_cpu: float = 0.0  # seconds: the daemon process alone
    workers: dict[str, dict] = field(default_factory=dict)  # worker name -> {"pid", "thread", "cpu", "restarts"}
    placement: dict[str, str | None] = field(default_factory=dict)  # room -> the worker carrying it


@dataclass
class Run:
    n: int
    joined: dict[str, dict]             # bot name -> its "joined" message (the N steady participants of every room)
    start: Sample
    end: Sample
    settled_s: float | None             # seconds until every pair of every room flowed; None: some never did
    rooms: dict[str, list[str]] = field(default_factory=dict)  # room -> its steady bots (empty: one room of all)
    settled_by_room: dict[str, float | None] = field(default_factory=dict)
    late: dict[str, dict] = field(default_factory=dict)  # room -> {"joined": ..., "snap": ...} of its late joiner
    final: dict[str, dict] = field(default_factory=dict)  # every bot's last snap, before they leave
    server_drops: list[str] = field(default_factory=list)  # connections the server saw end before leave
    rss_mib: dict[str, float] = field(default_factory=dict)  # the daemon process: "before", "steady", "after"
    worker_rss_mib: dict[str, dict[str, float]] = field(default_factory=dict)  # worker -> the same moments
    pss_total_mib: dict[str, float] = field(default_factory=dict)  # the daemon's tree, shared pages once
    log_problems: list[tuple[str, str, str, int]] = field(default_factory=list)
    restarts: int = 0


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def _entry(snap: dict, track_id: str) -> dict | None:
    return next((e for e in snap.get("received", {}).values() if e.get("track") == track_id), None)


def _delta(start: dict | None, end: dict | None, key: str) -> int:
    """How much counter ``key`` grew; a counter that went down started over (a page whose
    connection was replaced has new statistics): what it counted since."""
    before, after = (start or {}).get(key, 0), (end or {}).get(key, 0)
    return after - before if after >= before else after


def pairs(names) -> list[tuple[str, str]]:
    """(subscriber, publisher) for every two of ``names``."""
    return [(s, p) for s in names for p in names if s != p]


def rooms_of(run: Run) -> dict[str, list[str]]:
    return run.rooms or {"": list(run.joined)}


def run_pairs(run: Run) -> list[tuple[str, str]]:
    """(subscriber, publisher) for every two bots of the same room."""
    return [pair for names in rooms_of(run).values() for pair in pairs(names)]


def restrict(run: Run, room: str) -> Run:
    """The part of ``run`` about one room: its bots, its late joiner; the samples are shared."""
    names = rooms_of(run)[room]
    late = {room: run.late[room]} if room in run.late else {}
    return Run(run.n, {name: run.joined[name] for name in names}, run.start, run.end,
               run.settled_by_room.get(room), rooms={room: names}, late=late)


def _received_total(run: Run, key: str) -> int:
    total = 0
    for name in run.joined:
        start = run.start.snaps[name].get("received", {})
        end = run.end.snaps[name].get("received", {})
        total += sum(_delta(start.get(mid), entry, key) for mid, entry in end.items())
    return total


def _sent_total(run: Run, key: str) -> int:
    return sum(_delta(run.start.snaps[p]["sent"].get(kind), run.end.snaps[p]["sent"].get(kind), key)
               for p in run.joined for kind in ("audio", "video"))


def _cpu(run: Run, wall: float, packets: int) -> dict:
    server = run.end.server_cpu - run.start.server_cpu  # a worker that ended in the window is not counted
    threads = [t - run.start.server_threads.get(tid, 0.0) for tid, t in run.end.server_threads.items()]
    busy = (run.end.machine[0] - run.start.machine[0]) / max(1, run.end.machine[1] - run.start.machine[1])
    bots = sum(run.end.snaps[n]["cpu"] - run.start.snaps[n]["cpu"] for n in run.joined)
    harness = run.end.harness_cpu - run.start.harness_cpu
    # what else ran on the machine meanwhile, in cores: not ours, so a disturbance to note
    others = busy * (os.cpu_count() or 1) - (server + bots + harness) / wall
    return {
        "server_us_per_packet": round(server / packets * 1e6, 1) if packets else None,
        "server_cpu_pct": round(server / wall * 100, 1),
        "daemon_cpu_pct": round((run.end.daemon_cpu - run.start.daemon_cpu) / wall * 100, 1),
        "server_kernel_share_pct": round((run.end.server_system - run.start.server_system) / max(server, 1e-9) * 100),
        "busiest_thread_pct": round(max(threads, default=0.0) / wall * 100, 1),
        "machine_busy_pct": round(busy * 100, 1),
        "bots_cpu_pct": round(bots / wall * 100, 1),
        "others_cpu_pct": round(max(0.0, others) * 100, 1),
    }


def _loss(run: Run, packets: int) -> dict:
    lost_down = _received_total(run, "lost")
    sent_up = _sent_total(run, "packets")
    return {
        "loss_to_subscribers_pct": round(lost_down / max(1, packets + lost_down) * 100, 2),
        "loss_from_publishers_pct": round(_sent_total(run, "lost_at_server") / max(1, sent_up) * 100, 2),
        "nacked_packets": _sent_total(run, "nacked"),
        "keyframe_requests": _sent_total(run, "keyframe_requests"),
    }


def _frames(run: Run, wall: float) -> dict:
    sent_fps = {p: _delta(run.start.snaps[p]["sent"].get("video"), run.end.snaps[p]["sent"].get("video"), "frames")
                / wall for p in run.joined}
    fps, ratios, jitter = [], [], []
    for sub, pub in run_pairs(run):
        video = run.joined[pub]["tracks"]["video"]
        end = _entry(run.end.snaps[sub], video)
        frames = _delta(_entry(run.start.snaps[sub], video), end, "frames")
        if end and end.get("jitter_ms") is not None:
            jitter.append(end["jitter_ms"])
        fps.append(frames / wall)
        ratios.append(frames / wall / sent_fps[pub] if sent_fps[pub] else 0.0)
    return {
        "publisher_fps_min": round(min(sent_fps.values()), 1),
        "received_fps_min": round(min(fps), 1),
        "received_fps_median": round(statistics.median(fps), 1),
        "received_over_sent_min": round(min(ratios), 3),
        "full_frame_rate": min(ratios) >= FULL_FRAME_RATE,
        "jitter_ms_median": round(statistics.median(jitter), 1) if jitter else None,
        "jitter_ms_max": round(max(jitter), 1) if jitter else None,
    }


def _joins(run: Run) -> dict:
    """Join to first remote video frame, from the later of the two joins of each pair."""
    first_ms, missing = [], 0
    for sub, pub in run_pairs(run):
        entry = _entry(run.end.snaps[sub], run.joined[pub]["tracks"]["video"])
        began = max(run.joined[sub]["t_join"], run.joined[pub]["t_join"])
        if entry and entry.get("first") is not None:
            first_ms.append((entry["first"] - began) * 1000)
        else:
            missing += 1
    late_ms, late_missing = [], 0
    rooms = rooms_of(run)
    for room, late in run.late.items():
        for pub in rooms.get(room, []):
            entry = _entry(late["snap"], run.joined[pub]["tracks"]["video"])
            if entry and entry.get("first_keyframe") is not None:
                late_ms.append((entry["first_keyframe"] - late["joined"]["t_join"]) * 1000)
            else:
                late_missing += 1
    return {
        "first_frame_ms_median": _round(statistics.median(first_ms) if first_ms else None),
        "first_frame_ms_p95": _round(percentile(first_ms, 95)),
        "first_frame_missing": missing,
        "late_keyframe_ms_median": _round(statistics.median(late_ms) if late_ms else None),
        "late_keyframe_ms_max": _round(max(late_ms) if late_ms else None),
        "late_keyframe_missing": late_missing if run.late else None,
    }


def connection_trouble(snaps: dict[str, dict]) -> list[str]:
    """Bots whose connection went anywhere but (ICE) checking/connecting/connected, with what they went through."""
    fine = ("new", "connecting", "connected", "ice-new", "ice-checking", "ice-completed", "ice-connected")
    trouble = []
    for name, snap in snaps.items():
        states = [f"{state}@{t:.1f}" for t, state in snap.get("states", [])]
        if any(state not in fine for _t, state in snap.get("states", [])) or snap.get("problems"):
            trouble.append(f"{name}: {' > '.join(states)}; {'; '.join(snap.get('problems', []))}")
    return trouble


def _room(run: Run, room: str, wall: float) -> dict:
    """One room's figures: which worker carried it, how soon it flowed, its packets and frame rates."""
    part = restrict(run, room)
    frames = _frames(part, wall)
    return {
        "room": room,
        "worker": run.end.placement.get(room),
        "settled_s": None if part.settled_s is None else round(part.settled_s, 2),
        "forwarded_pps": round(_received_total(part, "packets") / wall),
        **{key: frames[key] for key in ("publisher_fps_min", "received_fps_min", "received_fps_median",
                                        "received_over_sent_min", "full_frame_rate")},
    }


def _workers(run: Run, wall: float, rooms: list[dict]) -> list[dict]:
    """Each media worker: its CPU over the window (from /proc of its pid), its rooms, its RSS."""
    rows = []
    for name, end in sorted(run.end.workers.items()):
        start = run.start.workers.get(name, {})
        same = start.get("pid") == end["pid"] and start.get("cpu") is not None and end["cpu"] is not None
        carried = [r for r in rooms if r["worker"] == name]
        cpu = (end["cpu"] - start["cpu"]) if same else None
        packets = sum(r["forwarded_pps"] for r in carried) * wall
        rows.append({
            "worker": name,
            "pid": end["pid"],
            "thread": end["thread"],
            "rooms": [r["room"] for r in carried],
            "forwarded_pps": round(packets / wall),
            "cpu_pct": None if cpu is None else round(cpu / wall * 100, 1),
            "us_per_packet": round(cpu / packets * 1e6, 1) if cpu is not None and packets else None,
            "restarts": end["restarts"] - start.get("restarts", end["restarts"]),
            "rss_mib": {k: round(v, 1) for k, v in run.worker_rss_mib.get(name, {}).items()},
        })
    return rows


def _total_rss(run: Run) -> dict[str, float]:
    total = {}
    for moment, daemon in run.rss_mib.items():
        total[moment] = round(daemon + sum(w.get(moment, 0.0) for w in run.worker_rss_mib.values()), 1)
    return total


def summarize(run: Run) -> dict:
    wall = run.end.t - run.start.t
    packets = _received_total(run, "packets")
    rooms = [_room(run, room, wall) for room in rooms_of(run)] if run.rooms else []
    return {
        "n": run.n,
        "rooms": len(rooms_of(run)),
        "media_workers": len(run.end.workers),
        "streams_out": len(rooms_of(run)) * run.n * (run.n - 1) * 2,
        "window_s": round(wall, 2),
        "settled_s": None if run.settled_s is None else round(run.settled_s, 2),
        "forwarded_pps": round(packets / wall),
        **_cpu(run, wall, packets),
        **_frames(run, wall),
        **_loss(run, packets),
        **_joins(run),
        "rss_mib": {k: round(v, 1) for k, v in run.rss_mib.items()},
        "rss_total_mib": _total_rss(run),
        "pss_total_mib": {k: round(v, 1) for k, v in run.pss_total_mib.items()},
        "log_problems": sum(count for *_rest, count in run.log_problems),
        "connections_lost": len(connection_trouble(run.final)),
        "server_drops": len(run.server_drops),
        "restarts": run.restarts,
        "per_room": rooms,
        "workers": _workers(run, wall, rooms),
    }


def capacity(results: list[dict], fps: float | None) -> dict | None:
    """The run with the most forwarded packets/s at full frame rate: every subscriber got
    ≥ FULL_FRAME_RATE of the frames sent and (``fps`` given) every publisher sent at
    ≥ FULL_FRAME_RATE of ``fps``, so that neither the server nor the bots fell behind. None if none did."""
    best = None
    for figures in results:
        if "error" in figures or not figures.get("full_frame_rate"):
            continue
        if fps is not None and figures.get("publisher_fps_min", 0) < FULL_FRAME_RATE * fps:
            continue
        if best is None or figures["forwarded_pps"] > best["forwarded_pps"]:
            best = figures
    if best is None:
        return None
    return {"forwarded_pps": best["forwarded_pps"], "n": best["n"], "rooms": best.get("rooms", 1),
            "media_workers": best.get("media_workers"),
            "worker_cpu_pct": {w["worker"]: w["cpu_pct"] for w in best.get("workers", [])}}


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


ROWS = [
    ("participants (N)", "n"),
    ("rooms of N at once", "rooms"),
    ("media workers", "media_workers"),
    ("forwarded streams (audio+video)", "streams_out"),
    ("steady window, s", "window_s"),
    ("all pairs flowing after, s", "settled_s"),
    ("forwarded RTP packets/s", "forwarded_pps"),
    ("server CPU µs per forwarded packet", "server_us_per_packet"),
    ("server CPU (daemon + workers), % of one core", "server_cpu_pct"),
    ("… of which the daemon process, % of one core", "daemon_cpu_pct"),
    ("… of which in the kernel, %", "server_kernel_share_pct"),
    ("busiest server thread, % of one core", "busiest_thread_pct"),
    ("machine busy, % of all cores", "machine_busy_pct"),
    ("bots' CPU, % of one core", "bots_cpu_pct"),
    ("other processes' CPU, % of one core", "others_cpu_pct"),
    ("publisher video fps, min", "publisher_fps_min"),
    ("received video fps, min", "received_fps_min"),
    ("received video fps, median", "received_fps_median"),
    ("received/sent frames, worst pair", "received_over_sent_min"),
    (f"every subscriber at full frame rate (worst pair ≥ {FULL_FRAME_RATE})", "full_frame_rate"),
    ("video jitter at subscribers, median ms", "jitter_ms_median"),
    ("video jitter at subscribers, max ms", "jitter_ms_max"),
    ("loss server → subscribers, %", "loss_to_subscribers_pct"),
    ("loss publishers → server, %", "loss_from_publishers_pct"),
    ("packets NACKed by the server in window", "nacked_packets"),
    ("keyframes asked of publishers in window", "keyframe_requests"),
    ("join → first remote frame, median ms", "first_frame_ms_median"),
    ("join → first remote frame, p95 ms", "first_frame_ms_p95"),
    ("pairs with no frame", "first_frame_missing"),
    ("late joiner → first keyframe, median ms", "late_keyframe_ms_median"),
    ("late joiner → first keyframe, max ms", "late_keyframe_ms_max"),
    ("late joiner: publishers never seen", "late_keyframe_missing"),
    ("daemon RSS before / steady / after, MiB", "rss"),
    ("daemon + workers RSS before / steady / after, MiB", "rss_total"),
    ("daemon + workers PSS before / steady / after, MiB", "pss_total"),
    ("warnings+errors in server log", "log_problems"),
    ("bots whose connection closed or failed", "connections_lost"),
    ("connections the server saw end mid-call", "server_drops"),
    ("room restarts", "restarts"),
    ("relayed participants on a relay pair (--relay)", "relay_pairs"),
    ("TURN datagrams dropped in window (--relay)", "turn_dropped_in_window"),
    ("every pair on layer h after, s (--simulcast)", "layers_settled_s"),
    ("limited links, kbit/s (--simulcast)", "limit_kbps"),
    ("limit → switched down (encodingSwitched), median / max ms", "switch_down"),
    ("limit → narrower picture decoded, median / max ms", "picture_down"),
    ("limited pairs on a lower layer when the limit went", "limited_ended_lower"),
    ("unlimited pairs switched down meanwhile", "unlimited_switched_down"),
    ("limit gone → first switch up, median / max ms", "switch_up"),
    ("limit gone → back on the starting layer, median / max ms", "switch_back"),
    ("while limited: forwarded RTP packets/s", "limited_forwarded_pps"),
    ("while limited: server CPU µs per forwarded packet", "limited_us_per_packet"),
]

ROOM_ROWS = [
    ("worker", "worker"),
    ("all pairs flowing after, s", "settled_s"),
    ("forwarded RTP packets/s", "forwarded_pps"),
    ("publisher / received video fps, min", "fps"),
    ("received/sent frames, worst pair", "received_over_sent_min"),
]

WORKER_ROWS = [
    ("rooms", "rooms"),
    ("CPU, % of one core", "cpu_pct"),
    ("CPU µs per forwarded packet", "us_per_packet"),
    ("forwarded RTP packets/s (its rooms')", "forwarded_pps"),
    ("RSS before / steady / after, MiB", "rss"),
    ("restarts in window", "restarts"),
]


def _moments(values: dict) -> str:
    if not values:
        return "—"
    return " / ".join(f"{values.get(k, float('nan')):.0f}" for k in ("before", "steady", "after"))


def _cell(figures: dict | None, key: str) -> str:
    if figures is None:
        return "—"
    if key == "rss":
        return _moments(figures.get("rss_mib", {}))
    if key in ("rss_total", "pss_total"):
        return _moments(figures.get(key + "_mib", {}))
    if key == "fps":
        return f"{_cell(figures, 'publisher_fps_min')} / {_cell(figures, 'received_fps_min')}"
    value = figures.get(key)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return "—" if value is None else str(value)


def _named(results: list[dict], part: str, key: str) -> list[str]:
    """The names (rooms, workers) found under ``part`` in any of ``results``, in order."""
    names: list[str] = []
    for figures in results:
        for row in figures.get(part, []):
            if row[key] not in names:
                names.append(row[key])
    return names


def _find(figures: dict, part: str, key: str, name: str) -> dict | None:
    return next((row for row in figures.get(part, []) if row[key] == name), None)


def table(results: list[dict]) -> str:
    """A markdown table, one column per run (N, and the number of rooms when more than one);
    then rows per room and per media worker."""
    def heading(figures: dict) -> str:
        rooms = figures.get("rooms", 1)
        mode = f" {figures['mode']}" if figures.get("mode") else ""
        return f"N={figures['n']}" + (f" ×{rooms} rooms" if rooms > 1 else "") + mode

    header = "| | " + " | ".join(heading(r) for r in results) + " |"
    lines = [header, "|---|" + "---:|" * len(results)]
    for label, key in ROWS[1:]:
        lines.append(f"| {label} | " + " | ".join(_cell(r, key) for r in results) + " |")
    for room in _named(results, "per_room", "room"):
        for label, key in ROOM_ROWS:
            cells = [_cell(_find(r, "per_room", "room", room), key) for r in results]
            lines.append(f"| room {room}: {label} | " + " | ".join(cells) + " |")
    for worker in _named(results, "workers", "worker"):
        for label, key in WORKER_ROWS:
            cells = [_cell(_find(r, "workers", "worker", worker), key) for r in results]
            lines.append(f"| worker {worker}: {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
