"""From what the bots and /proc said to the figures of one run (pure code).

A *pair* is one subscriber and one publisher's video track. The window
is the steady state between two samples, ``start`` and ``end``: each
sample holds every bot's counters and the server's CPU time.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field


@dataclass
class Sample:
    t: float                 # monotonic seconds, taken by the harness
    server_cpu: float        # seconds
    server_system: float     # seconds of server_cpu spent in the kernel
    server_threads: dict[int, float]
    machine: tuple[int, int]  # (busy, total) ticks
    harness_cpu: float       # seconds of CPU this harness used so far
    snaps: dict[str, dict]   # bot name -> its "snap" message


@dataclass
class Run:
    n: int
    joined: dict[str, dict]             # bot name -> its "joined" message (the N steady participants)
    start: Sample
    end: Sample
    settled_s: float | None             # seconds until every pair flowed; None: some never did
    late: dict | None = None            # {"joined": ..., "snap": ...} of the late joiner
    final: dict[str, dict] = field(default_factory=dict)  # every bot's last snap, before they leave
    server_drops: list[str] = field(default_factory=list)  # connections the server saw end before leave
    rss_mib: dict[str, float] = field(default_factory=dict)
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
    return (end or {}).get(key, 0) - (start or {}).get(key, 0)


def pairs(names) -> list[tuple[str, str]]:
    """(subscriber, publisher) for every two of ``names``."""
    return [(s, p) for s in names for p in names if s != p]


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
    server = run.end.server_cpu - run.start.server_cpu
    threads = [t - run.start.server_threads.get(tid, 0.0) for tid, t in run.end.server_threads.items()]
    busy = (run.end.machine[0] - run.start.machine[0]) / max(1, run.end.machine[1] - run.start.machine[1])
    bots = sum(run.end.snaps[n]["cpu"] - run.start.snaps[n]["cpu"] for n in run.joined)
    harness = run.end.harness_cpu - run.start.harness_cpu
    # what else ran on the machine meanwhile, in cores: not ours, so a disturbance to note
    others = busy * (os.cpu_count() or 1) - (server + bots + harness) / wall
    return {
        "server_us_per_packet": round(server / packets * 1e6, 1) if packets else None,
        "server_cpu_pct": round(server / wall * 100, 1),
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
    for sub, pub in pairs(run.joined):
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
        "jitter_ms_median": round(statistics.median(jitter), 1) if jitter else None,
        "jitter_ms_max": round(max(jitter), 1) if jitter else None,
    }


def _joins(run: Run) -> dict:
    """Join to first remote video frame, from the later of the two joins of each pair."""
    first_ms, missing = [], 0
    for sub, pub in pairs(run.joined):
        entry = _entry(run.end.snaps[sub], run.joined[pub]["tracks"]["video"])
        began = max(run.joined[sub]["t_join"], run.joined[pub]["t_join"])
        if entry and entry.get("first") is not None:
            first_ms.append((entry["first"] - began) * 1000)
        else:
            missing += 1
    late_ms, late_missing = [], 0
    if run.late is not None:
        for pub in run.joined:
            entry = _entry(run.late["snap"], run.joined[pub]["tracks"]["video"])
            if entry and entry.get("first_keyframe") is not None:
                late_ms.append((entry["first_keyframe"] - run.late["joined"]["t_join"]) * 1000)
            else:
                late_missing += 1
    return {
        "first_frame_ms_median": _round(statistics.median(first_ms) if first_ms else None),
        "first_frame_ms_p95": _round(percentile(first_ms, 95)),
        "first_frame_missing": missing,
        "late_keyframe_ms_median": _round(statistics.median(late_ms) if late_ms else None),
        "late_keyframe_ms_max": _round(max(late_ms) if late_ms else None),
        "late_keyframe_missing": late_missing if run.late is not None else None,
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


def summarize(run: Run) -> dict:
    wall = run.end.t - run.start.t
    packets = _received_total(run, "packets")
    return {
        "n": run.n,
        "streams_out": run.n * (run.n - 1) * 2,
        "window_s": round(wall, 2),
        "settled_s": None if run.settled_s is None else round(run.settled_s, 2),
        "forwarded_pps": round(packets / wall),
        **_cpu(run, wall, packets),
        **_frames(run, wall),
        **_loss(run, packets),
        **_joins(run),
        "rss_mib": {k: round(v, 1) for k, v in run.rss_mib.items()},
        "log_problems": sum(count for *_rest, count in run.log_problems),
        "connections_lost": len(connection_trouble(run.final)),
        "server_drops": len(run.server_drops),
        "restarts": run.restarts,
    }


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


ROWS = [
    ("participants (N)", "n"),
    ("forwarded streams (audio+video)", "streams_out"),
    ("steady window, s", "window_s"),
    ("all pairs flowing after, s", "settled_s"),
    ("forwarded RTP packets/s", "forwarded_pps"),
    ("server CPU µs per forwarded packet", "server_us_per_packet"),
    ("server CPU, % of one core", "server_cpu_pct"),
    ("… of which in the kernel, %", "server_kernel_share_pct"),
    ("busiest server thread, % of one core", "busiest_thread_pct"),
    ("machine busy, % of all cores", "machine_busy_pct"),
    ("bots' CPU, % of one core", "bots_cpu_pct"),
    ("other processes' CPU, % of one core", "others_cpu_pct"),
    ("publisher video fps, min", "publisher_fps_min"),
    ("received video fps, min", "received_fps_min"),
    ("received video fps, median", "received_fps_median"),
    ("received/sent frames, worst pair", "received_over_sent_min"),
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
    ("server RSS before / steady / after, MiB", "rss"),
    ("warnings+errors in server log", "log_problems"),
    ("bots whose connection closed or failed", "connections_lost"),
    ("connections the server saw end mid-call", "server_drops"),
    ("room restarts", "restarts"),
]


def _cell(figures: dict, key: str) -> str:
    if key == "rss":
        rss = figures.get("rss_mib", {})
        return " / ".join(f"{rss.get(k, float('nan')):.0f}" for k in ("before", "steady", "after"))
    value = figures.get(key)
    return "—" if value is None else str(value)


def table(results: list[dict]) -> str:
    """A markdown table, one column per N."""
    header = "| | " + " | ".join(f"N={r['n']}" for r in results) + " |"
    lines = [header, "|---|" + "---:|" * len(results)]
    for label, key in ROWS[1:]:
        lines.append(f"| {label} | " + " | ".join(_cell(r, key) for r in results) + " |")
    return "\n".join(lines)
