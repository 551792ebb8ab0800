"""A simulcast layer switch mid-recording, through a running daemon.

The publisher is an aiortc participant whose offer is made into what Chromium
sends for layers (RIDs, no SSRCs); its two layers, 320x240 ("h") and 160x120
("l"), are encoded live with libvpx, answer the server's key frame requests
(PLI) with a key frame, and are written by hand onto the connection, each
frame up to 80 ms late as on a jittery network, the lower layer 400 ms
more while the top layer is off (a queue that drains at once as it returns). The top layer stops for a
while and comes back. What is recorded is always the highest layer sent, and
the exported WebM plays through: every video frame decodes, the pictures
change size where the layers switched, and the duration is the recording's.
"""

from __future__ import annotations

import asyncio
import fractions
import itertools
import time

import av
import numpy
import pytest
import trio
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket
from aiortc.sdp import SessionDescription

from bench.receive import Idle
from test_simulcast import chrome_like_offer
from testsupport.media_bot import Bot, Tone, media_thread
from testsupport.phoenix import phoenix_client
from testsupport.signalling_helpers import running_daemon
from videoroomd.media.dataplane.rtp_packets import extension_block, one_byte_element, rtp_packet
from videoroomd.media.webrtc.compat import rtp as compat
from videoroomd.recording.export import export_recording
from videoroomd.recording.store import recordings
from videoroomd.recording.trackfile import read_track

pytestmark = pytest.mark.slow

FPS = 15
LAYERS = {"h": (0x3333, 320, 240), "l": (0x1111, 160, 120)}  # rid -> (SSRC, width, height), top first
RID_URI = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"


