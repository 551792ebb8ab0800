"""The figures of ``bench.peers`` (pure): one run's from its two samples, and the side-by-side table.

A sample is what the harness read at one moment: the server's process tree
CPU (user and kernel apart, from /proc), the machine's busy and total clock
ticks, and every participant's snap (its receivers' packet and frame counts,
what it sent, its own CPU). The forwarded packets of a window are the RTP
packets every participant's receivers received during it, counted the same
way for both servers (aiortc's receiver statistics, RTX included).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass
class PeerSample:
    t: float                     # monotonic seconds
    user: float                  # CPU seconds of the server's tree so far, user
    kernel: float                # ... and kernel
    machine: tuple[int, int]     # (busy, total) clock ticks of all CPUs
    snaps: dict[str, dict]       # participant name -> its snap


def _received(snap: dict, key: str, kind: str | None = None) -> dict[str, int]:
    return {mid: entry.get(key) or 0 for mid, entry in snap.get("received", {}).items()
            if kind is None or entry.get("kind") == kind}


def _delta(start: dict[str, int], end: dict[str, int]) -> int:
    return sum(value - start.get(mid, 0) for mid, value in end.items())


def run_figures(server: str, n: int, start: PeerSample, end: PeerSample, rss_mib: float, pss_mib: float) -> dict:
    """One run's figures: server CPU per forwarded packet (µs, user and kernel apart), packets/s,
    the tree's RSS and PSS (shared pages once), and what tells whether the participants kept up (the share of the video
    frames sent that arrived at each other subscriber, the slowest publisher's frame rate, the
    machine's busy share, the participants' CPU)."""
    wall = end.t - start.t
    names = [name for name in end.snaps if name in start.snaps]
    packets = sum(_delta(_received(start.snaps[name], "packets"), _received(end.snaps[name], "packets"))
                  for name in names)
    frames_in = sum(_delta(_received(start.snaps[name], "frames", "video"),
                           _received(end.snaps[name], "frames", "video")) for name in names)
    sent = {name: (end.snaps[name]["sent"].get("video", {}).get("frames", 0)
                   - start.snaps[name]["sent"].get("video", {}).get("frames", 0)) for name in names}
    expected = sum(sent.values()) * (n - 1)
    busy, total = (e - s for s, e in zip(start.machine, end.machine))
    user, kernel = end.user - start.user, end.kernel - start.kernel

    def per_packet(seconds: float) -> float | None:
        return round(seconds / packets * 1e6, 1) if packets else None

    return {"server": server, "n": n, "wall_s": round(wall, 2), "packets": packets,
            "packets_per_s": round(packets / wall) if wall > 0 else None,
            "us_per_packet": per_packet(user + kernel), "user_us": per_packet(user), "kernel_us": per_packet(kernel),
            "server_cores": round((user + kernel) / wall, 3) if wall > 0 else None,
            "rss_mib": round(rss_mib, 1), "pss_mib": round(pss_mib, 1),
            "video_delivered": round(frames_in / expected, 4) if expected else None,
            "publisher_fps_min": round(min(sent.values()) / wall, 1) if sent and wall > 0 else None,
            "machine_busy": round(busy / total, 3) if total else None,
            "bot_cores": round(sum(end.snaps[name]["cpu"] - start.snaps[name]["cpu"] for name in names) / wall, 2)
            if wall > 0 else None}


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return round(ours / theirs, 2) if ours and theirs else None


def ratios(results: list[dict]) -> dict[int, dict]:
    """For each N: videoroomd ÷ Janus of CPU per packet (all, user, kernel) and of RSS, each
    round's (a videoroomd run and the Janus run after it; a round where either failed has
    none) and their median and spread."""
    by_n: dict[int, dict] = {}
    for n in sorted({r["n"] for r in results}):
        ours = {r["round"]: r for r in results if r["n"] == n and r["server"] == "videoroomd" and "error" not in r}
        theirs = {r["round"]: r for r in results if r["n"] == n and r["server"] == "janus" and "error" not in r}
        pairs = [(ours[i], theirs[i]) for i in sorted(ours) if i in theirs]
        rounds = [{key: _ratio(a.get(key), b.get(key)) for key in ("us_per_packet", "user_us", "kernel_us", "rss_mib", "pss_mib")}
                  for a, b in pairs]
        values = [r["us_per_packet"] for r in rounds if r["us_per_packet"] is not None]
        by_n[n] = {"rounds": rounds, "median": round(statistics.median(values), 2) if values else None,
                   "low": min(values, default=None), "high": max(values, default=None)}
    return by_n


ROWS = [("CPU µs per forwarded packet", "us_per_packet"), ("  of which user", "user_us"),
        ("  of which kernel", "kernel_us"), ("forwarded packets/s", "packets_per_s"),
        ("server cores busy", "server_cores"), ("server tree RSS, MiB", "rss_mib"),
        ("server tree PSS, MiB", "pss_mib"),
        ("video frames delivered", "video_delivered"), ("publisher video fps, min", "publisher_fps_min"),
        ("machine busy", "machine_busy"), ("participants' cores", "bot_cores")]


def _cell(values: list) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "—"
    if len(present) == 1 or min(present) == max(present):
        return f"{present[0]:.4g}"
    return f"{statistics.median(present):.4g} ({min(present):.4g}–{max(present):.4g})"


def table(results: list[dict]) -> str:
    """A column per server and N (the median over the rounds that ran, with the range when
    rounds differ; failed runs left out), then the ratio rows."""
    ns = sorted({r["n"] for r in results})
    columns = [(n, server) for n in ns for server in ("videoroomd", "janus")]
    heads = [f"N={n} {'ours' if server == 'videoroomd' else 'Janus'}" for n, server in columns]
    lines = [" | ".join(["figure", *heads])]
    for label, key in ROWS:
        cells = [_cell([r.get(key) for r in results if r["n"] == n and r["server"] == server and "error" not in r])
                 for n, server in columns]
        lines.append(" | ".join([label, *cells]))
    by_n = ratios(results)
    for label, key in (("ratio videoroomd ÷ Janus, CPU/packet", "us_per_packet"), ("  user", "user_us"),
                       ("  kernel", "kernel_us"), ("ratio, RSS", "rss_mib"),
                       ("ratio, PSS", "pss_mib")):
        cells = []
        for n in ns:
            cells += [_cell([r[key] for r in by_n[n]["rounds"]]), ""]
        lines.append(" | ".join([label, *cells]))
    return "\n".join(lines)
