"""Kernel receive timestamps turned on and known to be taken on arrival.

Linux stamps a datagram on arrival only while some socket on the machine asks for stamps, and it
turns that on a moment after the first socket asks (a deferred static-key switch). Until then a
datagram is stamped when it is read, so a test that sends at once after opening its first stamping
socket may see the first few datagrams stamped later than the ones after them. ``kernel_stamps()``
holds a stamping socket of its own for as long as the block runs and returns once a probe datagram
came back stamped on arrival, not on read.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from collections.abc import Iterator

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
READ_LATE_S = 0.02  # a probe is read this long after it was sent


def _probe(receiver: socket.socket, sender: socket.socket) -> bool:
    """Send one datagram, read it READ_LATE_S later; True if its stamp is the arrival's."""
    sent = time.time_ns()
    sender.sendto(b"probe", receiver.getsockname())
    time.sleep(READ_LATE_S)
    _, ancillary, _, _ = receiver.recvmsg(64, socket.CMSG_SPACE(16))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 1_000_000_000 + nanoseconds - sent < READ_LATE_S * 1e9 / 2
    return False


@contextlib.contextmanager
def kernel_stamps(deadline_s: float = 5.0) -> Iterator[None]:
    """Hold arrival stamping on for the block.

    Raises:
        AssertionError: the kernel still stamped on read after ``deadline_s``.
    """
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        receiver.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        give_up = time.monotonic() + deadline_s
        while not _probe(receiver, sender):
            assert time.monotonic() < give_up, "the kernel never stamped a datagram on arrival"
        yield
    finally:
        receiver.close()
        sender.close()
