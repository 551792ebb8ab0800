"""What the browser tests of the daemon's own page share: its rooms, a daemon, a participant (the
browser is tests/browser/conftest.py's session-wide ``browser`` fixture)."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from testsupport.browser import frames
from testsupport.daemon import running_daemon

ICE = '[ice]\naddresses = ["127.0.0.1"]\n'
ROOMS = ICE + "[rooms.lobby]\nmax_peers = 8\n[rooms.solo]\nmax_peers = 1\n[rooms.board]\npassword = \"letmein\"\n"
REMOTE = "figure.tile:not([data-endpoint='me'])"
# The page's calls on two media worker processes, as a default install runs them on two cores.
MEDIA = "workers = 2"


@pytest.fixture
def daemon(start_daemon):
    return start_daemon(rooms=ROOMS, media=MEDIA)


def rooms_of(*names: str) -> str:
    """A ``[rooms.NAME]`` table (8 people) for each of ``names``: a room for each test of a module
    whose tests share one daemon, so that none sees another's people, chat or state."""
    return "".join(f"[rooms.{name}]\nmax_peers = 8\n" for name in names)


def module_daemon(rooms: str):
    """A module-scoped ``daemon`` fixture (assign it to ``daemon`` in the module): one daemon on
    ``rooms`` for all the module's tests, each in a room of its own; a daemon's start and stop
    with its media workers costs seconds, too many to pay for every test."""
    @pytest.fixture(scope="module", name="daemon")
    def shared_daemon(tmp_path_factory):
        with running_daemon(tmp_path_factory.mktemp("page"), rooms, media=MEDIA) as daemon:
            yield daemon
    return shared_daemon


def participant(browser, daemon, name: str, room: str = "lobby", extra: str = "", viewport=None):
    context = browser.new_context(viewport=viewport or {"width": 1000, "height": 700})
    page = context.new_page()
    page.goto(f"{daemon.url}/room/{room}?name={name}&autojoin=1{extra}")
    return page


def tile_of(page, name: str) -> str:
    return f"{REMOTE}:has(figcaption:text-is('{name}'))"


def wait_for_moving_video(page, name: str, timeout: float = 20.0) -> None:
    """The tile of ``name`` is there and its video advances."""
    selector = tile_of(page, name)
    expect(page.locator(selector)).to_be_visible(timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    first = None
    while time.monotonic() < deadline:
        count = frames(page, selector)
        if count > 0 and (first is None or count < first):
            first = count  # the first frames, or a new tile (a page that rejoined) starting over
        elif first is not None and count >= first + 10:
            return
        page.wait_for_timeout(200)
    raise AssertionError(f"{name}'s video did not advance on this page (frames: {first} -> {frames(page, selector)})")


# Keeps a handle on a page's peer connections (window.peerConnections), for a test to read
# their statistics or end its media path while the signalling socket stays up.
KEEP_PEER_CONNECTIONS = """
    const Native = window.RTCPeerConnection;
    window.peerConnections = [];
    window.RTCPeerConnection = function (...args) {
        const pc = new Native(...args);
        window.peerConnections.push(pc);
        return pc;
    };
    window.RTCPeerConnection.prototype = Native.prototype;
"""
