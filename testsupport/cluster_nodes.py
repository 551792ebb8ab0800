"""Several daemons of one cluster in one test process: each in its own folder, each link subscribed."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path
from typing import Callable, Iterable

import trio

from .signalling_helpers import running_daemon


async def cluster_daemons(stack: AsyncExitStack, tmp_path: Path, nodes: Iterable[str],
                          config: Callable[[str], str], subscribed_within: float = 5) -> list:
    """Start a daemon per node name on ``stack`` (its config: ``config(node)``, in ``tmp_path/node``)
    and return them, in order, once each one's cluster link listens on Redis (fails after
    ``subscribed_within`` seconds otherwise)."""
    daemons = []
    for node in nodes:
        (tmp_path / node).mkdir()
        daemons.append(await stack.enter_async_context(running_daemon(tmp_path / node, rooms=config(node))))
    for daemon in daemons:
        with trio.fail_after(subscribed_within):
            await daemon.cluster.bus.subscribed.wait()
    return daemons
