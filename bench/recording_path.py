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
import tempfile
import time

from testsupport.port_rig import VP8, PortRig
from testsupport.rtp_datagrams import rtp
from videoroomd.media.webrtc.recording_tap import RecordingTap
from videoroomd.recording.recorder import RoomRecorder

SSRC = 0x1234ABCD
PAYLOAD = b"\x10\x01" + bytes(1000)  # a VP8 inter frame's packet


class Path(PortRig):
    """One publisher's Port, the plane with one subscriber, and the room's recording tap."""

    def __init__(self, directory: str):
        super().__init__(SSRC)
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
