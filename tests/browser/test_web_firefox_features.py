"""The rest of the page's features in Debian's Firefox ESR, next to people in Chromium: the join
screen's remembered name, copy link and join muted / camera off; the chat (names, markup as text,
the unread count, the history for a late joiner, the rate limit); the people list; speaker view
following who speaks; a phone-sized window; the connection-quality mark; screen sharing both ways.

Firefox runs tests/js/firefox_page.mjs, which does what the test sends it line by line. The tests
without media stay on 127.0.0.1 (the chat, the people list and the layout need only the signalling);
those with media run on the test hosts of testsupport/netns.py, as test_web_firefox.py explains.
A Firefox start is the dearest part of a test (several seconds), so each group of tests shares one
Firefox, each test in a new tab of its own (:class:`SharedFirefox`); the tests on the test hosts
also share the daemon and Chromium there, each in a room of its own.

Firefox cannot capture a screen here: its fake devices (media.navigator.streams.fake) are a camera
and a microphone only, and a headless Firefox with no display server has no screen or window, so its
getDisplayMedia fails with NotFoundError ("The object can not be found here.") whatever the prefs
(media.getdisplaymedia.enabled, media.getusermedia.screensharing.enabled, permission.disabled);
the page's words for that are shown. To show Firefox sharing, the page's getDisplayMedia is given
the one capture Firefox can make here, one of its own tabs (media.getusermedia.browser.enabled);
everything after the capture (the second video track, the negotiation, stopping) is the page's own."""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import re
import time

import pytest
from playwright.sync_api import expect

from testsupport.browser import chromium_path, launch
from testsupport.daemon import DaemonProcess, free_port
from testsupport.netns import net_host
from test_web_firefox import FirefoxParticipant, wait_https
from test_web_screen import SCREEN_FLAGS, wait_for_moving_screen
from videoroomd.certs.generate import generate
from testsupport.web_page import KEEP_PEER_CONNECTIONS, REMOTE, ROOMS, participant, tile_of, wait_for_moving_video

pytestmark = pytest.mark.browser


class FirefoxPage(FirefoxParticipant):
    """The page in Firefox at ``url``, in a window of ``size`` (width, height); ``run`` sends it a
    command of tests/js/firefox_page.mjs and returns its answer."""

    def __init__(self, url: str, size: tuple[int, int] = (1000, 700), host=None):
        super().__init__(url, f"{size[0]}x{size[1]}", "firefox_page.mjs", host)
        self.ids = itertools.count(1)
        try:
            self.wait_for("ready")
        except BaseException:
            self.close()  # no Firefox left behind by a page that never opened
            raise

    def run(self, what: str, timeout: float = 40.0, **command) -> object:
        ident = next(self.ids)
        self.send(json.dumps({"id": ident, "do": what, **command}))
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                event = self.events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event.get("reply") == ident:
                if "error" in event:
                    raise AssertionError(f"Firefox: {what} {command} failed: {event['error']}; before it: {seen}")
                return event["value"]
            seen.append(event)
            if "error" in event or "exited" in event:
                break
        raise AssertionError(f"Firefox never answered {what} {command}: {seen}; stderr: {self.stderr()}")

    def fresh(self, url: str, size: tuple[int, int] = (1000, 700)) -> None:
        """A new tab of ``size`` at ``url`` in place of the one open, which leaves its call (its
        init scripts go with it)."""
        self.run("fresh", url=url, width=size[0], height=size[1])

    def eval(self, js: str, arg=None) -> object:
        return self.run("eval", js=js, arg=arg)

    def wait(self, js: str, arg=None, timeout: float = 20.0) -> object:
        """Waits until ``js`` (a function of ``arg``) returns something truthy on the page; returns it."""
        return self.run("wait", timeout=timeout + 10, js=js, arg=arg, ms=timeout * 1000)

    def wait_equal(self, js: str, arg, expected, timeout: float = 15.0) -> None:
        """Waits until ``js`` (a function of ``arg``) returns ``expected`` (as JSON) on the page."""
        try:
            want = json.dumps(json.dumps(expected, separators=(",", ":")))  # as JSON.stringify writes it
            self.wait(f"(arg) => JSON.stringify(({js})(arg)) === {want}", arg, timeout)
        except AssertionError:
            raise AssertionError(f"Firefox: {js}({arg!r}) is {self.eval(js, arg)!r}, not {expected!r}") from None

    def texts(self, selector: str) -> list[str]:
        return self.eval("(s) => [...document.querySelectorAll(s)].map((e) => e.textContent)", selector)

    def wait_texts(self, selector: str, expected: list[str], timeout: float = 15.0) -> None:
        """The elements at ``selector`` come to say ``expected``."""
        try:
            self.wait("([s, want]) => JSON.stringify([...document.querySelectorAll(s)].map((e) => e.textContent)) === JSON.stringify(want)",
                      [selector, expected], timeout)
        except AssertionError:
            raise AssertionError(f"{selector} in Firefox says {self.texts(selector)}, not {expected}") from None


