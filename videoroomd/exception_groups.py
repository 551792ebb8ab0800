"""Reading the exception groups that trio's nurseries raise (pure code).

A nursery raises a group even for one failure, and a cancelled task's
``Cancelled`` may sit in a group beside real errors. These helpers answer the
three questions the package asks of a group: what must propagate and what is
a task's own failure (:func:`split_failure`), was it nothing but cancellation
(:func:`only_cancelled`), and is it one kind of error throughout
(:func:`only_kind`). Imports nothing of the package.
"""

from __future__ import annotations

import trio


def split_failure(error: BaseException) -> tuple[BaseException | None, Exception | BaseExceptionGroup | None]:
    """``(must propagate, the task's own failure)``; either may be None.

    Anything that is not an ``Exception`` (Cancelled, KeyboardInterrupt) must
    propagate, also from inside a group.
    """
    if isinstance(error, BaseExceptionGroup):
        failure, rest = error.split(Exception)
        return rest, failure
    if isinstance(error, Exception):
        return None, error
    return error, None


def only_cancelled(error: BaseException) -> bool:
    """True when ``error`` is trio's Cancelled, or a group (nested ones searched) of nothing else."""
    if isinstance(error, BaseExceptionGroup):
        return all(only_cancelled(e) for e in error.exceptions)
    return isinstance(error, trio.Cancelled)


def only_kind(group: BaseExceptionGroup, kind: type[BaseException]) -> BaseException | None:
    """The first exception in ``group`` (nested groups searched) when all of them are ``kind``; else None."""
    matched, rest = group.split(kind)
    if matched is None or rest is not None:
        return None
    first: BaseException = matched
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    return first
