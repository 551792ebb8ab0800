"""``python -m videoroomd.media.workers.process``: one media worker process, started by the daemon.

It serves the control plane on the socket whose file descriptor it is given
(``--fd``), takes the sockets of TURN clients handed to it on another
(``--handoff-fd``, see :mod:`.turn_relay`), logs like the daemon (``--log-level``, ``--log-format``,
``--log-file``), dies with the daemon (the parent-death signal, and the end
of its socket), and ignores the terminal's Ctrl-C: the daemon decides when
its workers stop. It imports aiortc without PyAV (:mod:`..webrtc.compat.codec_free`):
it forwards packets and never decodes or encodes them, and with dnspython
loaded on first use (:mod:`..webrtc.compat.lazy_dns`), and pylibsrtp when a connection first needs
SRTP (:mod:`..webrtc.compat.lazy_srtp`).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import socket
import sys
from pathlib import Path

import structlog

from ...logs.setup import configure
from ..webrtc.compat import codec_free, lazy_dns, lazy_srtp
from . import event_loop
from .heap import give_back_free_memory

PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the daemon's process ends; exit now if it has already."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the end of the socket still stops the worker
        pass
    if os.getppid() != parent:
        sys.exit(0)


def load_media_server():
    """Import the worker's server the way a worker process does; returns its ``serve`` coroutine function.

    Before aiortc is imported: a forwarding worker never decodes or encodes, so PyAV's codec
    libraries (about 25 MiB resident) stay out of it, and dnspython (aioice's mDNS, about
    4 MiB) loads when an mDNS candidate first needs it, pylibsrtp (about 4.4 MiB) when a connection's
    DTLS first needs SRTP. Hence the server is imported only here.
    Raises RuntimeError when aiortc, PyAV or dnspython is already imported in this process.
    """
    codec_free.install()
    lazy_dns.install()
    lazy_srtp.install()
    from .server import serve
    return serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="videoroomd-media-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--handoff-fd", type=int)
    parser.add_argument("--name", default="media")
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--log-format", default="auto")
    parser.add_argument("--log-file", type=Path)
    args = parser.parse_args(argv)
    serve = load_media_server()
    die_with_parent(args.parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure(args.log_level, args.log_format, args.log_file)
    structlog.contextvars.bind_contextvars(worker=args.name)
    give_back_free_memory()  # what importing left behind: about 0.5 MiB of an idle worker
    sock = socket.socket(fileno=args.fd)
    handoff = socket.socket(fileno=args.handoff_fd) if args.handoff_fd is not None else None
    event_loop.run(serve(sock, parent=args.parent, handoff=handoff))
    return 0


if __name__ == "__main__":
    sys.exit(main())
