"""Janus (Debian's ``janus``, 1.x) started by the benchmark: the VideoRoom plugin and the WebSocket API on 127.0.0.1.

The config is made for the run in a directory of its own: the plugins and
transports folders hold a link to the VideoRoom plugin and to the WebSocket
transport only, and the event handler and logger folders are empty, so Janus
loads nothing else. No STUN server; media uses a fixed UDP port range. Janus
never gathers candidates on a loopback interface, so its media gathers on one
address only, ``media_address``: the benchmark gives it this machine's end of a
veth pair of its own (:func:`testsupport.netns.new_host`, a private range that
nothing routes), where the participants gather too. Packets between two
addresses of this machine take the same local path as on 127.0.0.1; nothing
leaves the machine. Its API listens on 127.0.0.1. One room (``ROOM``) takes
every participant, VP8 and Opus only, as videoroomd's rooms in ``bench.sfu``.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import trio

from . import procfs
from .daemon import free_port
from .processes import Child

BINARY = "janus"
LIBRARIES = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGIN = "libjanus_videoroom.so"
TRANSPORT = "libjanus_websockets.so"
ROOM = 1234
RTP_PORTS = (41000, 41999)  # UDP ports Janus's media may use (two per peer connection at most, with bundle)
PROTOCOL = "janus-protocol"  # the WebSocket subprotocol Janus's API speaks


def binary() -> str | None:
    """The path of the ``janus`` program, or None where it is not installed."""
    return shutil.which(BINARY)


def version() -> str:
    """What ``janus --version`` says of itself, on one line."""
    import subprocess  # only here: the rest of the module starts Janus through processes.Child

    done = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=10)
    lines = [line.split(":", 1)[1].strip() for line in done.stdout.splitlines() if line.startswith("Janus version")]
    return lines[0] if lines else done.stdout.strip()[:80]


def config_files(folder: Path, port: int, max_publishers: int, log_file: Path, media_address: str) -> Path:
    """Write the configuration into ``folder``; returns the path of ``janus.jcfg``."""
    for kind, keep in (("plugins", PLUGIN), ("transports", TRANSPORT), ("events", None), ("loggers", None)):
        (folder / kind).mkdir(parents=True, exist_ok=True)
        if keep is not None and not (folder / kind / keep).exists():
            (folder / kind / keep).symlink_to(LIBRARIES / kind / keep)
    low, high = RTP_PORTS
    (folder / "janus.jcfg").write_text(f"""general: {{
    configs_folder = "{folder}"
    plugins_folder = "{folder / 'plugins'}"
    transports_folder = "{folder / 'transports'}"
    events_folder = "{folder / 'events'}"
    loggers_folder = "{folder / 'loggers'}"
    log_to_stdout = false
    log_to_file = "{log_file}"
    debug_level = 3
    session_timeout = 60
}}
media: {{
    rtp_port_range = "{low}-{high}"
}}
nat: {{
    ice_enforce_list = "{media_address}"
    ignore_mdns = true
}}
events: {{
    broadcast = false
}}
""")
    (folder / "janus.transport.websockets.jcfg").write_text(f"""general: {{
    json = "plain"
    ws = true
    ws_port = {port}
    ws_ip = "127.0.0.1"
    wss = false
}}
admin: {{
    admin_ws = false
    admin_wss = false
}}
""")
    (folder / "janus.plugin.videoroom.jcfg").write_text(f"""general: {{
}}
room-{ROOM}: {{
    description = "bench"
    publishers = {max_publishers}
    bitrate = 0
    fir_freq = 0
    audiocodec = "opus"
    videocodec = "vp8"
    notify_joining = false
}}
""")
    return folder / "janus.jcfg"


class Janus:
    """One Janus process for the run, with its config in ``workdir / "janus"``."""

    def __init__(self, workdir: Path, max_publishers: int, media_address: str, cpus: set[int] | None = None):
        self.workdir = workdir
        self.media_address = media_address
        self.cpus = cpus
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.log_file = workdir / "janus.log"
        self.config = config_files(workdir / "janus", self.port, max_publishers, self.log_file, media_address)
        self.child: Child | None = None

    @property
    def pid(self) -> int:
        assert self.child is not None
        return self.child.pid

    async def start(self, timeout: float = 30.0) -> None:
        """Start Janus and wait until its WebSocket port takes connections; raises RuntimeError
        when it exits first or is not listening within ``timeout`` seconds (its log says why)."""
        argv = [BINARY, "--config", str(self.config), "--configs-folder", str(self.config.parent), "--disable-colors"]
        self.child = Child(argv, self.workdir / "janus.out", self.workdir, cpus=self.cpus)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.child.proc.poll() is not None:
                raise RuntimeError(f"janus exited with {self.child.proc.returncode}; see {self.log_file}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                await trio.sleep(0.2)
        raise RuntimeError(f"janus not listening on 127.0.0.1:{self.port} after {timeout:.0f} s; see {self.log_file}")

    async def stop(self) -> int | None:
        return None if self.child is None else await self.child.stop()

    def usage(self) -> tuple[float, float, dict[tuple[int, int], float]]:
        """CPU seconds of Janus and any process below it, of which system, and per thread."""
        return procfs.tree_usage(self.pid)

    def rss_mib(self) -> float:
        """Resident memory of Janus's process tree, MiB."""
        return sum(procfs.rss_mib(pid) for pid in procfs.tree_pids(self.pid) if os.path.exists(f"/proc/{pid}"))
