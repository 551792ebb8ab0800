"""What recording costs a call: ``bench.sfu --record`` and ``--record-compare`` (docs/benchmarks.md).

With ``--record`` every run is in room ``rec1``, which has ``recording = "always"`` into the
work directory's ``recordings/``; with ``--record-compare`` each N is run twice in a row, in
``bench1`` (not recorded) and in ``rec1``, ``--rounds`` times, on the same daemon. The track
files are read at the start and at the end of the measured window: the RTP packets and bytes
they gained are the window's recorded packets and bytes. The worker's CPU per recorded packet
is what a recorded run's media workers spent per forwarded packet above the run without
recording just before it, times the forwarded packets, over the packets recorded. The room
is configured, so it outlives its runs: its recording goes on (idle between runs) until the
daemon stops, and no export runs between runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from videoroomd.recording.trackfile import RtpRecord, TrackFileError, read_track

REC_ROOM = "rec1"  # the room with recording = "always"
TRACK_SUFFIX = ".vrtrack"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--record", action="store_true",
                        help='every run in a room with recording = "always", into the work directory\'s recordings/')
    parser.add_argument("--record-compare", action="store_true",
                        help="each N twice in a row, without and with recording, --rounds times: what recording costs")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if (args.record or args.record_compare) and (args.simulcast or args.rooms != [1]):
        parser.error("--record and --record-compare run one room: no --simulcast, no --rooms")


def modes(args) -> tuple[str | None, ...]:
    """The runs of each N: ("plain", "recorded") to compare, ("recorded",) or (None,) without recording."""
    if args.record_compare:
        return ("plain", "recorded")
    return ("recorded",) if args.record else (None,)


def recorded_total(directory: Path) -> tuple[int, int]:
    """RTP packets and bytes in every track file under ``directory`` now (a record being
    written when this reads is left out: the reader stops at a cut record)."""
    packets = size = 0
    for path in directory.rglob(f"*{TRACK_SUFFIX}"):
        try:
            track = read_track(path.read_bytes())
        except (OSError, TrackFileError):
            continue
        packets += sum(1 for record in track.records if isinstance(record, RtpRecord))
        size += track.valid_bytes
    return packets, size


def window_figures(n: int, window_s: float, start: tuple[int, int], end: tuple[int, int]) -> dict:
    """A recorded run's figures from the track files at the window's start and end."""
    packets, size = end[0] - start[0], end[1] - start[1]
    return {"recorded_packets": packets, "recorded_bytes": size,
            "recorded_bytes_per_min_per_participant": round(size / max(window_s, 1e-9) * 60 / n)}


def split_cpu(figures: dict) -> dict:
    """Server CPU µs per forwarded packet split into user and kernel."""
    total, kernel = figures.get("server_us_per_packet"), figures.get("server_kernel_share_pct")
    if total is None or kernel is None:
        return {"server_user_us_per_packet": None, "server_kernel_us_per_packet": None}
    return {"server_user_us_per_packet": round(total * (100 - kernel) / 100, 1),
            "server_kernel_us_per_packet": round(total * kernel / 100, 1)}


def _worker_us_per_packet(figures: dict) -> float | None:
    """Every media worker's CPU µs per forwarded packet of the run, together."""
    cpu = [w.get("cpu_pct") for w in figures.get("workers", [])]
    if not cpu or None in cpu or not figures.get("forwarded_pps"):
        return None
    return sum(cpu) / 100 / figures["forwarded_pps"] * 1e6


def compare(plain: dict, recorded: dict) -> dict:
    """One pair of runs: what recording added, per forwarded and per recorded packet."""
    result = {"n": recorded.get("n"), "server_us_per_packet": [plain.get("server_us_per_packet"),
                                                               recorded.get("server_us_per_packet")]}
    base, rec = plain.get("server_us_per_packet"), recorded.get("server_us_per_packet")
    for key in ("recorded_packets", "recorded_bytes_per_min_per_participant", "received_over_sent_min"):
        result[key] = recorded.get(key)
    result["server_more_pct"] = round((rec - base) / base * 100, 1) if base and rec is not None else None
    worker_base, worker_rec = _worker_us_per_packet(plain), _worker_us_per_packet(recorded)
    packets = recorded.get("recorded_packets")
    if worker_base is None or worker_rec is None or not packets:
        result["worker_us_per_recorded_packet"] = None
    else:
        forwarded = recorded["forwarded_pps"] * recorded["window_s"]
        result["worker_us_per_recorded_packet"] = round((worker_rec - worker_base) * forwarded / packets, 1)
    return result


def comparisons(results: list[dict]) -> list[dict]:
    """Each recorded run against the plain run of the same N just before it."""
    pairs, last_plain = [], {}
    for figures in results:
        if "error" in figures:
            continue
        if figures.get("mode") == "plain":
            last_plain[figures["n"]] = figures
        elif figures.get("mode") == "recorded" and figures["n"] in last_plain:
            pairs.append(compare(last_plain.pop(figures["n"]), figures))
    return pairs


def comparison_text(pairs: list[dict]) -> str:
    lines = ["| N | server µs/fwd packet without | with | more | worker µs per recorded packet | packets recorded "
             "| bytes/min/participant | frames received/sent (min) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for pair in pairs:
        base, rec = pair["server_us_per_packet"]
        lines.append(f"| {pair['n']} | {base} | {rec} | {pair['server_more_pct']} % | "
                     f"{pair['worker_us_per_recorded_packet']} | {pair['recorded_packets']} | "
                     f"{pair['recorded_bytes_per_min_per_participant']} | {pair['received_over_sent_min']} |")
    return "\n".join(lines)


def print_comparison(args: argparse.Namespace, results: list[dict]) -> None:
    if args.record_compare:
        print("\nrecording's cost (each recorded run against the run without just before it):\n"
              + comparison_text(comparisons(results)), flush=True)
