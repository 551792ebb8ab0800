"""A publisher's media socket read by the compiled Port on loopback, forwarding one VP8 SSRC in C.

The Port is keyed (AES-CM) and takes media from ``client``; a compiled plane has a VP8 publisher
whose one subscriber writes into a socket pair (``theirs`` reads what it sends, under the
subscriber's keys); ``ssrc`` is routed to the plane in C. Shared by the fast-path tests and
``bench.recording_path``.
"""

from __future__ import annotations

import socket

import pylibsrtp

from videoroomd.media.dataplane.interface import NativeRoute, RewriteStart, StreamParams
from videoroomd.media.dataplane.native_module import load
from videoroomd.media.dataplane.native_plane import NativeDataPlane

RX_KEY, RX_SALT = bytes(range(1, 17)), bytes(range(101, 115))   # what the client sends under
TX_KEY, TX_SALT = bytes(range(31, 47)), bytes(range(131, 145))  # what the Port sends under
OUT_KEY, OUT_SALT = bytes(range(16)), bytes(range(50, 64))      # the subscriber's
VP8 = 96


def udp() -> socket.socket:
    """A non-blocking loopback UDP socket with room for a burst."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    return sock


class PortRig:
    """The Port, its client's SRTP session (``sender``), the plane and its subscriber's socket pair."""

    def __init__(self, ssrc: int, abs_send_time_id: int = 0):
        native = self.native = load()
        self.server, self.client = udp(), udp()
        self.port = native.Port(self.server.fileno())
        self.port.set_keys(native.AES_CM_128_HMAC_SHA1_80, RX_KEY, RX_SALT, TX_KEY, TX_SALT)
        self.port.allow(self.client.getsockname())
        policy = pylibsrtp.Policy(key=RX_KEY + RX_SALT, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND)
        self.sender = pylibsrtp.Session(policy)
        self.plane = NativeDataPlane()
        self.plane.add_publisher("cam", "video")
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.ours.setblocking(False)
        self.theirs.setblocking(False)
        self.plane.add_connection("c")
        route = NativeRoute(self.ours, None, native.AES_CM_128_HMAC_SHA1_80, OUT_KEY, OUT_SALT)
        self.plane.add_subscriber("s", "c", "video", route, RewriteStart(1, 2, 3))
        self.plane.set_stream("s", StreamParams(102, 90000, 7, 8, 103))
        self.plane.link("s", "cam")
        self.core, self.index = self.plane.native_target("cam", ssrc)
        assert self.port.route(ssrc, self.core, self.index, -1, VP8, 90000, 0, abs_send_time_id, None, None) is True

    def close(self) -> None:
        for sock in (self.server, self.client, self.ours, self.theirs):
            sock.close()
