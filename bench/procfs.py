"""CPU time and memory of processes and of the machine, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _user_system(stat_path: Path) -> tuple[float, float]:
    text = stat_path.read_text()
    fields = text[text.rindex(")") + 2:].split()  # the name may hold spaces; fields start at "state"
    return int(fields[11]) / TICK, int(fields[12]) / TICK  # utime, stime


def _cpu_fields(stat_path: Path) -> float:
    return sum(_user_system(stat_path))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of every thread of ``pid`` so far."""
    return _cpu_fields(Path(f"/proc/{pid}/stat"))


def system_seconds(pid: int) -> float:
    """The part of :func:`cpu_seconds` spent in the kernel (system calls: sending UDP, mostly)."""
    return _user_system(Path(f"/proc/{pid}/stat"))[1]


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each live thread of ``pid``."""
    times = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            times[int(task.name)] = _cpu_fields(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
    return times


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks after boot), to tell it from a later process given the
    same pid; None when there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(text[text.rindex(")") + 2:].split()[19])


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS), MiB; raises FileNotFoundError for a process that is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` (Pss of /proc/PID/smaps_rollup), MiB: each resident page
    divided by the number of processes that map it, so that pages shared by a tree (libpython,
    cryptography's library, libcrypto) count once over the tree's sum. Raises FileNotFoundError
    for a process that is gone."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_memory_mib(root: int) -> tuple[float, float]:
    """(RSS, PSS) of ``root`` and every live process below it, each summed, MiB. The RSS sum counts
    a page that several of them map once per process; the PSS sum counts it once."""
    rss = pss = 0.0
    for pid in tree_pids(root):
        try:
            rss, pss = rss + rss_mib(pid), pss + pss_mib(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return rss, pss


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])       # guest time is already counted in user
    return total - idle, total


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    return {"cpus": os.cpu_count(), "cpu_model": model, "ram_gib": round(memory / 1024 / 1024, 1)}


def tree_pids(root: int) -> set[int]:
    """``root`` and every live process below it (a daemon's media workers, a browser's helpers)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                text = (entry / "stat").read_text()
                parents[int(entry.name)] = int(text[text.rindex(")") + 2:].split()[1])
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return tree


def tree_usage(root: int) -> tuple[float, float, dict[tuple[int, int], float]]:
    """(CPU seconds, of which system, CPU seconds of each (pid, thread id)) of ``root`` and the
    live processes below it. A process that ended meanwhile is left out."""
    cpu = system = 0.0
    threads: dict[tuple[int, int], float] = {}
    for pid in tree_pids(root):
        try:
            user_time, system_time = _user_system(Path(f"/proc/{pid}/stat"))
            for tid, seconds in thread_cpu_seconds(pid).items():
                threads[(pid, tid)] = seconds
        except (FileNotFoundError, ProcessLookupError):
            continue
        cpu += user_time + system_time
        system += system_time
    return cpu, system, threads


def tree_cpu_seconds(root: int) -> float:
    """CPU time of ``root`` and every process below it (a browser and its helpers), live ones only."""
    total = 0.0
    for pid in tree_pids(root):
        try:
            total += cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total