class SharedFirefox:
    """One Firefox for the tests of a module (on ``host`` when given): :meth:`open` gives a test
    a new tab, :meth:`leave` (in the test's ``finally``) takes it out of the call. A Firefox that
    cannot do that is closed, and the next test starts another."""

    def __init__(self, host=None):
        self.host = host
        self.page: FirefoxPage | None = None

    def open(self, url: str, size: tuple[int, int] = (1000, 700)) -> FirefoxPage:
        """The Firefox, started if none runs, with a new tab of ``size`` at ``url``."""
        if self.page is None or self.page.proc.poll() is not None:
            self.page = FirefoxPage(url, size, self.host)
        else:
            self.page.fresh(url, size)
        return self.page

    def leave(self) -> None:
        """The test's tab is left for a blank one (out of its call before the next test)."""
        if self.page is not None:
            try:
                self.page.fresh("about:blank")
            except AssertionError:
                self.close()

    def close(self) -> None:
        if self.page is not None:
            self.page.close()
            self.page = None


@pytest.fixture(scope="module")
def firefox():
    """The module's Firefox on this machine (the tests without media)."""
    shared = SharedFirefox()
    yield shared
    shared.close()


# In Firefox: the state words on the people list's entry of NAME (null while NAME is not listed).
PERSON_STATES = """(name) => {
    const entry = [...document.querySelectorAll("#participants li")].find((li) => li.querySelector(".who")?.textContent === name);
    return entry ? [...entry.querySelectorAll(".state")].map((s) => s.textContent) : null;
}"""

# In Firefox: the badges on the tile of NAME (a remote person).
TILE_BADGES = """(name) => [...document.querySelectorAll("figure.tile:not([data-endpoint='me'])")]
    .filter((t) => t.querySelector("figcaption")?.textContent === name)
    .flatMap((t) => [...t.querySelectorAll(".badge")].map((b) => b.textContent))"""

# In Firefox: the box of the tile of NAME (a remote person) and of the own tile, whether NAME's is the
# large one, and the window's size.
BOXES = """(name) => {
    const box = (e) => { const r = e?.getBoundingClientRect(); return r && { x: r.x, y: r.y, width: r.width, height: r.height, bottom: r.bottom, right: r.right }; };
    const tiles = [...document.querySelectorAll("figure.tile")];
    const theirs = tiles.find((t) => t.dataset.endpoint !== "me" && t.querySelector("figcaption")?.textContent === name);
    return { theirs: box(theirs), mine: box(tiles.find((t) => t.dataset.endpoint === "me")),
             focused: theirs?.classList.contains("focused") ?? false,
             window: { width: innerWidth, height: innerHeight } };
}"""

# In Firefox: whether every visible control button is wholly inside the window.
CONTROLS_IN_VIEW = """() => [...document.querySelectorAll("#call .controls button:not([hidden])")].map((b) => {
    const r = b.getBoundingClientRect();
    return [b.id, r.width > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth + 0.5 && r.bottom <= innerHeight + 0.5];
})"""


def say(page, text: str) -> None:
    page.get_by_label("Message to everyone in the room").fill(text)
    page.get_by_label("Message to everyone in the room").press("Enter")


# In Firefox: the loudest reading of the microphone meter over 1.5 s.
LOUDEST = """() => new Promise((done) => {
    let top = 0;
    const timer = setInterval(() => { top = Math.max(top, document.getElementById("mic-level").value); }, 50);
    setTimeout(() => { clearInterval(timer); done(top); }, 1500);
})"""


