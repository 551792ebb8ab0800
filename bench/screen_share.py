"""A shared screen's first frame in Chromium: ``python -m bench.screen_share [--rounds 5] [--load 0,2]``.

Two headless Chromium pages (Ann, Bob) join a room on a real daemon. Each
round Ann clicks *Share screen* (Chromium's fake 1280x720 screen, no picker);
Bob's page notes when its stage says "Ann is presenting…", when the screen's
track arrives (its video element is made) and when its first frame shows (a
decoded frame; the time after the track is the keyframe's); then Ann stops,
and Bob's stage empties before the next round. Times are from Ann's click to
each mark, read from the pages' clocks (one browser, one machine).

``--load`` runs that many busy-looping processes beside it (a busy laptop),
one row of figures per count. The daemon's keyframe requests during the
rounds are counted (``videoroomd_media_keyframe_requests``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from testsupport.browser import launch
from testsupport.daemon import DaemonProcess, config_text, free_port
from testsupport.metrics import read

SCREEN_FLAGS = ("--auto-select-desktop-capture-source=Entire screen",)
ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 8\n'

# Bob's page: poll every 5 ms for the placeholder and the first frame of a screen on the stage.
PROBE = """() => {
  window.marks = {};
  if (window.probe) clearInterval(window.probe);
  window.probe = setInterval(() => {
    const now = Date.now();
    if (!window.marks.placeholder && document.querySelector("#stage .presenting")) window.marks.placeholder = now;
    const video = document.querySelector("#stage figure:not(.pending) video");
    if (!window.marks.track && video) window.marks.track = now;
    if (!window.marks.frame && video && video.getVideoPlaybackQuality().totalVideoFrames > 0) window.marks.frame = now;
  }, 5);
}"""
# Ann's page: when the click on the share button happened.
CLICK = """() => { window.clicked = null;
  document.addEventListener("click", () => { window.clicked = Date.now(); }, { capture: true, once: true }); }"""


def _burn() -> None:
    while True:
        pass


def keyframe_requests(daemon: DaemonProcess) -> float:
    text = read(daemon)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("videoroomd_media_keyframe_requests_total{"))


def one_round(ann, bob) -> dict:
    """Ann shares and stops once; returns the milliseconds from her click to Bob's marks."""
    bob.evaluate(PROBE)
    ann.evaluate(CLICK)
    ann.get_by_role("button", name="Share screen").click()
    bob.wait_for_function("() => window.marks.frame", timeout=30000)
    clicked = ann.evaluate("() => window.clicked")
    marks = bob.evaluate("() => window.marks")
    ann.get_by_role("button", name="Stop sharing").click()
    expect(bob.locator("#stage")).to_be_hidden(timeout=15000)
    return {"placeholder_ms": (marks["placeholder"] - clicked) if marks.get("placeholder") else None,
            "track_ms": marks["track"] - clicked, "first_frame_ms": marks["frame"] - clicked}


def run(load: int, rounds: int, daemon: DaemonProcess, browser) -> dict:
    burners = [multiprocessing.Process(target=_burn, daemon=True) for _ in range(load)]
    for burner in burners:
        burner.start()
    try:
        pages = []
        for name in ("Ann", "Bob"):
            page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            page.goto(f"{daemon.url}/room/lobby?name={name}&autojoin=1")
            pages.append(page)
        ann, bob = pages
        expect(bob.locator("figure.tile:has(figcaption:text-is('Ann')) video")).to_be_visible(timeout=30000)
        bob.wait_for_timeout(2000)  # the call settles before the first round
        before = keyframe_requests(daemon)
        results = [one_round(ann, bob) for _ in range(rounds)]
        asked = keyframe_requests(daemon) - before
        for page in pages:
            page.context.close()
    finally:
        for burner in burners:
            burner.kill()
    frames = [r["first_frame_ms"] for r in results]
    shown = [r["placeholder_ms"] for r in results if r["placeholder_ms"] is not None]
    after_track = [r["first_frame_ms"] - r["track_ms"] for r in results]
    return {"load": load, "rounds": results, "first_frame_median_ms": statistics.median(frames),
            "track_to_frame_median_ms": statistics.median(after_track),
            "first_frame_max_ms": max(frames), "placeholder_median_ms": statistics.median(shown) if shown else None,
            "keyframe_requests": asked}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screen_share", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="shares per load level (default 5)")
    parser.add_argument("--load", default="0,2", help="busy processes beside the run, one row per count (default 0,2)")
    parser.add_argument("--workers", default="2", help="the daemon's [media] workers (default 2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    loads = [int(n) for n in args.load.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="screen-share-"))
    port = free_port()
    path = workdir / "videoroomd.toml"
    path.write_text(config_text(ROOMS, port=port, media=f"workers = {args.workers}"))
    daemon = DaemonProcess(path, port)
    rows = []
    try:
        daemon.wait_healthy()
        with sync_playwright() as playwright:
            browser = launch(playwright, extra_flags=SCREEN_FLAGS)
            try:
                for load in loads:
                    row = run(load, args.rounds, daemon, browser)
                    rows.append(row)
                    print(f"load {load}: first frame median {row['first_frame_median_ms']:.0f} ms, "
                          f"max {row['first_frame_max_ms']:.0f} ms; placeholder median {row['placeholder_median_ms']} ms; "
                          f"track to first frame median {row['track_to_frame_median_ms']:.0f} ms; "
                          f"keyframe requests {row['keyframe_requests']:.0f} over {args.rounds} shares", flush=True)
            finally:
                browser.close()
    finally:
        daemon.stop()
    summary = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
