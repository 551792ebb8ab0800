"""One participant in headless Chromium, driving the daemon's own web page: ``python -m bench.browser_bot``.

It takes the same arguments and speaks the same stdin/stdout protocol as
:mod:`bench.bot`, so the harness measures both alike. Chromium (Debian's,
never a downloaded one) captures its fake camera and microphone, encodes
VP8 and Opus itself and decodes what it receives, as a person's browser
does. :file:`page_probe.js` reads the page's media events and its
RTCPeerConnection's getStats(); the CPU reported is the whole browser's.

With ``--netns`` Chromium runs inside that network namespace (a host of
:mod:`testsupport.netns`, whose link the benchmark limits); the page is then on
the daemon's address there, over http, and ``--secure-origin`` lets
Chromium treat that origin as secure, as it treats localhost, so that the
page may open the (fake) camera.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from playwright.sync_api import sync_playwright

from testsupport.netns import wrapper
from .processes import participant_arguments
from .procfs import tree_cpu_seconds

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", "--allow-loopback-in-peer-connection",
         "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--autoplay-policy=no-user-gesture-required"]
PROBE = (Path(__file__).parent / "page_probe.js").read_text()
JOIN_TIMEOUT = 30.0


def emit(message: dict) -> None:
    try:
        print(json.dumps(message), flush=True)
    except BrokenPipeError:
        pass


def commands(lifetime: float):
    """Lines from stdin until it closes or ``lifetime`` seconds have passed."""
    deadline = time.monotonic() + lifetime
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], left)
        if not ready:
            return
        line = sys.stdin.readline()
        if not line:
            return
        yield line.strip()


def page_url(socket_url: str, room: str, name: str) -> str:
    address = urlsplit(socket_url).netloc  # ws://127.0.0.1:PORT/socket/websocket -> 127.0.0.1:PORT
    return f"http://{address}/room/{quote(room)}?name={quote(name)}&autojoin=1"


def monotonic_offset() -> float:
    """Add to a monotonic time to get epoch seconds (page times are epoch milliseconds)."""
    return time.time() - time.monotonic()


def join(page, url: str) -> dict:
    """Open the page, which joins by itself; "joined" is when its phx_join left, as for bench.bot."""
    page.goto(url)
    deadline = time.monotonic() + JOIN_TIMEOUT
    while time.monotonic() < deadline:
        joined = page.evaluate("window.__benchJoined()")
        if joined:
            t_join = joined.pop("joinSent") / 1000 - monotonic_offset()
            return {"event": "joined", "t_join": t_join, **joined}
        page.wait_for_timeout(50)
    raise RuntimeError(f"the page did not publish within {JOIN_TIMEOUT:.0f} s")


def snapshot(page) -> dict:
    snap = page.evaluate("window.__benchSnap()")
    offset = monotonic_offset()
    for entry in snap["received"].values():
        for key in ("first", "first_keyframe"):
            if entry.get(key) is not None:
                entry[key] = entry[key] / 1000 - offset
    snap["states"] = [(t / 1000 - offset, state) for t, state in snap["states"]]
    snap["switches"] = [(t / 1000 - offset, *rest) for t, *rest in snap.get("switches", [])]
    for entry in snap["received"].values():
        entry["widths"] = [(t / 1000 - offset, width) for t, width in entry.get("widths", [])]
    return {"event": "snap", "t": time.monotonic(), "cpu": tree_cpu_seconds(os.getpid()), **snap}


def launch_options(args: argparse.Namespace, directory: Path) -> dict:
    """Playwright's launch arguments: Debian's Chromium, or a wrapper that starts it in
    ``--netns`` (there without loopback candidates, which would be this machine's, not the
    host's); ``--secure-origin`` treated as secure."""
    flags = list(FLAGS)
    executable = CHROMIUM
    if args.netns:
        flags.remove("--allow-loopback-in-peer-connection")
        executable = str(wrapper(args.netns, CHROMIUM, directory))
    if args.secure_origin:
        flags.append(f"--unsafely-treat-insecure-origin-as-secure={args.secure_origin}")
    return {"executable_path": executable, "args": flags, "headless": True}


def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="browser-bot-") as directory, sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options(args, Path(directory)))
        try:
            page = browser.new_page()
            page.add_init_script(PROBE)
            emit({"event": "ready"})
            for command in commands(args.lifetime):
                if command == "join":
                    emit(join(page, page_url(args.url, args.room, args.name)))
                elif command == "snap":
                    emit(snapshot(page))
                elif command == "quit":
                    break
        finally:
            browser.close()
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    def more(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--netns", help="run Chromium in this network namespace (ip netns)")
        parser.add_argument("--secure-origin", help="an http origin (http://ADDRESS:PORT) Chromium treats as secure")

    return participant_arguments("python -m bench.browser_bot", __doc__.split("\n")[0], argv,
                                 url_help="ws://ADDRESS:PORT/socket/websocket?vsn=2.0.0 (the page is on the same port)",
                                 clip_help="ignored: Chromium sends its own fake camera", more=more)


if __name__ == "__main__":
    try:
        sys.exit(main(parse(sys.argv[1:])))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as error:
        emit({"event": "error", "error": f"{type(error).__name__}: {error}"})
        raise