def test_firefox_remembers_the_name_joins_muted_and_chats_with_chromium(browser, firefox, start_daemon):
    daemon = start_daemon(rooms=ROOMS)
    ann = participant(browser, daemon, "Ann")
    expect(ann.locator("#call")).to_be_visible(timeout=15000)
    # Ann writes before Firefox comes: one line of plain words, one of markup
    hostile = '<img src=x onerror="document.title=\'owned\'"><b>bold</b>'
    ann.get_by_role("button", name="Chat").click()
    say(ann, "hello from Ann")
    say(ann, hostile)
    expect(ann.locator("#chat-messages .chat-text")).to_have_count(2, timeout=10000)
    fox = firefox.open(f"{daemon.url}/room/lobby")
    try:
        # the name typed once is there on the next visit
        fox.wait("() => !document.getElementById('join-name').disabled && document.getElementById('preview').srcObject")
        fox.run("type", selector="#join-name", text="Fox")
        fox.run("goto", url=f"{daemon.url}/room/lobby")
        assert fox.wait("() => document.getElementById('join-name').value") == "Fox"
        # the pickers list Firefox's (fake) camera and microphone
        fox.wait("() => ['join-camera', 'join-mic'].every((id) => document.getElementById(id).options.length >= 1)")
        # the link to send to others: the room's address, without Fox's name, on Firefox's clipboard
        fox.run("click", selector="#copy-link")
        fox.wait_texts("#notice", [f"Link copied: {daemon.url}/room/lobby"])
        # joining muted with the camera off: the meter falls silent, the preview says so
        fox.wait("() => document.getElementById('preview').srcObject && !document.getElementById('join-muted').closest('.checks').hidden")
        assert fox.eval(LOUDEST) > 0.02  # the (fake, sounding) microphone moves the meter
        fox.run("click", selector="#join-muted")
        fox.run("click", selector="#join-camera-off")
        assert fox.eval(LOUDEST) == 0
        assert fox.eval("() => [document.getElementById('preview-off').hidden, document.getElementById('preview-off').textContent]") == [False, "Camera off"]
        fox.run("click", selector="#join-button")
        fox.wait("() => !document.getElementById('call').hidden")
        assert fox.eval("() => ['mic-button', 'camera-button'].map((id) => [document.querySelector(`#${id} .label`).textContent, document.getElementById(id).getAttribute('aria-pressed')])") \
            == [["Unmute", "true"], ["Camera on", "true"]]
        expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_text(["Muted", "Camera off"], timeout=15000)
        # the history is there for Firefox, joining late, and is not counted unread
        fox.wait("() => document.querySelectorAll('#chat-messages .chat-text').length === 2")
        assert fox.eval("() => [document.getElementById('chat-unread').hidden, document.getElementById('chat-button').getAttribute('aria-label')]") == [True, "Chat"]
        assert fox.texts("#chat-messages .chat-text") == ["hello from Ann", hostile]
        assert fox.texts("#chat-messages .chat-name") == ["Ann", "Ann"]
        # the markup is text: no element made from it, nothing of it ran
        assert fox.eval("() => [document.querySelectorAll('#chat-messages img, #chat-messages b').length, document.title.includes('owned')]") == [0, False]
        assert re.fullmatch(r"\d{1,2}:\d{2}.*", fox.eval("() => document.querySelector('#chat-messages time').textContent"))
        # with the panel closed, what arrives is counted on the Chat button
        say(ann, "are you there, Fox?")
        fox.wait_texts("#chat-unread", ["1"])
        assert fox.eval("() => [document.getElementById('chat-unread').hidden, document.getElementById('chat-button').getAttribute('aria-label')]") == [False, "Chat, 1 unread"]
        fox.run("click", selector="#chat-button")
        fox.wait("() => document.activeElement?.id === 'chat-input'")
        assert fox.eval("() => document.getElementById('chat-unread').hidden") is True
        assert fox.texts("#chat-messages .chat-text")[-1] == "are you there, Fox?"
        # Firefox writes back (a line break and all); Chromium shows its name and words
        fox.run("type", selector="#chat-input", text="yes, Fox here")
        fox.run("press", key="Enter")
        assert fox.wait("() => document.getElementById('chat-input').value === ''")
        expect(ann.locator("#chat-messages .chat-text").last).to_have_text("yes, Fox here", timeout=10000)
        expect(ann.locator("#chat-messages .chat-name").last).to_have_text("Fox")
        fox.wait_texts("#chat-messages .chat-name", ["Ann", "Ann", "Ann", "Fox (you)"])
        # writing too fast: Firefox says how long to wait, gives the text back, and Ann never gets it
        shown = 4
        for n in range(8):  # 5 in a row are allowed (the one above may count), then one every 2 s
            fox.run("type", selector="#chat-input", text=f"quick {n}")
            fox.run("press", key="Enter")
            refused = fox.wait("""(shown) => !document.getElementById("chat-error").hidden ? "refused"
                : document.querySelectorAll("#chat-messages .chat-text").length > shown && "sent" """, shown, 10)
            if refused == "refused":
                break
            shown += 1
        assert refused == "refused" and n >= 4, (refused, n)
        error = fox.texts("#chat-error")  # 1 s when part of the next one has come back already
        assert re.fullmatch(r"Not sent: you are sending messages too fast; wait [12] s\.", error[0]), error
        assert fox.eval("() => document.getElementById('chat-input').value") == f"quick {n}"
        expect(ann.locator("#chat-messages .chat-text")).to_have_count(shown, timeout=10000)
        assert ann.locator("#chat-messages .chat-text").last.text_content() == f"quick {n - 1}"
    finally:
        firefox.leave()
        ann.context.close()


