"""The daemon's page in Debian's Firefox ESR: the join screen (preview, microphone level, pickers),
joining, the grid, a shortcut and a pin, next to a person in Chromium. Firefox is driven by puppeteer-core over
WebDriver BiDi (Playwright would need its own patched Firefox build, which cannot be had here).

Media between Firefox and the daemon is not checked here: Firefox gathers no ICE candidate on
127.0.0.1 (not with media.peerconnection.ice.loopback, nor with only a loopback interface), and the
tests use no other address, so its media connection cannot form on a test machine."""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

import npm_packages
from web_page import ROOMS, browser, participant, tile_of  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
FIREFOX = "/usr/bin/firefox-esr"


class FirefoxParticipant:
    """tests/js/firefox_participant.mjs in a subprocess; its JSON lines arrive on a queue."""

    def __init__(self, url: str, other: str):
        node = shutil.which("node")
        assert node, "node is needed: apt-get install nodejs (tests/run.sh does)"
        if not Path(FIREFOX).exists():
            raise RuntimeError("Debian's firefox-esr is needed: apt-get install firefox-esr (tests/run.sh does)")
        modules = npm_packages.install()
        self.proc = subprocess.Popen(
            [node, str(HERE / "js" / "firefox_participant.mjs"), str(modules / "puppeteer-core"), FIREFOX, url, other],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                self.events.put({"output": line})
        self.events.put({"exited": self.proc.wait()})

    def wait_for(self, key: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(event)
            if key in event:
                return event
            if "error" in event or "exited" in event:
                break
        raise AssertionError(f"Firefox never reported {key!r}: {seen}; stderr: {self.stderr()}")

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stderr.read()[-3000:]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()  # the script leaves the call and closes Firefox
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_the_page_in_firefox_previews_meters_joins_and_shows_the_others(browser, start_daemon):
    daemon = start_daemon(rooms=ROOMS)
    ann = participant(browser, daemon, "Ann")
    expect(ann.locator("#call")).to_be_visible(timeout=15000)
    fox = FirefoxParticipant(f"{daemon.url}/room/lobby?name=Fox", "Ann")
    try:
        assert fox.wait_for("preview")["preview"] > 10       # the camera preview moves
        assert fox.wait_for("level")["level"] > 0.02         # the (fake, beeping) microphone moves the meter
        assert fox.wait_for("cameras")["cameras"]            # the camera picker lists a camera
        fox.wait_for("joined")
        assert fox.wait_for("tiles")["tiles"] == ["Me", "Ann"]
        grid = fox.wait_for("grid")["grid"]
        assert len(set(grid["widths"])) == 1 and grid["inside"], grid
        controls = fox.wait_for("controls")["controls"]
        assert controls == {"mic": ["Unmute", "true"], "pinned": True, "larger": True}, controls
        expect(ann.locator(tile_of(ann, "Fox"))).to_be_visible(timeout=15000)  # Chromium sees Firefox arrive
        expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_text("Muted", timeout=15000)  # and mute
        expect(ann.locator("#participants .who")).to_have_text(["Ann (you)", "Fox"])
    finally:
        fox.close()
        ann.context.close()
