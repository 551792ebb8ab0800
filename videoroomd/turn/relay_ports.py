"""The relayed addresses' sockets: one UDP port each, from the configured range (sockets only, no policy).

A port is tried at random within the range (RFC 8656 §7.2 asks for
unpredictable ports), an even one when the client asked for EVEN-PORT, with
the don't-fragment bit set when it asked for DONT-FRAGMENT. A port stays
taken until the allocation that had it ends.
"""

from __future__ import annotations

import random
import socket
import sys

from .listeners import family_of

PORT_ATTEMPTS = 64  # relay ports tried before an Allocate gets 508
# DONT-FRAGMENT: Linux sets DF on a socket with IP_MTU_DISCOVER = IP_PMTUDISC_DO (constants
# the socket module does not name); elsewhere the attribute is refused as unknown.
CAN_SET_DONT_FRAGMENT = sys.platform == "linux"
_IP_MTU_DISCOVER, _IPV6_MTU_DISCOVER, _PMTUDISC_DO = 10, 23, 2


def set_dont_fragment(sock: socket.socket) -> None:
    if sock.family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_MTU_DISCOVER, _PMTUDISC_DO)
    else:
        sock.setsockopt(socket.IPPROTO_IP, _IP_MTU_DISCOVER, _PMTUDISC_DO)


class RelayPorts:
    """Ports ``first`` to ``last`` on ``host``, each bound by at most one allocation's socket."""

    def __init__(self, host: str, ports: tuple[int, int]):
        self.host = host
        self.first, self.last = ports
        self.used: set[int] = set()

    def bind(self, *, even: bool = False, dont_fragment: bool = False) -> socket.socket | None:
        """A non-blocking UDP socket on a free port of the range; None when none could be bound."""
        span = self.last - self.first + 1
        start = random.randrange(span)
        for attempt in range(min(span, PORT_ATTEMPTS)):
            port = self.first + (start + attempt) % span
            if port in self.used or (even and port % 2):
                continue
            sock = socket.socket(family_of(self.host), socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, port))
            except OSError:
                sock.close()
                continue
            sock.setblocking(False)
            if dont_fragment:
                set_dont_fragment(sock)
            self.used.add(port)
            return sock
        return None

    def release(self, port: int) -> None:
        """``port``'s allocation ended (its socket is closed or closing): it may be bound again."""
        self.used.discard(port)