def test_firefox_lists_who_is_muted_shows_the_speaker_large_and_fits_a_phone(browser, firefox, start_daemon):
    daemon = start_daemon(rooms=ROOMS)
    ann = participant(browser, daemon, "Ann")
    expect(ann.locator("#call")).to_be_visible(timeout=15000)
    fox = firefox.open(f"{daemon.url}/room/lobby?name=Fox&autojoin=1")
    try:
        fox.wait("() => !document.getElementById('call').hidden")
        assert fox.wait(PERSON_STATES, "Ann") == []
        # Chromium mutes and turns its camera off: Firefox's people list and Ann's tile say so
        ann.keyboard.press("m")
        ann.keyboard.press("v")
        fox.wait_equal(PERSON_STATES, "Ann", ["muted", "camera off"])
        fox.wait_equal(TILE_BADGES, "Ann", ["Muted", "Camera off"])
        ann.keyboard.press("m")
        fox.wait_equal(PERSON_STATES, "Ann", ["camera off"])
        # G: speaker view puts the other person large (nobody has spoken yet); G again, the grid
        fox.run("press", key="g")
        assert fox.eval("() => document.getElementById('layout-button').getAttribute('aria-pressed')") == "true"
        boxes = fox.wait(f"(name) => {{ const b = ({BOXES})(name); return b.focused && b; }}", "Ann")
        assert boxes["theirs"]["width"] > 2 * boxes["mine"]["width"], boxes
        fox.run("press", key="g")
        boxes = fox.wait(f"(name) => {{ const b = ({BOXES})(name); return !b.focused && b; }}", "Ann")
        assert abs(boxes["theirs"]["width"] - boxes["mine"]["width"]) <= 1, boxes
        # a phone-sized window: every control and both tiles on screen
        fox.run("viewport", width=390, height=844)
        boxes = fox.wait(f"(name) => {{ const b = ({BOXES})(name); return b.window.width === 390 && b; }}", "Ann")
        for box in (boxes["theirs"], boxes["mine"]):
            assert box["width"] > 100 and box["x"] >= 0 and box["right"] <= 390.5 and box["y"] >= 0 and box["bottom"] <= 844.5, boxes
        controls = fox.eval(CONTROLS_IN_VIEW)
        assert controls and all(inside for _, inside in controls), controls
        # there the chat covers the call, Send in reach, and closes again; typing in it is typing, not shortcuts
        fox.run("press", key="c")
        fox.wait("() => document.activeElement?.id === 'chat-input'")
        panel = fox.eval("""() => { const r = document.getElementById("chat-panel").getBoundingClientRect();
            const send = document.getElementById("chat-send").getBoundingClientRect();
            return [Math.round(r.width), Math.round(r.height), send.bottom <= innerHeight && send.right <= innerWidth]; }""")
        assert panel == [390, 844, True], panel
        fox.run("type", selector="#chat-input", text="mvgL")
        assert fox.eval("() => [document.getElementById('chat-input').value, document.getElementById('mic-button').getAttribute('aria-pressed'), document.getElementById('layout-button').getAttribute('aria-pressed')]") \
            == ["mvgL", "false", "false"]
        fox.run("press", key="Enter")
        expect(ann.locator("#chat-messages .chat-text")).to_have_text(["mvgL"], timeout=10000)
        fox.run("click", selector="#chat-close")
        fox.wait("() => document.getElementById('chat-panel').hidden")
        assert all(inside for _, inside in fox.eval(CONTROLS_IN_VIEW))
        # Shift+L asks first, Enter confirms and leaves: Chromium sees Firefox go
        fox.run("press", key="Shift+L")
        fox.wait("() => document.getElementById('leave-dialog').open")
        fox.run("press", key="Enter")
        fox.wait("() => !document.getElementById('left').hidden")
        expect(ann.locator(tile_of(ann, "Fox"))).to_have_count(0, timeout=10000)
        expect(ann.locator("#participants .who")).to_have_text(["Ann (you)"])
    finally:
        firefox.leave()
        ann.context.close()


