"""Each connection's task is wrapped once: whatever goes wrong in it ends that connection, never the daemon.

Cancellation (and anything else that is not an ``Exception``, such as
KeyboardInterrupt) still propagates, also from inside exception groups
raised by nurseries within the connection; the rest is handed to
``on_failure`` and swallowed.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from ..exception_groups import split_failure


async def contained(work: Callable[[], Awaitable[None]], on_failure: Callable[[BaseException], None]) -> None:
    """Run ``work()``; its failures go to ``on_failure`` instead of up. Returns normally unless cancelled."""
    try:
        await work()
    except BaseException as error:
        propagate, failure = split_failure(error)
        if failure is not None:
            on_failure(failure)
        if propagate is error:
            raise
        if propagate is not None:
            raise propagate from None
