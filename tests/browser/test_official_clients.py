"""Three headless Chromium participants that use only the official npm clients
(`phoenix` 1.8 and `@jellyfish-dev/membrane-webrtc-js` 0.7.1) hold a call through a
running daemon, relayed by a real TURN server, as that client insists on; in a token
room they join with the access token in the socket's connect params."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from testsupport import npm_packages
from testsupport.metrics import read
from testsupport.turn import PASSWORD, USER, turn_server
from testsupport.wait import wait_for
from videoroomd.auth.tokens import mint

pytestmark = pytest.mark.browser
HERE = Path(__file__).resolve().parent.parent  # tests/, whose js/ holds the scripts


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """The official clients and our harness, bundled by esbuild next to a page that loads them."""
    modules = npm_packages.install()
    out = tmp_path_factory.mktemp("bundle") / "official.js"
    subprocess.run(
        [str(modules / ".bin" / "esbuild"), str(HERE / "js" / "official_client.js"), "--bundle", "--format=iife",
         f"--outfile={out}", "--log-level=warning"],
        check=True, timeout=120, cwd=modules.parent, env={**os.environ, "NODE_PATH": str(modules)},
    )
    (out.parent / "official.html").write_text(
        "<!doctype html><title>official clients</title><script src=\"official.js\"></script><body></body>")
    return out.parent


@pytest.fixture(scope="module")
def harness(bundle):
    """An app of another origin on 127.0.0.1 that embeds rooms with the official clients."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(bundle))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def open_participant(browser, harness: str, daemon, name: str, simulcast: bool = False, token: str | None = None,
                     rejoin: bool = False):
    """A page of the harness joining room lobby as ``name``; ``token`` goes in the socket's connect params;
    ``rejoin``: it joins again when the server closes its channel with ``retry``."""
    page = browser.new_context().new_page()
    page.goto(f"{harness}/official.html")
    options = {"simulcast": simulcast, "rejoin": rejoin, **({"token": token} if token else {})}
    page.evaluate("([url, room, name, options]) => { window.startParticipant(url, room, name, options)"
                  ".catch((e) => window.participant.errors.push(String(e))); }",
                  [f"ws://127.0.0.1:{daemon.port}/socket", "lobby", name, options])
    return page


def wait_until(predicate, timeout: float, what: str, page=None, details=None):
    """Poll ``predicate`` until it holds; else fail, saying what the page (and ``details()``) show then."""
    def shown() -> str:
        state = page.evaluate("() => JSON.stringify({...window.participant, webrtc: undefined})") if page else ""
        return "; ".join(part for part in (str(details()) if details else "", state) if part)

    wait_for(predicate, timeout, what, details=shown)


def decoding(page, endpoint_id: str, timeout: float = 30) -> None:
    first = {}

    def advancing():
        frames = page.evaluate("() => window.framesByEndpoint()").get(endpoint_id, 0)
        if frames and "n" not in first:
            first["n"] = frames
        return "n" in first and frames >= first["n"] + 10

    wait_until(advancing, timeout, f"video of {endpoint_id} to advance", page)


def everyone_publishes_and_decodes(pages: dict) -> dict[str, str]:
    """Wait until each official client of ``pages`` (name -> page) published and decodes every other's
    video; returns each one's endpoint id by name."""
    for name, page in pages.items():
        wait_until(lambda: page.evaluate("() => !!window.participant.published"), 30, f"{name} to publish", page)
    ids = {n: p.evaluate("() => window.participant.id") for n, p in pages.items()}
    for name, page in pages.items():
        for other, other_id in ids.items():
            if other != name:
                decoding(page, other_id)
    return ids