# In Firefox: frames shown so far by the video of the figure matching SELECTOR whose caption is NAME
# (Firefox counts a peer connection's frames in mozPaintedFrames; totalVideoFrames stays 0 there).
FRAMES = """([selector, name]) => {
    const figure = [...document.querySelectorAll(selector)].find((f) => f.querySelector("figcaption")?.textContent === name);
    const video = figure?.querySelector("video");
    return video ? (video.mozPaintedFrames ?? video.getVideoPlaybackQuality().totalVideoFrames) : 0;
}"""


def wait_for_moving_in_firefox(fox: FirefoxPage, selector: str, name: str, timeout: float = 20.0) -> None:
    """The video of the figure ``selector`` captioned ``name`` advances by 10 frames in Firefox."""
    key = next(fox.ids)  # a count of its own: frames seen by an earlier wait are not this one's start
    fox.wait(f"""(arg) => {{
        const count = ({FRAMES})(arg);
        window.firstFrames ??= {{}};
        const key = arg[2];
        if (count > 0 && (window.firstFrames[key] === undefined || count < window.firstFrames[key])) window.firstFrames[key] = count;
        return window.firstFrames[key] !== undefined && count >= window.firstFrames[key] + 10;
    }}""", [selector, name, key], timeout)


TEST_HOST_ROOMS = ("quality", "capture", "speaker", "phone")  # one for each test on the test hosts


@pytest.fixture(scope="module")
def test_hosts(playwright, tmp_path_factory):
    """The set-up of test_web_firefox.py's call test, for the module's tests with media: each
    browser on a test host of its own, the daemon on this machine's end of Firefox's veth pair,
    media on those addresses alone; a room for each test. Yields (the daemon's https address,
    Chromium there, with a fake screen to share, the module's Firefox there)."""
    tmp_path = tmp_path_factory.mktemp("test-hosts")
    with net_host() as fox_host, net_host() as ann_host:
        server = fox_host.gateway
        ann_host.route_to(server)
        generate(tmp_path / "tls.crt", tmp_path / "tls.key", cn=server, days=1)
        port = free_port()
        rooms = "".join(f"[rooms.{room}]\nmax_peers = 8\n" for room in TEST_HOST_ROOMS)
        config = tmp_path / "videoroomd.toml"
        config.write_text(f"""[server]
listen = "{server}:{port}"
hostnames = ["{server}"]
tls_cert = "{tmp_path}/tls.crt"
tls_key = "{tmp_path}/tls.key"
[ice]
addresses = ["{server}"]
[media]
workers = 0
{rooms}""")
        daemon = DaemonProcess(config, port)
        firefox = SharedFirefox(fox_host)
        try:
            url = f"https://{server}:{port}"
            wait_https(url, tmp_path / "tls.crt")
            chromium = launch(playwright, executable=str(ann_host.wrapper(chromium_path(), tmp_path)), extra_flags=SCREEN_FLAGS)
            try:
                yield url, chromium, firefox
            finally:
                chromium.close()
        finally:
            firefox.close()
            daemon.stop()  # before its address goes with the test host


