"""The one reading of nursery exception groups: cancellation apart from failures, one kind throughout."""

from __future__ import annotations

import pytest
import trio

from videoroomd.exception_groups import only_cancelled, only_kind, split_failure


async def _group_of_nursery(*errors: BaseException) -> BaseExceptionGroup:
    async def fail(error: BaseException) -> None:
        raise error

    with pytest.raises(BaseExceptionGroup) as caught:
        async with trio.open_nursery() as nursery:
            for error in errors:
                nursery.start_soon(fail, error)
    return caught.value


async def test_a_cancelled_nursery_is_only_cancelled_and_a_failure_beside_it_is_not():
    with trio.CancelScope() as scope:
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                nursery.start_soon(trio.sleep_forever)
                await trio.sleep(0)
                scope.cancel()
                await trio.sleep_forever()
        except BaseException as error:
            assert only_cancelled(error)
            raise
    group = await _group_of_nursery(ValueError("bug"))
    assert not only_cancelled(group)
    assert not only_cancelled(ValueError("bug"))


async def test_only_kind_finds_the_first_error_when_all_are_that_kind():
    lost = OSError("worker gone")
    nested = BaseExceptionGroup("outer", [BaseExceptionGroup("inner", [lost]), OSError("again")])
    assert only_kind(nested, OSError) is lost
    mixed = await _group_of_nursery(OSError("gone"), KeyError("bug"))
    assert only_kind(mixed, OSError) is None
    assert only_kind(ExceptionGroup("x", [KeyError("k")]), OSError) is None


def test_split_failure_keeps_what_must_propagate_apart():
    bare_interrupt = KeyboardInterrupt()
    assert split_failure(bare_interrupt) == (bare_interrupt, None)
    propagate, failure = split_failure(BaseExceptionGroup("x", [OSError("o"), KeyboardInterrupt()]))
    assert [type(e) for e in propagate.exceptions] == [KeyboardInterrupt]
    assert [type(e) for e in failure.exceptions] == [OSError]
