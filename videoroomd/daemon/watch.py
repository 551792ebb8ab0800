"""Notice when the config file changes on disk (polling: no inotify dependency)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Awaitable, Callable

import trio

SETTLE = 0.2  # seconds a changed file must stay unchanged before it is read


def fingerprint(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


async def watch_file(
    path: Path, interval: float, on_change: Callable[[], Awaitable[None]], last: tuple[int, int, int] | None
) -> None:
    """Call ``on_change()`` each time ``path`` differs from ``last`` (written, replaced, re-created).

    ``last`` is the fingerprint of the file as it was loaded. A file that
    vanishes is not a change (editors delete and re-create); its return is.
    Never returns.
    """
    while True:
        await trio.sleep(interval)
        current = fingerprint(path)
        if current is None or current == last:
            continue
        # Wait for the writer to finish: the fingerprint must hold still.
        while True:
            await trio.sleep(SETTLE)
            settled = fingerprint(path)
            if settled == current or settled is None:
                break
            current = settled
        last = current
        if current is not None:
            await on_change()