@contextlib.contextmanager
def chromium_on_test_hosts(test_hosts, room: str):
    """Ann in Chromium in ``room`` on the test hosts: yields (the room's address, Ann's page, a
    function that brings one more person of that name in Chromium and returns the page); their
    pages are closed after the block."""
    url, chromium, _ = test_hosts
    contexts = []

    def person(name: str):
        context = chromium.new_context(ignore_https_errors=True, viewport={"width": 1000, "height": 700})
        contexts.append(context)
        context.add_init_script(KEEP_PEER_CONNECTIONS)
        page = context.new_page()
        page.goto(f"{url}/room/{room}?name={name}&autojoin=1")
        expect(page.locator("#call")).to_be_visible(timeout=15000)
        return page

    try:
        yield f"{url}/room/{room}", person("Ann"), person
    finally:
        for context in contexts:
            context.close()


def test_firefox_shows_the_connection_quality_and_a_screen_shared_from_chromium(test_hosts):
    firefox = test_hosts[2]
    with chromium_on_test_hosts(test_hosts, "quality") as (url, ann, _):
        fox = firefox.open(f"{url}?name=Fox&autojoin=1")
        try:
            wait_for_moving_video(ann, "Fox", timeout=30)
            wait_for_moving_in_firefox(fox, REMOTE, "Ann", timeout=30)
            # Ann's tile in Firefox says how her connection is, while her media flows
            quality = fox.wait("""() => {
                const tile = [...document.querySelectorAll("figure.tile:not([data-endpoint='me'])")]
                    .find((t) => t.querySelector("figcaption")?.textContent === "Ann");
                const mark = tile?.querySelector(".quality");
                return mark && !mark.hidden && mark.dataset.quality && [mark.dataset.quality, mark.getAttribute("aria-label")];
            }""", timeout=20)
            # nothing is lost between the test hosts; a machine busy with other tests may lower the frame rate to "fair"
            assert quality in (["good", "Connection: good"], ["fair", "Connection: fair"]), quality
            # and Firefox's own tile, from what the daemon reports of the media Firefox sends
            own = fox.wait("""() => {
                const mark = document.querySelector("figure.tile[data-endpoint='me'] .quality");
                return mark && !mark.hidden && mark.dataset.quality;
            }""", timeout=20)
            assert own in ("good", "fair"), own
            # Chromium grades what it gets from Firefox the same way
            expect(ann.locator(f"{tile_of(ann, 'Fox')} .quality")).to_have_attribute("data-quality", re.compile(r"^(good|fair)$"), timeout=15000)
            # Chromium shares its (fake) screen: Firefox shows it on its stage, larger than any camera
            ann.get_by_role("button", name="Share screen").click()
            wait_for_moving_in_firefox(fox, "#stage figure", "Ann's screen", timeout=30)
            stage = fox.eval("""() => {
                const video = document.querySelector("#stage video");
                const tile = [...document.querySelectorAll("figure.tile:not([data-endpoint='me'])")]
                    .find((t) => t.querySelector("figcaption")?.textContent === "Ann");
                return { stage: document.getElementById("stage").getBoundingClientRect().width,
                         tile: tile.getBoundingClientRect().width, size: [video.videoWidth, video.videoHeight],
                         figures: document.querySelectorAll("#stage figure").length };
            }""")
            assert stage["figures"] == 1 and stage["stage"] > 2 * stage["tile"], stage
            assert stage["size"][0] / stage["size"][1] > 1.6, stage  # the screen (16:9), not her camera (4:3)
            fox.wait_equal(PERSON_STATES, "Ann", ["sharing"])
            wait_for_moving_in_firefox(fox, REMOTE, "Ann")  # her camera goes on beside it
            # Firefox's own Share screen: headless, it has no screen to give (see the module's
            # docstring); the page says so, and the call goes on as it was
            fox.run("click", selector="#screen-button")
            fox.wait_texts("#notice", ["The screen is not shared: there was no screen or window to share."])
            assert fox.eval("() => document.getElementById('screen-button').getAttribute('aria-pressed')") == "false"
            expect(ann.locator("#stage figcaption")).to_have_text(["Your screen"])
            expect(ann.locator("#participants li:has(.who:text-is('Fox')) .state")).to_have_count(0)
            # Ann stops: Firefox's stage goes, her camera stays
            ann.get_by_role("button", name="Stop sharing").click()
            fox.wait("() => document.getElementById('stage').hidden", timeout=15)
            wait_for_moving_in_firefox(fox, REMOTE, "Ann")
            wait_for_moving_video(ann, "Fox")
            # Ann turns her camera off: Firefox says so, and a camera that sends nothing is not taken
            # for a poor connection (three rounds of grading, every 2 s)
            ann.keyboard.press("v")
            fox.wait_equal(PERSON_STATES, "Ann", ["camera off"])
            fox.wait_equal(TILE_BADGES, "Ann", ["Camera off"])
            grades = fox.eval("""() => new Promise((done) => {
                const seen = new Set();
                const tile = [...document.querySelectorAll("figure.tile:not([data-endpoint='me'])")]
                    .find((t) => t.querySelector("figcaption")?.textContent === "Ann");
                const timer = setInterval(() => seen.add(tile.querySelector(".quality").dataset.quality), 200);
                setTimeout(() => { clearInterval(timer); done([...seen]); }, 6500);
            })""")
            assert set(grades) <= {"good", "fair"}, grades
            # Firefox turns its camera off and on again (V): Chromium sees it off, then moving again
            fox.run("press", key="v")
            expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_text(["Camera off"], timeout=10000)
            fox.run("press", key="v")
            expect(ann.locator(f"{tile_of(ann, 'Fox')} .badge")).to_have_count(0, timeout=10000)
            wait_for_moving_video(ann, "Fox")
        finally:
            firefox.leave()


