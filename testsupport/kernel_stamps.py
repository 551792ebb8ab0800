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
import time
from collections.abc import Iterator

from videoroomd.media.webrtc.compat.ice import NTP_EPOCH_OFFSET, kernel_arrival_ms

READ_LATE_S = 0.02  # a probe is read this long after it was sent


def _probe(receiver: socket.socket, sender: socket.socket) -> bool:
    """Send one datagram, read it READ_LATE_S later; True if its stamp is the arrival's."""
    sent_ms = (time.time() + NTP_EPOCH_OFFSET) * 1000
    sender.sendto(b"probe", receiver.getsockname())
    time.sleep(READ_LATE_S)
    receiver.recv(64)
    arrived_ms = kernel_arrival_ms(receiver.fileno())
    return arrived_ms is not None and arrived_ms - sent_ms < READ_LATE_S * 1000 / 2


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
        kernel_arrival_ms(receiver.fileno())  # the first call turns the socket's stamps on
        give_up = time.monotonic() + deadline_s
        while not _probe(receiver, sender):
            assert time.monotonic() < give_up, "the kernel never stamped a datagram on arrival"
        yield
    finally:
        receiver.close()
        sender.close()