def test_three_official_clients_then_one_leaves_and_a_fourth_joins_late(start_daemon, tmp_path, harness, browser):
    with turn_server(tmp_path) as turn_port:
        rooms = (f'[ice]\naddresses = ["127.0.0.1"]\n[defaults]\nturn_servers = [{{ urls = "turn:127.0.0.1:{turn_port}?transport=udp", '
                 f'username = "{USER}", credential = "{PASSWORD}" }}]\n[rooms.lobby]\nmax_peers = 8\n')
        daemon = start_daemon(rooms=rooms, server=f'allowed_origins = ["{harness}"]')
        pages = {n: open_participant(browser, harness, daemon, n) for n in ("Ann", "Bob", "Cleo")}
        ids = everyone_publishes_and_decodes(pages)
        # chat goes over the same channel; the media events are not disturbed by it
        pages["Ann"].evaluate("() => window.participant.say('hello from the official client')")
        for name, page in pages.items():
            wait_until(lambda: page.evaluate("() => window.participant.chat").count(
                "Ann: hello from the official client") == 1, 10, f"{name} to get Ann's message", page)
        # Cleo leaves: the others are told and stop showing her
        pages["Cleo"].evaluate("() => window.participant.leave()")
        for name in ("Ann", "Bob"):
            wait_until(lambda: ids["Cleo"] in pages[name].evaluate("() => window.participant.removed"), 15,
                       f"{name} to hear that Cleo left", pages[name])
            assert ids["Cleo"] not in pages[name].evaluate("() => window.framesByEndpoint()")
        # a fourth joins late and sees everyone quickly (its first push is the chat
        # history, which its WebRTCEndpoint never sees)
        dan = open_participant(browser, harness, daemon, "Dan")
        wait_until(lambda: dan.evaluate("() => !!window.participant.published"), 30, "Dan to publish", dan)
        for other in ("Ann", "Bob"):
            decoding(dan, ids[other], timeout=20)
        dan_id = dan.evaluate("() => window.participant.id")
        for name in ("Ann", "Bob"):
            decoding(pages[name], dan_id, timeout=20)
        for page in list(pages.values()) + [dan]:
            assert page.evaluate("() => window.participant.errors") == []
        # every renegotiation restarted ICE (the client always does): the media moved
        # to the newest generation each time, so a changed path would be followed too.
        # Ann's and Bob's restarts all came once their media flowed: both ends' newest
        # credentials carry it. Dan's first restart may come while his first checks still
        # run (the server then declines it, keeping its credentials in the answer, and
        # takes the next): his media is on the server's newest generation.
        for name, page, both in [("Ann", pages["Ann"], True), ("Bob", pages["Bob"], True), ("Dan", dan, False)]:
            def on_newest(page=page, both=both):
                generations = page.evaluate("() => window.iceGenerations()")
                return (generations and generations["remoteSelected"] is not None
                        and generations["remoteSelected"] == generations["remoteCurrent"]
                        and (not both or generations["selected"] == generations["current"]))
            wait_until(on_newest, 15, f"{name}'s media to use the newest ICE generation", page,
                       details=lambda page=page: page.evaluate("() => window.iceGenerations()"))


def test_official_clients_call_through_the_builtin_turn_server_alone(start_daemon, harness, browser):
    """No coturn: the relay-only client gets the daemon's own TURN server, with credentials made for
    its join, and the media of the call runs in worker processes. The room admits only access tokens:
    each client carries its own in the socket's connect params; an expired one is refused, and the
    client's join error has the refusal's code."""
    from testsupport.daemon import free_port

    turn_port = free_port()
    secret = "o" * 40
    rooms = (f'[ice]\naddresses = ["127.0.0.1"]\n[auth]\nkeys = {{ app = "{secret}" }}\n'
             '[rooms.lobby]\nmax_peers = 8\naccess = "token"\n')
    turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    daemon = start_daemon(rooms=turn + rooms, server=f'allowed_origins = ["{harness}"]', media="workers = 2")

    def token(name: str, now: float) -> str:
        return mint("app", secret, room="lobby", identity=name.lower(), name=name, now=now, ttl=600)

    tokens = {n: token(n, time.time()) for n in ("Ann", "Bob", "Cleo")}
    pages = {n: open_participant(browser, harness, daemon, n, token=tokens[n]) for n in tokens}
    late = open_participant(browser, harness, daemon, "Late", token=token("Late", time.time() - 3600))
    everyone_publishes_and_decodes(pages)
    for page in pages.values():
        assert page.evaluate("() => window.participant.errors") == []
    wait_until(lambda: late.evaluate("() => window.participant.errors.length") > 0, 15,
               "the expired token's join to be refused", late)
    refused = late.evaluate("() => window.participant.errors")
    assert len(refused) == 1 and refused[0].startswith("Error: token_expired: the access token expired"), refused
    assert not late.evaluate("() => window.participant.connected")
    log = daemon.log()
    assert all(text.split(".")[2] not in log for text in tokens.values())  # no signature in the log
    metrics = read(daemon)
    allocations = next(line for line in metrics.splitlines() if line.startswith("videoroomd_turn_allocations "))
    assert float(allocations.split()[1]) >= 3  # every participant's media is relayed by the daemon itself