def picture_of(index: int, width: int, height: int) -> numpy.ndarray:
    """A grey picture that says its index: the top half's level the sixteens, the bottom's the ones."""
    image = numpy.empty((height, width), numpy.uint8)
    image[:height // 2] = (index // 16 % 16) * 16 + 8
    image[height // 2:] = (index % 16) * 16 + 8
    return image


def index_of(frame: av.VideoFrame) -> int | None:
    """The index a decoded picture says, or None when it is not one of ours (a picture decoded wrong)."""
    image = frame.to_ndarray(format="gray").astype(int)
    height = image.shape[0]
    top, bottom = image[2:height // 2 - 2], image[height // 2 + 2:-2]
    digits = [round((float(numpy.median(half)) - 8) / 16) for half in (top, bottom)]
    expected = picture_of(digits[0] * 16 + digits[1], image.shape[1], height).astype(int)
    if not all(0 <= d < 16 for d in digits) or numpy.abs(image - expected)[2:-2].max() > 24:
        return None
    return digits[0] * 16 + digits[1]


class LiveLayer:
    """One layer's encoder and RTP numbering; a PLI for its SSRC makes the next frame a key frame."""

    def __init__(self, rid: str, ssrc: int, width: int, height: int):
        self.rid, self.ssrc, self.width, self.height = rid, ssrc, width, height
        self.codec = av.CodecContext.create("libvpx", "w")
        self.codec.width, self.codec.height, self.codec.pix_fmt = width, height, "yuv420p"
        self.codec.time_base = fractions.Fraction(1, FPS)
        self.codec.bit_rate = 300_000
        self.codec.gop_size = 10 * FPS  # key frames come when asked for, as a browser's do
        self.codec.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
        self.sequence = itertools.count(1000)
        self.picture_id = 0
        self.key_wanted = False
        self.sent = 0

    def frame(self, index: int) -> tuple[bool, list[bytes]]:
        """Picture ``index`` encoded: (whether a key frame, its RTP payloads)."""
        picture = av.VideoFrame.from_ndarray(picture_of(index, self.width, self.height), format="gray")
        picture = picture.reformat(format="yuv420p")
        picture.pts = index
        if self.key_wanted:
            picture.pict_type = av.video.frame.PictureType.I
            self.key_wanted = False
        data = b"".join(bytes(p) for p in self.codec.encode(picture))
        payloads = Vp8Encoder._packetize(data, self.picture_id)
        self.picture_id = (self.picture_id + 1) % (1 << 15)
        return not data[0] & 1, payloads


class LayeredPublisher(Bot):
    """A bot publishing a tone and a camera whose layers the test writes itself."""

    async def publish_layers(self) -> tuple[str, str]:
        """Add the tracks and renegotiate; returns (audio, video) track ids."""
        async def add():
            self._make_pc()
            ids = []
            for track in (Tone(), Idle()):
                self.pc.addTransceiver(track, direction="sendonly")
                self.local[f"{self.id}:{track.kind}"] = track
                ids.append(f"{self.id}:{track.kind}")
            return ids

        ids = await self.media.call(add)
        await self.send({"type": "custom", "data": {"type": "renegotiateTracks"}})
        return ids

    async def send(self, event: dict) -> None:
        if event.get("data", {}).get("type") == "sdpOffer":
            offer = event["data"]["data"]["sdpOffer"]
            offer["sdp"] = chrome_like_offer(offer["sdp"])
        await super().send(event)


class LayerWriter:
    """Writes the layers onto the publisher's connection (on the media thread), with jitter."""

    def __init__(self, pc):
        self.layers = {rid: LiveLayer(rid, *spec) for rid, spec in LAYERS.items()}
        self.index = 0
        self.origin: float | None = None     # loop time of picture 0
        self.taken_at: dict[int, float] = {}  # picture index -> wall time it was taken (its RTP time)
        self.plis: list[int] = []
        sender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
        media = [m for m in SessionDescription.parse(pc.remoteDescription.sdp).media if m.kind == "video"][0]
        ids = {ext.uri: ext.id for ext in media.rtp.headerExtensions}
        self.rid_id, self.mid_id, self.mid = ids[RID_URI], ids[MID_URI], media.rtp.muxId.encode()
        self.payload_type = media.rtp.codecs[0].payloadType
        self.transport = sender.transport
        self._route()
        router = sender.transport._rtp_router
        for layer in self.layers.values():
            router.register_sender(sender, layer.ssrc)  # the server's PLIs for a layer reach us
        compat.intercept_sender(sender, lambda parameters: None, self._rtcp)

    def _route(self) -> None:
        """Where to write: the pair nominated now (it may change while the call runs)."""
        self.srtp, pair = compat.nominated_route(self.transport)
        self.socket, self.address = compat.pair_socket(pair), pair.remote_addr

    async def _rtcp(self, packet, handle) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            self.plis.append(packet.media_ssrc)
            for layer in self.layers.values():
                if layer.ssrc == packet.media_ssrc:
                    layer.key_wanted = True
            return
        if not isinstance(packet, RtcpPsfbPacket):
            await handle(packet)

    def _packets(self, layer: LiveLayer, index: int, timestamp: int) -> list[bytes]:
        key, payloads = layer.frame(index)
        out = []
        for number, payload in enumerate(payloads):
            elements = one_byte_element(self.mid_id, self.mid)
            if layer.sent < 100:  # as Chromium: the RID until the server's reports reach it (a while)
                elements += one_byte_element(self.rid_id, layer.rid.encode())
            layer.sent += 1
            out.append(self.srtp.protect(rtp_packet(
                self.payload_type, int(number == len(payloads) - 1), next(layer.sequence) & 0xFFFF,
                timestamp & 0xFFFFFFFF, layer.ssrc, extension_block(elements), payload)))
        return out

    async def run(self, seconds: float, rids: tuple[str, ...], late: dict[str, float] | None = None) -> None:
        """Send ``rids`` (top layer first) for ``seconds`` at FPS, paced on one clock across calls,
        each frame 0 to 80 ms late, the layers named in ``late`` that much more, and what is
        late at the end all at once (a queue that drains)."""
        loop = asyncio.get_running_loop()
        self._route()
        if self.origin is None:
            self.origin = loop.time()
        end = self.index + round(seconds * FPS)
        drain = self.origin + end / FPS
        pending: list[tuple[float, list[bytes]]] = []
        while self.index < end or pending:
            horizon = float("inf")
            if self.index < end:
                # stamped when taken, as a camera's frames are: a sender that falls behind sends
                # fewer pictures a second, never pictures that claim another time
                taken = loop.time()
                self.taken_at[self.index] = time.time()
                timestamp = round((taken - self.origin) * 90000)
                jitter = (self.index * 7 % 5) * 0.02
                for rid in rids:
                    due = taken + jitter + (late or {}).get(rid, 0.0)
                    pending.append((min(due, drain), self._packets(self.layers[rid], self.index, timestamp)))
                pending.sort(key=lambda item: item[0])
                # a sender that fell behind skips pictures, as a camera does, and stays on time
                self.index = max(self.index + 1, int((loop.time() - self.origin) * FPS))
                horizon = self.origin + self.index / FPS
            while pending and pending[0][0] <= horizon:
                when, datagrams = pending.pop(0)
                await asyncio.sleep(max(0.0, when - loop.time()))
                for datagram in datagrams:
                    self.socket.sendto(datagram, self.address)
            if horizon != float("inf"):
                await asyncio.sleep(max(0.0, horizon - loop.time()))


def of_type(kind: str):
    return lambda event: event["type"] == kind


def runs(values) -> list:
    """``values`` with each run of equal neighbours made one."""
    return [value for value, _ in itertools.groupby(values)]


def decoded_video(path) -> tuple[float, list[tuple[int, int, int | None, float]], int]:
    """(the file's duration, each decoded video frame's (width, height, index it shows, seconds
    from the file's start), video packets in the file); a frame that does not decode raises."""
    with av.open(str(path)) as container:
        duration = container.duration / 1e6
        packets = sum(1 for p in container.demux(video=0) if p.size)
    with av.open(str(path)) as container:
        frames = [(frame.width, frame.height, index_of(frame), float(frame.time)) for frame in container.decode(video=0)]
    return duration, frames, packets


ROOMS = '[rooms.lobby]\nmax_peers = 4\nrecording = "manual"\nrecording_password = "tape"\n'
START = {"type": "custom", "data": {"type": "recording", "data": {"action": "start", "password": "tape"}}}
STOP = {"type": "custom", "data": {"type": "recording", "data": {"action": "stop", "password": "tape"}}}


async def test_the_top_layer_sent_is_recorded_through_switches_and_the_file_decodes_whole(tmp_path):
    store = tmp_path / "recordings"
    store.mkdir()
    async with running_daemon(tmp_path, f'[recording]\ndirectory = "{store}"\n' + ROOMS, media="workers = 1") as daemon, \
            media_thread() as media, phoenix_client(daemon) as client:
        assert (await client.join("lobby", displayName="Ann"))["status"] == "ok"
        ann = LayeredPublisher(client, "lobby", "Ann", media)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ann.pump)
            await ann.connect()
            await ann.publish_layers()
            await ann.wait_for(of_type("sdpAnswer"))
            with trio.fail_after(10):
                while await media.call(_route_missing, ann.pc):
                    await trio.sleep(0.05)
            writer = await media.call(_writer, ann.pc)
            await ann.send(START)
            await ann.wait_for(of_type("recordingStarted"))
            await media.call(writer.run, 3.0, ("h", "l"))   # both layers
            # the top layer stops, and the lower one comes 400 ms late until its queue drains at once
            # as the top one returns: timed from its first packet alone, its last frames would reach
            # past the top layer's first key frame, which nothing of the lower layer may follow
            await media.call(writer.run, 4.0, ("l",), {"l": 0.4})
            await media.call(writer.run, 3.0, ("h", "l"))
            await ann.send(STOP)
            await ann.wait_for(of_type("recordingStopped"))
            nursery.cancel_scope.cancel()
        await ann.close()
    (found,) = recordings(store)
    tracks = [read_track((found.path / name).read_bytes()) for name in found.tracks]
    (video,) = [track for track in tracks if track.header.kind == "video"]
    ssrcs = {spec[0]: rid for rid, spec in LAYERS.items()}
    assert runs(ssrcs.get(p.ssrc, "?") for p in video.packets) == ["h", "l", "h"]
    assert {LAYERS["h"][0], LAYERS["l"][0]} <= set(writer.plis)  # a key frame asked of each layer taken
    (made,) = await trio.to_thread.run_sync(export_recording, found.path)
    duration, frames, packets = decoded_video(made.path)
    assert len(frames) == packets  # every frame decodes (one that does not raises)
    shown = [index for _, _, index, _ in frames]
    assert None not in shown, shown      # each shows the picture sent, none decoded from a wrong reference
    assert shown == sorted(set(shown))   # in the order sent, none twice
    sizes = [(width, height) for width, height, _, _ in frames]
    assert runs(sizes) == [(320, 240), (160, 120), (320, 240)]
    assert all(len(list(run)) >= 5 for _, run in itertools.groupby(sizes))
    # each picture where it was taken, and the file as long as the recording ran
    # each picture where it was taken (its RTP time), whatever the delays; the file as long as its packets came
    placed = [made.start + pts - writer.taken_at[index] for _, _, index, pts in frames]
    assert max(map(abs, placed)) < 1, (min(placed), max(placed))
    span = (max(t.header.start + t.packets[-1].arrival_us / 1e6 for t in tracks)
            - min(t.header.start + t.packets[0].arrival_us / 1e6 for t in tracks))
    assert abs(duration - span) < 1 and abs(made.duration - duration) < 0.1


async def _route_missing(pc) -> bool:
    sender = next(t.sender for t in pc.getTransceivers() if t.kind == "video")
    return compat.nominated_route(sender.transport) is None


async def _writer(pc) -> LayerWriter:
    return LayerWriter(pc)
