"""One NTP epoch: RTCP sender reports and the REMB estimator's clock count from 1900 alike."""

from __future__ import annotations

import datetime
import socket
import time

from videoroomd.media.webrtc.compat.ice import kernel_arrival_ms
from videoroomd.media.webrtc.compat.rtp import arrival_ms
from videoroomd.media.dataplane.rtp_packets import NTP_EPOCH_OFFSET, ntp_time


def test_the_offset_is_the_seconds_from_1900_to_1970():
    utc = datetime.timezone.utc
    span = datetime.datetime(1970, 1, 1, tzinfo=utc) - datetime.datetime(1900, 1, 1, tzinfo=utc)
    assert NTP_EPOCH_OFFSET == span.total_seconds()
    assert ntp_time(0.5) == (NTP_EPOCH_OFFSET << 32) | (1 << 31)


def test_sender_reports_arrivals_and_kernel_stamps_share_the_epoch():
    now = time.time()
    assert abs(arrival_ms() - (ntp_time(now) >> 32) * 1000) < 2000
    receiver, sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        receiver.bind(("127.0.0.1", 0))
        kernel_arrival_ms(receiver.fileno())  # turns the kernel's stamps on
        sender.sendto(b"x", receiver.getsockname())
        receiver.recv(10)
        stamp = kernel_arrival_ms(receiver.fileno())
    assert stamp is None or abs(stamp - arrival_ms()) < 2000
