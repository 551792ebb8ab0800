"""Takes the README's pictures of the page: a daemon on 127.0.0.1, the page in Debian's Chromium
(its fake camera), the other people aiortc bots (testsupport.bot_crowd). Run from the checkout:

    PYTHONPATH=$PWD .venv/bin/python docs/take_screenshots.py

and commit docs/*.png (PNG, a 1280x800 window at scale 1: some 100 KB each)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from testsupport.bot_crowd import BotCrowd
from testsupport.browser import launch
from testsupport.daemon import DaemonProcess, config_text, free_port

DOCS = Path(__file__).resolve().parent
# Every tile's video has shown frames (a loaded machine may take a while for the last one).
ALL_MOVING = "n => [...document.querySelectorAll('figure.tile video')].filter((v) => v.getVideoPlaybackQuality().totalVideoFrames > 20).length >= n"
ROOMS = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 8\n'


def main() -> int:
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        port = free_port()
        config = Path(folder) / "videoroomd.toml"
        config.write_text(config_text(ROOMS, port=port, media="workers = 1"))
        daemon = DaemonProcess(config, port)
        browser = launch(playwright)
        crowd = None
        try:
            daemon.wait_healthy(timeout=60)
            crowd = BotCrowd(daemon)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.emulate_media(color_scheme="dark")
            page.goto(f"{daemon.url}/room/lobby?name=Ann&autojoin=1")
            expect(page.locator("#call")).to_be_visible(timeout=15000)
            for name in ("Bob", "Cleo"):
                crowd.add(name)
            expect(page.locator("figure.tile video")).to_have_count(3, timeout=20000)
            page.wait_for_function(ALL_MOVING, arg=3, timeout=30000)
            page.wait_for_timeout(3000)
            page.screenshot(path=str(DOCS / "three-person-call.png"))
            crowd.add("Dan", screens=1)
            expect(page.locator("#stage .presenting")).to_have_count(0, timeout=20000)
            page.wait_for_function(ALL_MOVING, arg=4, timeout=30000)
            page.keyboard.press("c")
            page.locator("#chat-input").fill("The second chart, please")
            page.keyboard.press("Enter")
            page.wait_for_timeout(3000)
            page.mouse.move(1, 1)
            page.screenshot(path=str(DOCS / "call-with-screen-share.png"))
        finally:
            if crowd is not None:
                crowd.close()
            browser.close()
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
