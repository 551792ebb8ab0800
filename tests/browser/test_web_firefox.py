"""The daemon's page in Debian's Firefox ESR next to a person in Chromium: the join screen (preview,
microphone level, pickers), joining, the grid, a shortcut and a pin; and a call with media, each
seeing the other's video move, hearing the other, and seeing a mute. Firefox is driven by puppeteer-core
over WebDriver BiDi (Playwright would need its own patched Firefox build, which cannot be had here).

Firefox gathers no ICE candidate on 127.0.0.1 (not with media.peerconnection.ice.loopback, nor with
only a loopback interface), so the call runs on test hosts of the project's own (testsupport/netns.py):
each browser in a network namespace of its own, the daemon on this machine's end of Firefox's veth
pair, over https with a certificate made by the test, so the page is a secure context (camera,
microphone, the level meter's audio graph) on an address that is not loopback. The first test, with
no media, stays on 127.0.0.1."""

from __future__ import annotations

import json
import queue
import shutil
import ssl
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from testsupport import npm_packages
from testsupport.browser import chromium_path, launch
from testsupport.daemon import free_port
from testsupport.netns import Host as NetHost, net_host
from videoroomd.certs.generate import generate
from testsupport.web_page import KEEP_PEER_CONNECTIONS, ROOMS, participant, tile_of, wait_for_moving_video

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent.parent  # tests/, whose js/ holds the scripts
FIREFOX = "/usr/bin/firefox-esr"


class FirefoxParticipant:
    """A script of tests/js (firefox_participant.mjs unless ``script`` says) in a subprocess, inside
    ``host``'s network namespace when given; its JSON lines arrive on a queue."""

    def __init__(self, url: str, other: str, script: str = "firefox_participant.mjs", host: NetHost | None = None):
        node = shutil.which("node")
        assert node, "node is needed: apt-get install nodejs (tests/run.sh does)"
        if not Path(FIREFOX).exists():
            raise RuntimeError("Debian's firefox-esr is needed: apt-get install firefox-esr (tests/run.sh does)")
        modules = npm_packages.install()
        command = [node, str(HERE / "js" / script), str(modules / "puppeteer-core"), FIREFOX, url, other]
        self.proc = subprocess.Popen(
            host.command(*command) if host else command,
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

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

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




def audio_packets_received(page) -> int:
    return page.evaluate("""async () => {
        let packets = 0;
        for (const pc of window.peerConnections)
            for (const entry of (await pc.getStats()).values())
                if (entry.type === "inbound-rtp" && entry.kind === "audio") packets += entry.packetsReceived || 0;
        return packets;
    }""")


def media_path(page) -> dict:
    """The state of the page's media connection and the addresses of its candidate pair in use."""
    return page.evaluate("""async () => {
        const pc = window.peerConnections.at(-1);
        const stats = [...(await pc.getStats()).values()];
        const transport = stats.find((e) => e.type === "transport" && e.selectedCandidatePairId);
        const pair = stats.find((e) => e.id === transport?.selectedCandidatePairId);
        const address = (id) => stats.find((e) => e.id === id)?.address;
        return { state: pc.connectionState, local: address(pair?.localCandidateId), remote: address(pair?.remoteCandidateId) };
    }""")


def wait_for_rising_audio(page, timeout: float = 20.0) -> None:
    """The audio this page receives from the daemon goes on arriving (20 packets more than first seen)."""
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        packets = audio_packets_received(page)
        if first is None and packets > 0:
            first = packets
        elif first is not None and packets >= first + 20:
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"the audio received did not rise (packets: {first} -> {audio_packets_received(page)})")


def wait_https(url: str, cafile: Path, timeout: float = 20.0) -> None:
    context = ssl.create_default_context(cafile=str(cafile))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", context=context, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_firefox_and_chromium_hold_a_call_with_video_sound_and_mute(playwright, start_daemon, tmp_path):
    # Firefox offers no ICE candidate on 127.0.0.1, so each browser runs on a test host of its own
    # (testsupport/netns.py) and the daemon serves them on this machine's end of Firefox's veth pair; the
    # daemon's media and the browsers' candidates are those test addresses alone. It is https with a
    # certificate made here (accepted by each browser, as a person would): the page is a secure
    # context on an address that is not loopback, so camera, microphone and the level meter work.
    with net_host() as fox_host, net_host() as ann_host:
        server = fox_host.gateway
        ann_host.route_to(server)
        generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn=server, days=1)
        port = free_port()
        daemon = start_daemon(f"""[server]
listen = "{server}:{port}"
hostnames = ["{server}"]
tls_cert = "{tmp_path}/tls.crt"
tls_key = "{tmp_path}/tls.key"
[ice]
addresses = ["{server}"]
[media]
workers = 0
[log]
level = "debug"
[rooms.lobby]
max_peers = 8
""", port=port, wait=False)
        try:
            url = f"https://{server}:{port}"
            wait_https(url, tmp_path / "tls.crt")
            chromium = launch(playwright, executable=str(ann_host.wrapper(chromium_path(), tmp_path)))
            try:
                context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1000, "height": 700})
                context.add_init_script(KEEP_PEER_CONNECTIONS)
                ann = context.new_page()
                ann.goto(f"{url}/room/lobby?name=Ann&autojoin=1")
                expect(ann.locator("#call")).to_be_visible(timeout=15000)
                fox = FirefoxParticipant(f"{url}/room/lobby?name=Fox&autojoin=1", "Ann", "firefox_caller.mjs", fox_host)
                try:
                    fox.wait_for("joined")
                    wait_for_moving_video(ann, "Fox", timeout=30)  # Chromium sees Firefox's camera move
                    assert fox.wait_for("video")["video"] > 10   # and Firefox sees Chromium's
                    wait_for_rising_audio(ann)                    # Chromium hears Firefox
                    assert fox.wait_for("audio")["audio"] > 20   # and Firefox hears Chromium
                    media = fox.wait_for("media")["media"]  # over the test hosts' addresses alone
                    assert media == {"state": "connected", "local": fox_host.address, "remote": server}, media
                    media = media_path(ann)
                    assert media == {"state": "connected", "local": ann_host.address, "remote": server}, media
                    expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_count(0)
                    fox.send("mute")
                    assert fox.wait_for("muted")["muted"] == "true"
                    expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_text("Muted", timeout=10000)
                finally:
                    fox.close()
            finally:
                chromium.close()
        finally:
            daemon.stop()  # before its address goes with the test host
