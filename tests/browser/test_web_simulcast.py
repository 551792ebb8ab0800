"""Simulcast on the daemon's own page, in headless Chromium: the camera goes out as three layers, each
tile asks for the layer its size calls for (a pinned tile h, the small ones beside it l), and the stats
view shows a person, per tile, the layer received and how the video arrives."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from testsupport.daemon import running_daemon
from testsupport.web_page import ICE, KEEP_PEER_CONNECTIONS, participant, tile_of, wait_for_moving_video  # noqa: F401

pytestmark = pytest.mark.browser

ROOMS = (ICE + "[rooms.lobby]\nmax_peers = 8\n[rooms.plain]\nmax_peers = 8\nsimulcast = false\n"
         "[rooms.capped]\nmax_peers = 8\nmax_video_bitrate = \"100k\"\n")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """One daemon for the module, its layers through two media worker processes: each test has a
    room of its own (lobby, plain, capped)."""
    with running_daemon(tmp_path_factory.mktemp("simulcast"), ROOMS, media="workers = 2") as daemon:
        yield daemon


# Keeps every media event the page sends (window.sentMediaEvents), to read what it asked the server for.
KEEP_SENT_MEDIA_EVENTS = """
    window.sentMediaEvents = [];
    const nativeSend = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
        try {
            const frame = JSON.parse(data);
            if (frame[3] === "mediaEvent") window.sentMediaEvents.push(JSON.parse(frame[4].data));
        } catch (error) { /* not a Phoenix frame */ }
        return nativeSend.call(this, data);
    };
"""


def asked_layers(page) -> dict[str, str]:
    """Remote track id -> the layer the page last asked the server for (setTargetTrackVariant)."""
    asked = {}
    for event in page.evaluate("() => window.sentMediaEvents"):
        inner = event.get("data") or {}
        if event.get("type") == "custom" and inner.get("type") == "setTargetTrackVariant":
            asked[inner["data"]["trackId"]] = inner["data"]["variant"]
    return asked


def asked_of(page, name: str) -> str | None:
    """The layer the page last asked for of ``name``'s camera (track ids are "ENDPOINT:uuid")."""
    endpoint = page.locator(tile_of(page, name)).get_attribute("data-endpoint")
    asked = [layer for track, layer in asked_layers(page).items() if track.startswith(f"{endpoint}:")]
    return asked[-1] if asked else None


def stats_row(page, name: str):
    return page.locator("#stats-list li", has=page.locator(".stats-name", has_text=re.compile(f"^{name}$")))


def sent_layers(page) -> list[str]:
    """The RIDs our camera's sender sends, as its parameters say."""
    return page.evaluate("""() => window.peerConnections.flatMap((pc) => pc.getSenders())
        .filter((s) => s.track && s.track.kind === 'video').flatMap((s) => s.getParameters().encodings.map((e) => e.rid || ''))""")


