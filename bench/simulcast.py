"""Simulcast switch times in Chromium: ``python -m bench.simulcast [--limit 400000] [--rounds 2]``.

A headless Chromium publishes its 1280x720 fake camera in three layers (l, m,
h) to a media server driven with its messages (no daemon); one Chromium
subscriber asking for h receives through a UDP relay on 127.0.0.1 whose
rate the bench changes, another directly. Each round: the relay is
unlimited until the subscriber is on h, then limited to ``--limit`` bits/s
(the time until the server switches it down for bandwidth is recorded), then
unlimited again (the time until it is back on h). The server's layer events
give the times; Chromium's getStats what it decodes.

Also what the simulcast browser tests use: :class:`MediaDriver`, the page's
functions (:data:`PAGE`), :class:`Bottleneck`.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import re
import threading
import time

from testsupport.wait import wait_for
from videoroomd.media.workers.codec import Decoder, as_type, encode
from videoroomd.media.workers.commands import Answer, OpenRoom, Request, Slot
from videoroomd.media.workers.events import LayerSwitched, Reply
from videoroomd.media.workers.server import MediaServer


class MediaDriver:
    """A :class:`MediaServer` on an asyncio thread of its own, spoken to with framed messages as
    the control plane does; its events are kept in ``events``."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.events: list = []
        self.arrivals: list[tuple[float, object]] = []  # (monotonic time it came, event)
        self._replies: dict[int, queue.Queue] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.loop.run_forever, name="media", daemon=True)
        self._thread.start()
        self.server = self._on_loop(self._make_server)

    async def _make_server(self) -> MediaServer:
        return MediaServer(self._receive)

    def _on_loop(self, make, timeout: float = 20.0):
        return asyncio.run_coroutine_threadsafe(make(), self.loop).result(timeout)

    def _receive(self, message) -> None:
        (message,) = Decoder().feed(encode(message))  # what crosses the boundary
        if isinstance(message, Reply):
            waiting = self._replies.get(message.id)
            if waiting is not None:
                waiting.put(message)
        else:
            with self._lock:
                self.events.append(message)
                self.arrivals.append((time.monotonic(), message))

    def command(self, command, timeout: float = 20.0):
        """Send ``command`` (of :mod:`videoroomd.media.workers.commands`) and return its result; raises
        AssertionError with its error."""
        with self._lock:
            request_id = self._next_id
            self._next_id += 1
        waiting = self._replies[request_id] = queue.Queue()
        (request,) = Decoder().feed(encode(Request(request_id, command)))
        self.loop.call_soon_threadsafe(self.server.take, request)
        reply = waiting.get(timeout=timeout)
        del self._replies[request_id]
        if not reply.ok:
            raise AssertionError(f"{command.kind} failed: {reply.error}")
        return as_type(reply.result, type(command).result)

    def of_type(self, kind: type) -> list:
        with self._lock:
            return [e for e in self.events if isinstance(e, kind)]

    def close(self) -> None:
        self._on_loop(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def sending_mids(sdp: str) -> dict[str, str]:
    """mid -> kind of each m-section the offer sends on."""
    out = {}
    for section in sdp.split("\r\nm=")[1:]:
        mid = re.search(r"^a=mid:(\S+)", section, re.M)
        if mid and re.search(r"^a=(sendonly|sendrecv)", section, re.M):
            out[mid.group(1)] = section.split(" ", 1)[0]
    return out


# In the page: a connection that publishes the fake camera in three layers, or receives one video.
PAGE = """
window.gathered = pc => new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
});
window.publish = async (layers) => {
    const stream = await navigator.mediaDevices.getUserMedia({video: {width: 1280, height: 720}, audio: false});
    const pc = window.pc = new RTCPeerConnection();
    const encodings = layers ? [{rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000},
                                {rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 500000},
                                {rid: 'h', maxBitrate: 1500000}] : [{}];
    const transceiver = pc.addTransceiver(stream.getVideoTracks()[0], {direction: 'sendonly', sendEncodings: encodings});
    const vp8 = RTCRtpSender.getCapabilities('video').codecs.filter(c => /vp8|rtx/i.test(c.mimeType));
    transceiver.setCodecPreferences(vp8);
    // On a busy machine Chromium would otherwise scale its layers down for CPU: keep their sizes.
    try {
        const parameters = transceiver.sender.getParameters();
        parameters.degradationPreference = 'maintain-resolution';
        await transceiver.sender.setParameters(parameters);
    } catch (error) { /* older Chromium: sizes may then drop under load */ }
    await pc.setLocalDescription(await pc.createOffer());
    await window.gathered(pc);
    return pc.localDescription.sdp;
};
window.subscribe = async () => {
    // A microphone of its own only so that Chromium offers plain host candidates, not mDNS names.
    await navigator.mediaDevices.getUserMedia({audio: true});
    const pc = window.pc = new RTCPeerConnection();
    pc.addTransceiver('video', {direction: 'recvonly'});
    pc.ontrack = event => {
        const video = document.createElement('video');
        video.autoplay = true; video.muted = true; video.srcObject = new MediaStream([event.track]);
        document.body.appendChild(video);
    };
    await pc.setLocalDescription(await pc.createOffer());
    await window.gathered(pc);
    return pc.localDescription.sdp;
};
window.accept = async (sdp) => { await window.pc.setRemoteDescription({type: 'answer', sdp}); };
window.inbound = async () => {
    const stats = await window.pc.getStats();
    for (const s of stats.values())
        if (s.type === 'inbound-rtp' && s.kind === 'video')
            return {width: s.frameWidth || 0, height: s.frameHeight || 0, decoded: s.framesDecoded || 0};
    return {width: 0, height: 0, decoded: 0};
};
window.outbound = async () => {
    const stats = await window.pc.getStats();
    const out = {};
    for (const s of stats.values())
        if (s.type === 'outbound-rtp' && s.kind === 'video')
            out[s.rid || '-'] = {width: s.frameWidth || 0, sent: s.framesSent || 0, active: s.active,
                                 reason: s.qualityLimitationReason};
    return out;
};
window.setActive = async (rid, active) => {
    const sender = window.pc.getSenders()[0];
    const parameters = sender.getParameters();
    for (const e of parameters.encodings) if (e.rid === rid) e.active = active;
    await sender.setParameters(parameters);
};
"""


def page_with_media(browser):
    """A new page at a secure origin (getUserMedia needs one; served by the browser's own request
    interception, no server), with :data:`PAGE`'s functions."""
    page = browser.new_page()
    page.route("http://localhost/simulcast", lambda route: route.fulfill(body="<html><body></body></html>",
                                                                          content_type="text/html"))
    page.goto("http://localhost/simulcast")
    page.evaluate("() => {" + PAGE + "}")
    return page


class Bottleneck:
    """A UDP relay on 127.0.0.1 in front of a subscriber: what the server sends through it leaves
    at most at ``bps`` (bits/s; None: as it comes), queued up to ``queue_bytes`` and dropped
    beyond, as on a slow link; what the subscriber sends passes at once. ``bps`` may be changed
    while it runs. Runs on a thread until :meth:`close`."""

    def __init__(self, bps: int | None, queue_bytes: int = 40_000):
        import socket as sockets
        self.server: tuple[str, int] | None = None  # set once the answer says where it is
        self.bps = bps
        self.queue_bytes = queue_bytes
        self.outer = sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM)  # the subscriber's side
        self.outer.bind(("127.0.0.1", 0))
        self.inner = sockets.socket(sockets.AF_INET, sockets.SOCK_DGRAM)  # the server's side
        self.inner.bind(("127.0.0.1", 0))
        self.port = self.outer.getsockname()[1]
        self.dropped = 0
        self._client: tuple | None = None
        self._queue: list[bytes] = []
        self._queued = 0
        self._running = True
        self._thread = threading.Thread(target=self._run, name="bottleneck", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select
        credit, stamp = 0.0, time.monotonic()
        while self._running:
            readable, _, _ = select.select([self.outer, self.inner], [], [], 0.002)
            for sock in readable:
                data, address = sock.recvfrom(65536)
                if sock is self.outer:
                    if self.server is None:
                        continue
                    self._client = address
                    self.inner.sendto(data, self.server)
                elif self.bps is None and not self._queue:
                    if self._client is not None:
                        self.outer.sendto(data, self._client)
                elif self._queued + len(data) > self.queue_bytes:
                    self.dropped += 1
                else:
                    self._queue.append(data)
                    self._queued += len(data)
            now = time.monotonic()
            rate = self.bps if self.bps is not None else 1e9
            credit = min(credit + (now - stamp) * rate / 8, 3000.0)
            stamp = now
            while self._queue and credit >= len(self._queue[0]) and self._client is not None:
                data = self._queue.pop(0)
                self._queued -= len(data)
                credit -= len(data)
                self.outer.sendto(data, self._client)

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self.outer.close()
        self.inner.close()


def through(answer: str, relay_port: int) -> tuple[str, tuple[str, int]]:
    """The answer with its one host candidate's port replaced by the relay's, and the server's
    (address, port) it stood for."""
    found = re.search(r"^a=candidate:\S+ 1 udp \d+ (127\.0\.0\.1) (\d+) typ host.*$", answer, re.M)
    assert found, "the answer has a host candidate on 127.0.0.1"
    line = found.group(0)
    rewritten = line.replace(f" {found.group(1)} {found.group(2)} ", f" {found.group(1)} {relay_port} ", 1)
    return answer.replace(line, rewritten), (found.group(1), int(found.group(2)))


# -- the benchmark ---------------------------------------------------------------------------------

ROOM, TRACK = "bench", "camera"


def _subscribe(media: MediaDriver, browser, endpoint: str, relay: Bottleneck | None):
    page = page_with_media(browser)
    offer = page.evaluate("subscribe()")
    mid = next(line[6:] for line in offer.split("\r\n") if line.startswith("a=mid:"))
    answer = media.command(Answer(room=ROOM, endpoint=endpoint, sdp=offer, sending={},
                                  slots=(Slot(mid, TRACK, "publisher"),))).sdp
    if relay is not None:
        answer, relay.server = through(answer, relay.port)
    page.evaluate("sdp => accept(sdp)", answer)
    return page


def _layer_event(media: MediaDriver, endpoint: str, after: float, want) -> float | None:
    """Seconds from ``after`` to the first layer event of ``endpoint`` since then that ``want``s."""
    for at, event in list(media.arrivals):
        if at >= after and isinstance(event, LayerSwitched) and event.endpoint == endpoint and want(event):
            return at - after
    return None


def main(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    from testsupport.browser import launch  # Debian's Chromium, as the tests launch it

    media = MediaDriver()
    media.command(OpenRoom(room=ROOM, ice_servers=[], certificate=None, addresses=["127.0.0.1"],
                           udp_ports=None, max_video_bitrate=None))
    relay = Bottleneck(None)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            publisher = page_with_media(browser)
            offer = publisher.evaluate("publish(true)")
            mids = list(sending_mids(offer))
            answer = media.command(Answer(room=ROOM, endpoint="publisher", sdp=offer,
                                          sending={mid: TRACK for mid in mids}, slots=[],
                                          simulcast={mid: ["l", "m", "h"] for mid in mids})).sdp
            publisher.evaluate("sdp => accept(sdp)", answer)
            limited = _subscribe(media, browser, "limited", relay)
            free = _subscribe(media, browser, "free", None)

            def width(page) -> int:
                return page.evaluate("inbound()")["width"]

            wait_for(lambda: width(limited) == 1280, 90, "the limited subscriber reaches h")
            print(f"relay limit {args.limit} bit/s; times from the change to the server's layer event:")
            for round_ in range(1, args.rounds + 1):
                relay.bps = args.limit
                dropped = time.monotonic()
                wait_for(lambda: _layer_event(media, "limited", dropped, lambda e: e.reason == "low_bandwidth"),
                         60, "a switch down for bandwidth")
                down = _layer_event(media, "limited", dropped, lambda e: e.reason == "low_bandwidth")
                time.sleep(args.hold)
                relay.bps = None
                recovered = time.monotonic()
                wait_for(lambda: _layer_event(media, "limited", recovered, lambda e: e.layer == "h"),
                         180, "the switch back up to h")
                up = _layer_event(media, "limited", recovered, lambda e: e.layer == "h")
                print(f"  round {round_}: down {down:.1f} s after the drop; back on h {up:.1f} s after "
                      f"the recovery (the unlimited subscriber: {width(free)} wide; relay dropped {relay.dropped})")
                time.sleep(args.hold)
        finally:
            browser.close()
            relay.close()
            media.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=400_000, help="the relay's rate while limited (bits/s)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hold", type=float, default=10.0, help="seconds held limited, and unlimited after")
    main(parser.parse_args())