# Firefox's Share screen with a capture Firefox can make here: one of its own tabs (see the module's
# docstring). The page's own sharing path runs on it: a second video track, a new negotiation. The tab
# is played through a media element and captured from there, so that the test can end the track for
# real (window.endCapture), as Firefox's own "stop sharing" does: an "ended" made by a script reaches
# a track's `onended` in Firefox but not the listeners added with addEventListener, as the page's is.
TAB_AS_SCREEN = """() => {
    const devices = navigator.mediaDevices;
    devices.getDisplayMedia = async () => {
        const tab = await devices.getUserMedia({ video: { mediaSource: "browser" } });
        const player = document.createElement("video");
        player.muted = true;
        player.srcObject = tab;
        await player.play();
        window.endCapture = () => { for (const t of tab.getTracks()) t.stop(); player.srcObject = null; };
        return player.mozCaptureStream();
    };
}"""


def test_firefox_shares_a_capture_and_chromium_gets_it_on_its_stage(test_hosts):
    firefox = test_hosts[2]
    with chromium_on_test_hosts(test_hosts, "capture") as (url, ann, _):
        fox = firefox.open("about:blank")  # a tab of its own: the init script goes with it
        try:
            fox.run("init", js=TAB_AS_SCREEN)
            fox.run("goto", url=f"{url}?name=Fox&autojoin=1")
            wait_for_moving_video(ann, "Fox", timeout=30)
            fox.run("click", selector="#screen-button")
            assert fox.wait("() => document.getElementById('screen-button').getAttribute('aria-pressed') === 'true' && document.querySelector('#screen-button .label').textContent") == "Stop sharing"
            fox.wait_texts("#stage figcaption", ["Your screen"])
            # Chromium gets it on the stage, larger than any camera, and Firefox's camera goes on beside it
            wait_for_moving_screen(ann, "Fox", timeout=30)
            stage = ann.locator("#stage").bounding_box()
            assert stage["width"] > 2 * ann.locator(tile_of(ann, "Fox")).bounding_box()["width"]
            expect(ann.locator("#participants li:has(.who:text-is('Fox')) .state")).to_have_text(["sharing"], timeout=10000)
            wait_for_moving_video(ann, "Fox")
            # Firefox stops: the stage goes for Chromium, the camera stays
            fox.run("click", selector="#screen-button")
            expect(ann.locator("#stage")).to_be_hidden(timeout=15000)
            expect(ann.locator("#participants li:has(.who:text-is('Fox')) .state")).to_have_count(0, timeout=10000)
            wait_for_moving_video(ann, "Fox")
            # sharing again (a new track, a new negotiation), then ending it from the browser's own
            # "stop sharing" (the capture track ends)
            fox.run("click", selector="#screen-button")
            wait_for_moving_screen(ann, "Fox", timeout=30)
            fox.eval("() => window.endCapture()")
            assert fox.wait("() => document.getElementById('screen-button').getAttribute('aria-pressed') === 'false' && document.querySelector('#screen-button .label').textContent") == "Share screen"
            expect(ann.locator("#stage")).to_be_hidden(timeout=15000)
            wait_for_moving_video(ann, "Fox")
        finally:
            firefox.leave()