def test_the_stats_view_lists_each_tiles_layer_and_a_pinned_tile_asks_h(browser, daemon):
    pages = []
    for name in ("Ann", "Bob", "Cleo"):
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.add_init_script(KEEP_PEER_CONNECTIONS)
        page.add_init_script(KEEP_SENT_MEDIA_EVENTS)
        page.goto(f"{daemon.url}/room/lobby?name={name}&autojoin=1")
        pages.append(page)
    ann = pages[0]
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(ann, "Cleo")
    assert sent_layers(ann) == ["l", "m", "h"]
    # three people: every tile is large, and asks for the best layer
    expect(ann.locator(f"{tile_of(ann, 'Bob')}[data-layer='h']")).to_have_count(1)
    ann.get_by_role("button", name="Stats").click()
    expect(ann.get_by_role("button", name="Stats")).to_have_attribute("aria-pressed", "true")
    expect(ann.locator("#stats-list li")).to_have_count(2)
    for name in ("Bob", "Cleo"):
        expect(stats_row(ann, name).locator(".stats-layer")).to_have_text(re.compile(r"^layer [lmh]$"), timeout=20000)
        expect(stats_row(ann, name).locator(".stats-video")).to_have_text(re.compile(r"^\d+×\d+ · \d+ fps$"), timeout=20000)
        expect(stats_row(ann, name).locator(".stats-loss")).to_have_text(re.compile(r"^loss \d+\.\d %$"), timeout=20000)
    # Bob pinned: his large tile asks the server for h, Cleo's small one beside it for l
    ann.get_by_role("button", name="Pin Bob").click()
    expect(ann.locator(f"{tile_of(ann, 'Bob')}[data-layer='h']")).to_have_count(1)
    expect(ann.locator(f"{tile_of(ann, 'Cleo')}[data-layer='l']")).to_have_count(1)
    assert (asked_of(ann, "Bob"), asked_of(ann, "Cleo")) == ("h", "l"), asked_layers(ann)
    # Cleo's small tile gets her small layer, and says so; Bob's large tile gets what the link
    # carries, h when it can (the media server's tests show h arriving; here the machine is shared)
    expect(stats_row(ann, "Cleo").locator(".stats-layer")).to_have_text("layer l", timeout=30000)
    expect(stats_row(ann, "Cleo").locator(".stats-video")).to_have_text(re.compile(r"^320×180 "), timeout=30000)
    expect(stats_row(ann, "Bob").locator(".stats-layer")).to_have_text(re.compile(r"^layer [lmh]$"))
    wait_for_moving_video(ann, "Bob")
    wait_for_moving_video(ann, "Cleo")  # the small tile still plays
    # unpinned, with three people every tile asks for h again
    ann.get_by_role("button", name="Pin Bob").click()
    expect(ann.locator(f"{tile_of(ann, 'Cleo')}[data-layer='h']")).to_have_count(1)
    for _ in range(50):
        if asked_of(ann, "Cleo") == "h":
            break
        ann.wait_for_timeout(100)
    assert asked_of(ann, "Cleo") == "h", asked_layers(ann)
    # closing the view hides it
    ann.get_by_role("button", name="Stats").click()
    expect(ann.locator("#stats-panel")).to_be_hidden()
    for page in pages:
        page.context.close()


def test_a_room_without_simulcast_gets_one_stream_and_the_stats_view_says_so(browser, daemon):
    pages = []
    for name in ("Ann", "Bob"):
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.add_init_script(KEEP_PEER_CONNECTIONS)
        page.goto(f"{daemon.url}/room/plain?name={name}&autojoin=1")
        pages.append(page)
    ann = pages[0]
    wait_for_moving_video(ann, "Bob")
    assert sent_layers(ann) == [""]
    ann.get_by_role("button", name="Stats").click()
    expect(stats_row(ann, "Bob").locator(".stats-layer")).to_have_text("one stream")
    expect(stats_row(ann, "Bob").locator(".stats-video")).to_have_text(re.compile(r"^640×360 "), timeout=20000)
    for page in pages:
        page.context.close()


def available_outgoing_bitrate(page) -> float | None:
    """What the browser's own estimate lets it send now (the selected pair's availableOutgoingBitrate)."""
    return page.evaluate("""async () => {
        for (const pc of window.peerConnections) {
            const stats = await pc.getStats();
            for (const s of stats.values()) if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate) return s.availableOutgoingBitrate;
        }
        return null;
    }""")


def test_a_room_with_max_video_bitrate_keeps_each_publisher_under_it(browser, daemon):
    """Chromium starts sending at 300 kbit/s; in a room capped at 100 kbit/s the server's REMB brings
    its estimate down to the cap, and the others still see it (on its lowest layer)."""
    pages = []
    for name in ("Ann", "Bob"):
        page = browser.new_context(viewport={"width": 1280, "height": 720}).new_page()
        page.add_init_script(KEEP_PEER_CONNECTIONS)
        page.goto(f"{daemon.url}/room/capped?name={name}&autojoin=1")
        pages.append(page)
    ann, bob = pages
    wait_for_moving_video(bob, "Ann")
    seen = []
    for _ in range(100):
        seen.append(available_outgoing_bitrate(ann))
        if seen[-1] is not None and seen[-1] <= 100_000 * 1.05:
            break
        ann.wait_for_timeout(200)
    else:
        raise AssertionError(f"Ann's browser never came down to the room's 100 kbit/s: {seen[-10:]}")
    bob.get_by_role("button", name="Stats").click()
    expect(stats_row(bob, "Ann").locator(".stats-layer")).to_have_text("layer l", timeout=20000)
    wait_for_moving_video(bob, "Ann")
    for page in pages:
        page.context.close()
