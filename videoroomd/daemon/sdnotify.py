"""systemd's notification protocol (sd_notify(3)) over $NOTIFY_SOCKET, no library needed."""

from __future__ import annotations

import os
import socket

import structlog

log = structlog.get_logger("videoroomd.sdnotify")


class Notifier:
    """Sends ``READY=1``, ``RELOADING=1``, ``STOPPING=1``, ``WATCHDOG=1`` to systemd.

    Without ``$NOTIFY_SOCKET`` (not run by systemd) every call does nothing.
    A send that fails is logged once and otherwise ignored: systemd going
    away must not take the daemon with it.
    """

    def __init__(self, environ: dict[str, str] | None = None):
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self._address = address or None
        self._socket: socket.socket | None = None
        self._warned = False
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        watchdog = usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid()))
        self.watchdog_interval: float | None = int(usec) / 1e6 / 2 if watchdog else None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, *fields: str) -> None:
        if self._address is None:
            return
        message = "\n".join(fields).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.sendto(message, self._address)
        except OSError as error:
            if not self._warned:
                log.warning("systemd notification failed", socket=self._address, error=str(error))
                self._warned = True

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def reloading(self) -> None:
        # systemd ≥ 253 wants the monotonic time with RELOADING=1 for Type=notify-reload.
        usec = int(_monotonic_usec())
        self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _monotonic_usec() -> float:
    import time

    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6
