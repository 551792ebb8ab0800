"""The REMB estimator's arrival times are when the kernel received each datagram, not when
a busy media worker got round to reading it."""

from __future__ import annotations

import socket
import time

from videoroomd.media.aiortc_compat.ice import NTP_EPOCH_OFFSET, kernel_arrival_ms


def _ms_now() -> int:
    return int((time.time() + NTP_EPOCH_OFFSET) * 1000)


def test_a_datagram_read_late_keeps_the_time_it_arrived():
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        receiver.bind(("127.0.0.1", 0))
        sender.sendto(b"\x80first", receiver.getsockname())
        receiver.recvfrom(2048)
        kernel_arrival_ms(receiver.fileno())  # the first call turns the stamps on
        arrivals = []
        for _ in range(3):
            sent = _ms_now()
            sender.sendto(b"\x80media", receiver.getsockname())
            time.sleep(0.25)  # the worker busy elsewhere: the datagram waits in the socket
            receiver.recvfrom(2048)
            arrivals.append((sent, kernel_arrival_ms(receiver.fileno()), _ms_now()))
        for sent, arrived, read in arrivals:
            assert arrived is not None
            assert sent - 5 <= arrived < sent + 100 <= read, (sent, arrived, read)
    finally:
        receiver.close()
        sender.close()


def test_a_socket_that_cannot_say_gives_none():
    with open("/dev/null", "rb") as not_a_socket:
        assert kernel_arrival_ms(not_a_socket.fileno()) is None
