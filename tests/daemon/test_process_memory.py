"""/metrics reads resident memory over the daemon's process tree: a child's memory counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from videoroomd.metrics import Metrics
from videoroomd.process_memory import children, rss_bytes, tree_rss_bytes

HELD = 64 * 1024 * 1024  # bytes the child touches and holds


def test_a_childs_resident_memory_counts_in_the_tree_and_a_workers_in_metrics():
    child = subprocess.Popen([sys.executable, "-c", f"import sys, time; x = bytearray({HELD}); print(flush=True); time.sleep(60)"],
                             stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # it holds its memory now
        assert child.pid in children(os.getpid())
        own, held = rss_bytes(os.getpid()), rss_bytes(child.pid)
        assert held > HELD
        assert tree_rss_bytes() >= own + held - 8 * 1024 * 1024  # our own RSS moves a little meanwhile
        page = Metrics(list, lambda: [{"worker": "1", "running": True, "rooms": 0, "cpu_seconds": 0.0,
                                       "packets_forwarded": 0, "restarts": 0, "pid": child.pid}]).render().decode()
        (line,) = [l for l in page.splitlines() if l.startswith('videoroomd_media_worker_resident_bytes{worker="1"}')]
        assert float(line.split()[1]) > HELD
        (tree,) = [l for l in page.splitlines() if l.startswith("videoroomd_process_tree_resident_bytes ")]
        assert float(tree.split()[1]) > HELD + own / 2
    finally:
        child.kill()
        child.wait()
    time.sleep(0.1)
    assert rss_bytes(child.pid) is None  # gone: nothing to read
