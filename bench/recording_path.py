"""The compiled plane's recording path alone: ``python -m bench.recording_path [--per-take 3] [--rounds 15]``.

A Port on a loopback socket forwards one VP8 SSRC (1002-byte payloads,
SRTP) in C through the compiled plane to one subscriber, as a publisher's
connection does in the worker. Each round sends ``--packets`` packets
without recording, then as many with the SSRC tapped: the Port makes each
packet its track-file record, and every ``--per-take`` packets the records
are taken (``Port.take_records``) and given to a real
:class:`~videoroomd.media.webrtc.recording_tap.RecordingTap` and
:class:`~videoroomd.recording.recorder.RoomRecorder` writing into a
temporary directory (flushed every 100 packets, as a second of a camera).
It prints, over the rounds, the median (and quartiles) of the process CPU
time that recording added per recorded packet, and how much of it the take
and the recorder took in Python. The worker takes every 50 ms
(``native_receive.TAKE_INTERVAL``): about 3 packets of a camera's SSRC.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import time

import pylibsrtp

from testsupport.rtp_datagrams import rtp
from videoroomd.media.dataplane.interface import NativeRoute, RewriteStart, StreamParams
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.dataplane.native_plane import NativeDataPlane
from videoroomd.media.webrtc.recording_tap import RecordingTap
from videoroomd.recording.recorder import RoomRecorder

IN_KEY, IN_SALT = bytes(range(1, 17)), bytes(range(101, 115))
OUT_KEY, OUT_SALT = bytes(range(16)), bytes(range(50, 64))
SSRC, VP8 = 0x1234ABCD, 96
PAYLOAD = b"\x10\x01" + bytes(1000)  # a VP8 inter frame's packet


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    return sock


class Path:
    """One publisher's Port, the plane with one subscriber, and the room's recording tap."""

    def __init__(self, directory: str):
        native = load()
        self.server, self.client = _udp(), _udp()
        self.port = native.Port(self.server.fileno())
        self.port.set_keys(native.AES_CM_128_HMAC_SHA1_80, IN_KEY, IN_SALT, OUT_KEY, OUT_SALT)
        self.port.allow(self.client.getsockname())
        policy = pylibsrtp.Policy(key=IN_KEY + IN_SALT, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.sender = pylibsrtp.Session(policy)
        self.plane = NativeDataPlane()
        self.plane.add_publisher("cam", "video")
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.plane.add_connection("c")
        self.plane.add_subscriber("s", "c", "video", NativeRoute(self.ours, None, native.AES_CM_128_HMAC_SHA1_80,
                                                                 OUT_KEY, OUT_SALT), RewriteStart(1, 2, 3))
        self.plane.set_stream("s", StreamParams(102, 90000, 7, 8, 103))
        self.plane.link("s", "cam")
        core, index = self.plane.native_target("cam", SSRC)
        assert self.port.route(SSRC, core, index, -1, VP8, 90000, 0, 0, None, None)
        self.directory = directory
        self.tap = RecordingTap(lambda track, ssrc: None, lambda recording, reason, detail: None)
        self.tap.publisher("cam", "video", "p", None)
        self.seq = 0
        self.in_python = 0.0

    def run(self, packets: int, recording: bool, per_take: int) -> float:
        """Send ``packets``; returns the process CPU µs per packet."""
        tap, port = self.tap, self.port
        if recording:
            tap.recorder = RoomRecorder(self.directory, "room", f"r{time.monotonic_ns()}", 10 ** 12,
                                        lambda track, ssrc: None, lambda reason, detail: None)
            port.tap(SSRC, True, round(tap.track_start("cam") * 1_000_000))
        else:
            tap.recorder = None
            port.tap(SSRC, False)
        started = time.process_time()
        for n in range(packets):
            self.seq += 1
            self._send_one()
            if recording and (n + 1) % per_take == 0:
                taking = time.process_time()
                for ssrc, records, count, keyframe, start_us in port.take_records()[0]:
                    tap.records("cam", ssrc, records, count, keyframe, start_us)
                self.in_python += time.process_time() - taking
            if recording and n % 100 == 0:
                tap.recorder.flush()
            if n % 200 == 0:
                self._empty_subscriber()
        spent = time.process_time() - started
        if recording:
            tap.recorder.end("stopped")
        return spent / packets * 1e6

    def _send_one(self) -> None:
        data = rtp(self.seq & 0xFFFF, ssrc=SSRC, pt=VP8, timestamp=self.seq * 3000, payload=PAYLOAD)
        before = self.port.counters["datagrams"]
        self.client.sendto(self.sender.protect(data), self.server.getsockname())
        while self.port.counters["datagrams"] == before:
            self.port.read_batch()
        self.port.drain_fast()

    def _empty_subscriber(self) -> None:
        try:
            while self.theirs.recv(70000):
                pass
        except BlockingIOError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-take", type=int, default=3, help="packets between two takes of the records")
    parser.add_argument("--packets", type=int, default=3000, help="packets a run")
    parser.add_argument("--rounds", type=int, default=15, help="runs without and with recording, alternated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        path.run(args.packets // 2, False, 1)  # warm up
        path.run(args.packets // 2, True, args.per_take)
        added, in_python = [], []
        for _ in range(args.rounds):
            without = path.run(args.packets, False, 1)
            path.in_python = 0.0
            added.append(path.run(args.packets, True, args.per_take) - without)
            in_python.append(path.in_python / args.packets * 1e6)
    added.sort()
    in_python.sort()
    middle, low, high = len(added) // 2, len(added) // 4, len(added) * 3 // 4
    print(f"recording adds {added[middle]:.2f} µs of CPU per recorded packet (median of {args.rounds}, quartiles "
          f"{added[low]:.2f} to {added[high]:.2f}); the take and the recorder in Python: {in_python[middle]:.2f} µs "
          f"(a take every {args.per_take} packets)")


if __name__ == "__main__":
    main()
