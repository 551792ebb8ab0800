"""What batching a subscriber's sends would save: ``python -m bench.udp_batching [--packets 200000]``.

The compiled plane sends each forwarded packet with one ``sendto`` (its own
socket per connection, the pair's source port). Two kernel features could
send several at once: ``sendmmsg`` (several datagrams, one system call) and
UDP GSO (``UDP_SEGMENT``: one large buffer the kernel cuts into datagrams of
one size, the last one shorter). Both only apply to packets that leave by one
socket within one wakeup: a burst of packets to one subscriber.

This measures, over loopback, the sending thread's CPU (user and kernel, from
``RUSAGE_THREAD``) per datagram for bursts of 1, 2, 3, 4 and 8 packets of 1 100
bytes (the last of a burst 600) to one address, each way; a child process
drains and counts what arrives, so every figure is for datagrams delivered.
Then a real call tells how large the bursts are: give ``--metrics URL`` of a
running daemon (its ``/metrics``) to print the media sockets' datagrams per
read batch (a read batch is one wakeup; each datagram of it is forwarded to
every subscriber, so a subscriber's burst is at most that size).
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import multiprocessing
import os
import re
import resource
import socket
import struct
import time
import urllib.request

UDP_SEGMENT = 103           # linux/udp.h
SIZE, LAST = 1100, 600      # a video packet, and the shorter last one of a frame
BURSTS = (1, 2, 3, 4, 8)


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


def _drain(port_queue, done, counts) -> None:
    """The receiving side, in its own process: count datagrams until told to stop."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    port_queue.put(sock.getsockname()[1])
    received = 0
    while True:
        try:
            sock.recv(2048)
            received += 1
        except socket.timeout:
            if done.is_set():
                break
    counts.put(received)


def _bursts(count: int, burst: int) -> list[list[bytes]]:
    body = os.urandom(SIZE)
    one = [body] * (burst - 1) + [body[:LAST]] if burst > 1 else [body[:LAST]]
    return [one] * (count // burst)


class Sender:
    """The three ways to send a burst to ``address`` from one socket."""

    def __init__(self, address: tuple[str, int]):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.connect(address)  # as a nominated pair: one peer per socket
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.segment = [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", SIZE))]

    def sendto(self, burst: list[bytes]) -> None:
        for packet in burst:
            self.sock.send(packet)

    def gso(self, burst: list[bytes]) -> None:
        if len(burst) == 1:
            self.sock.send(burst[0])
        else:
            self.sock.sendmsg([b"".join(burst)], self.segment)

    def prepare_mmsg(self, burst: list[bytes]):
        keep = [ctypes.create_string_buffer(p, len(p)) for p in burst]
        iovs = (_IoVec * len(burst))(*[_IoVec(ctypes.cast(b, ctypes.c_void_p), len(p)) for b, p in zip(keep, burst)])
        msgs = (_MMsgHdr * len(burst))()
        for i in range(len(burst)):
            msgs[i].hdr.iov = ctypes.pointer(iovs[i])
            msgs[i].hdr.iovlen = 1
        return keep, iovs, msgs

    def sendmmsg(self, prepared) -> None:
        _, _, msgs = prepared
        sent = self.libc.sendmmsg(self.sock.fileno(), msgs, len(msgs), 0)
        if sent != len(msgs):
            raise OSError(ctypes.get_errno(), "sendmmsg sent fewer")


def measure(way: str, burst: int, packets: int) -> dict:
    """CPU per delivered datagram of sending ``packets`` in bursts of ``burst`` one ``way``."""
    ports, done, counts = multiprocessing.Queue(), multiprocessing.Event(), multiprocessing.Queue()
    child = multiprocessing.Process(target=_drain, args=(ports, done, counts))
    child.start()
    sender = Sender(("127.0.0.1", ports.get(timeout=10)))
    bursts = _bursts(packets, burst)
    prepared = sender.prepare_mmsg(bursts[0]) if way == "sendmmsg" else None
    send = {"sendto": sender.sendto, "gso": sender.gso}.get(way)
    before = resource.getrusage(resource.RUSAGE_THREAD)
    for one in bursts:
        if prepared is not None:
            sender.sendmmsg(prepared)
        else:
            send(one)
    after = resource.getrusage(resource.RUSAGE_THREAD)
    time.sleep(0.3)
    done.set()
    received = counts.get(timeout=30)
    child.join(timeout=10)
    sender.sock.close()
    sent = len(bursts) * burst
    user = (after.ru_utime - before.ru_utime) * 1e6 / sent
    system = (after.ru_stime - before.ru_stime) * 1e6 / sent
    return {"way": way, "burst": burst, "sent": sent, "received": received, "user_us": round(user, 2),
            "kernel_us": round(system, 2), "total_us": round(user + system, 2)}


def read_batches(url: str) -> str:
    """The media sockets' datagrams per read batch, from a daemon's /metrics."""
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    totals: dict[str, float] = {}
    for counter in ("datagrams", "batches", "rtp"):
        pattern = rf'^videoroomd_media_worker_port_{counter}_total\{{[^}}]*\}} ([0-9.e+]+)$'
        totals[counter] = sum(float(v) for v in re.findall(pattern, text, re.M))
    if not totals["batches"]:
        return "no read batches counted (is data_plane native and a call running?)"
    return (f"{totals['datagrams']:.0f} datagrams in {totals['batches']:.0f} read batches: "
            f"{totals['datagrams'] / totals['batches']:.2f} a batch")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=200_000, help="datagrams per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each (the median is printed)")
    parser.add_argument("--metrics", help="a running daemon's /metrics URL: its datagrams per read batch")
    args = parser.parse_args()
    if args.metrics:
        print(read_batches(args.metrics))
        return 0
    print("| burst | way | user µs | kernel µs | total µs per datagram | vs sendto |")
    print("|---:|---|---:|---:|---:|---:|")
    for burst in BURSTS:
        base = None
        for way in ("sendto", "sendmmsg", "gso"):
            runs = sorted((measure(way, burst, args.packets) for _ in range(args.rounds)), key=lambda r: r["total_us"])
            median = runs[len(runs) // 2]
            if any(r["received"] < r["sent"] * 0.99 for r in runs):
                median["note"] = "receiver dropped some"
            base = base or median["total_us"]
            print(f"| {burst} | {way} | {median['user_us']} | {median['kernel_us']} | {median['total_us']} | "
                  f"{median['total_us'] / base:.2f} | {median.get('note', '')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
