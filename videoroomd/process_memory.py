"""Resident memory of a process and of its process tree, read from /proc (Linux; None elsewhere).

/metrics shows the daemon's own RSS, each media worker's, and the sum over
the daemon's process tree (the daemon and every process below it: its
workers, and whatever they start), so that memory kept by a worker after
churn shows where an operator looks. Reading costs a few small files per
process, done when /metrics is scraped.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")
MAX_TREE = 1024  # processes walked at most: a tree is the daemon and a worker per core


def rss_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` in bytes; None when it is gone or unknown here."""
    try:
        with open(PROC / str(pid) / "status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None  # a zombie, or a kernel thread: no resident set


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from each of its threads' children lists)."""
    found: list[int] = []
    try:
        tasks = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return found
    for task in tasks:
        try:
            text = (PROC / str(pid) / "task" / task / "children").read_text()
        except OSError:
            continue
        found.extend(int(child) for child in text.split())
    return found


def tree_rss_bytes(pid: int | None = None) -> int | None:
    """The resident memory of ``pid`` (default: this process) and of every process below it,
    summed; None where /proc cannot tell. Pages shared between them count once per process."""
    root = os.getpid() if pid is None else pid
    if rss_bytes(root) is None:
        return None
    total, seen, queue = 0, set(), [root]
    while queue and len(seen) < MAX_TREE:
        current = queue.pop()
        if current in seen:
            continue
        seen.add(current)
        total += rss_bytes(current) or 0
        queue.extend(children(current))
    return total