def test_speaker_view_in_firefox_follows_who_speaks_and_chromium_hears_firefox_speak(test_hosts):
    firefox = test_hosts[2]
    with chromium_on_test_hosts(test_hosts, "speaker") as (url, ann, person):
        bob = person("Bob")
        fox = firefox.open(f"{url}?name=Fox&autojoin=1")
        try:
            wait_for_moving_video(ann, "Fox", timeout=30)
            # Ann is quiet (muted); Bob's (fake, beeping) microphone makes him the speaker in
            # Firefox's speaker view, though Ann, there first, would have the spotlight before anyone spoke
            ann.keyboard.press("m")
            fox.wait_equal(PERSON_STATES, "Ann", ["muted"])
            fox.run("press", key="g")
            boxes = fox.wait(f"(name) => {{ const b = ({BOXES})(name); return b.focused && b; }}", "Bob", timeout=20)
            assert boxes["theirs"]["width"] > 2 * boxes["mine"]["width"], boxes
            assert fox.eval(f"() => ({BOXES})('Ann').focused") is False
            fox.wait("(s) => [...document.querySelectorAll(s)].some((c) => c.textContent === 'Bob')", f"{REMOTE}.speaking figcaption")
            # Bob mutes: Firefox's (fake, sounding) microphone makes Fox the speaker in Chromium's
            # speaker view, though Bob, there before Fox, would have it otherwise
            bob.keyboard.press("m")
            expect(ann.locator(f"{tile_of(ann, 'Fox')}.speaking")).to_have_count(1, timeout=20000)
            ann.get_by_role("button", name="Speaker view").click()
            expect(ann.locator(f"{tile_of(ann, 'Fox')}.focused")).to_have_count(1, timeout=20000)
            expect(ann.locator(f"{tile_of(ann, 'Bob')}.focused")).to_have_count(0)
        finally:
            firefox.leave()


def test_firefox_on_a_phone_joining_while_chromium_shares_gets_the_screen_above_the_cameras(test_hosts):
    firefox = test_hosts[2]
    with chromium_on_test_hosts(test_hosts, "phone") as (url, ann, _):
        ann.get_by_role("button", name="Share screen").click()
        expect(ann.locator("#stage figcaption")).to_have_text(["Your screen"], timeout=10000)
        fox = firefox.open(f"{url}?name=Fox&autojoin=1", size=(390, 844))
        try:
            # both of Ann's videos come in Firefox's first negotiation: the screen on the stage, the camera on her tile
            wait_for_moving_in_firefox(fox, "#stage figure", "Ann's screen", timeout=30)
            wait_for_moving_in_firefox(fox, REMOTE, "Ann")
            layout = fox.eval("""() => {
                const box = (e) => e.getBoundingClientRect();
                const stage = box(document.getElementById("stage")), grid = box(document.getElementById("grid"));
                const leave = box(document.getElementById("leave-button"));
                return { stageAbove: stage.top < grid.top, stageWidth: Math.round(stage.width),
                         leaveInView: leave.bottom <= innerHeight && leave.right <= innerWidth && leave.top >= 0 };
            }""")
            assert layout["stageAbove"] and layout["leaveInView"] and layout["stageWidth"] > 300, layout
            fox.wait_equal(PERSON_STATES, "Ann", ["sharing"])
        finally:
            firefox.leave()