def test_official_client_simulcast_publish_and_set_target_track_encoding(start_daemon, harness, browser):
    """Ann publishes her 1280x720 camera with simulcastConfig {enabled: true, activeEncodings: [l, m, h]};
    Bob, through the package's own setTargetTrackEncoding, gets her small layer and then her large one,
    told each time by encodingSwitched (the package's encodingChanged), and decodes about that size."""
    from testsupport.daemon import free_port

    turn_port = free_port()
    rooms = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 8\n'
    turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    daemon = start_daemon(rooms=turn + rooms, server=f'allowed_origins = ["{harness}"]', media="workers = 2")
    # Both pages share the browser's one fake camera, which runs at the size of whoever opened it
    # first: Ann's 1280x720 must come before Bob's 320x240, or her layers would be a quarter of that
    # and the browser would send only her smallest one.
    ann = open_participant(browser, harness, daemon, "Ann", simulcast=True)
    wait_until(lambda: ann.evaluate("() => !!window.participant.published"), 30, "Ann to publish", ann)
    bob = open_participant(browser, harness, daemon, "Bob")
    wait_until(lambda: bob.evaluate("() => !!window.participant.published"), 30, "Bob to publish", bob)
    ann_id, ann_video = ann.evaluate("() => [window.participant.id, window.participant.videoTrackId]")
    decoding(bob, ann_id)
    ready = bob.evaluate("() => window.participant.ready")
    assert ready[ann_video]["simulcastConfig"] == {"enabled": True, "activeEncodings": ["l", "m", "h"], "disabledEncodings": []}

    def now_receiving(layer):
        encodings = bob.evaluate("() => window.participant.encodings")
        return bool(encodings) and encodings[-1] == {"trackId": ann_video, "encoding": layer, "reason": encodings[-1]["reason"]}

    def width():
        return bob.evaluate("() => window.widthByEndpoint()").get(ann_id, 0)

    bob.evaluate("(track) => window.participant.setTarget(track, 'l')", ann_video)
    wait_until(lambda: now_receiving("l"), 30, "Bob to be told he receives Ann's layer l", bob)
    wait_until(lambda: 0 < width() <= 400, 30, "Bob to decode Ann's small layer (about 320 wide)", bob,
               details=lambda: f"width {width()}")
    decoding(bob, ann_id)
    before = len(bob.evaluate("() => window.participant.encodings"))
    bob.evaluate("(track) => window.participant.setTarget(track, 'h')", ann_video)
    wait_until(lambda: now_receiving("h") and len(bob.evaluate("() => window.participant.encodings")) > before, 45,
               "Bob to be told he receives Ann's layer h", bob)
    wait_until(lambda: width() >= 1200, 30, "Bob to decode Ann's large layer (about 1280 wide)", bob,
               details=lambda: f"width {width()}")
    decoding(bob, ann_id)
    for name, page in (("Ann", ann), ("Bob", bob)):
        assert page.evaluate("() => window.participant.errors") == [], name


def test_official_client_simulcast_in_a_room_without_simulcast_arrives_as_one_stream(start_daemon, harness, browser):
    """A room with simulcast = false answers the layered offer without its layers: the 0.7.1 client then
    sends only its first encoding (l, a quarter of 1280x720), which the others decode as a plain track."""
    from testsupport.daemon import free_port

    turn_port = free_port()
    rooms = '[ice]\naddresses = ["127.0.0.1"]\n[rooms.lobby]\nmax_peers = 8\nsimulcast = false\n'
    turn = f'[turn]\nenabled = true\nlisten = "127.0.0.1:{turn_port}"\n'
    daemon = start_daemon(rooms=turn + rooms, server=f'allowed_origins = ["{harness}"]')
    ann = open_participant(browser, harness, daemon, "Ann", simulcast=True)
    bob = open_participant(browser, harness, daemon, "Bob")
    for name, page in (("Ann", ann), ("Bob", bob)):
        wait_until(lambda: page.evaluate("() => !!window.participant.published"), 30, f"{name} to publish", page,
                   details=lambda: daemon.log()[-12000:])
    ann_id, ann_video = ann.evaluate("() => [window.participant.id, window.participant.videoTrackId]")
    decoding(bob, ann_id)
    ready = bob.evaluate("() => window.participant.ready")
    assert ready[ann_video]["simulcastConfig"]["enabled"] is False
    width = bob.evaluate("() => window.widthByEndpoint()").get(ann_id, 0)
    assert 0 < width <= 400, width
    for name, page in (("Ann", ann), ("Bob", bob)):
        assert page.evaluate("() => window.participant.errors") == [], name
