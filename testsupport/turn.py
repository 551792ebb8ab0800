"""A real TURN server for tests: Debian's coturn, on loopback only."""

from __future__ import annotations

import shutil
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from testsupport.daemon import free_port

USER, PASSWORD = "videoroomd", "turn-secret"


@contextmanager
def turn_server(workdir: Path):
    """Run turnserver on 127.0.0.1; yields its port. Relays only on loopback."""
    binary = shutil.which("turnserver")
    if binary is None:
        raise RuntimeError("coturn is needed for the official-client tests: apt-get install coturn (tests/run.sh does)")
    port = free_port()
    relay = 40000 + port % 20000
    log = workdir / "turnserver.log"
    process = subprocess.Popen(
        [binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
         f"--min-port={relay}", f"--max-port={relay + 200}", "--allow-loopback-peers", "--lt-cred-mech",
         f"--user={USER}:{PASSWORD}", "--realm=videoroomd", "--no-tls", "--no-dtls", "--no-cli",
         "--no-stun-backward-compatibility", f"--log-file={log}", "--simple-log", "--pidfile=" + str(workdir / "turn.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited at once: {log.read_text() if log.exists() else ''}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
