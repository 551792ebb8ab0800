"""Waiting for a condition: the one polling loop of the tests and the benchmark.

``wait_for`` blocks (plain threads, browsers driven synchronously); ``until``
is its trio twin. Both return the predicate's first truthy value and, at the
deadline, raise AssertionError saying what was awaited and what was seen last.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

import trio

T = TypeVar("T")


def _timed_out(what: str, timeout: float, last, details: Callable[[], str] | None) -> AssertionError:
    more = f"; {details()}" if details is not None else ""
    return AssertionError(f"timed out after {timeout} s waiting for {what} (last seen: {last!r}){more}")


def wait_for(predicate: Callable[[], T], timeout: float, what: str = "the condition", *, step: float = 0.2,
             details: Callable[[], str] | None = None) -> T:
    """``predicate()``'s first truthy value within ``timeout`` seconds, polled every ``step``.

    Raises AssertionError naming ``what``, the last value and ``details()`` (called then) otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise _timed_out(what, timeout, last, details)
        time.sleep(step)


async def until(predicate: Callable[[], T], timeout: float = 10.0, what: str = "the condition", *,
                step: float = 0.05, details: Callable[[], str] | None = None) -> T:
    """As :func:`wait_for`, sleeping in trio between polls."""
    deadline = trio.current_time() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if trio.current_time() >= deadline:
            raise _timed_out(what, timeout, last, details)
        await trio.sleep(step)
