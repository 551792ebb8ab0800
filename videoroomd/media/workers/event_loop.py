"""The event loop the media runs on: uvloop's where it is installed, asyncio's otherwise.

A media worker wakes once for every datagram a call sends it (about 230 a second
for each 2-person call); uvloop's turn of the loop, its receive and its timers
cost less per wakeup than asyncio's selector loop. Nothing in the media depends
on which loop it is: what reaches into a transport is in
:mod:`..webrtc.compat` and works with either.
"""

from __future__ import annotations

import asyncio
from typing import Any, Coroutine, TypeVar

try:
    import uvloop
except ImportError:  # a platform without uvloop: asyncio's own loop
    uvloop = None

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop of the kind the media runs on."""
    return uvloop.new_event_loop() if uvloop is not None else asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop from :func:`new_event_loop`; returns what ``main`` returns."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
