"""The one backoff: delays that grow with failures in a row, the failures remembered, and the retry loop."""

from __future__ import annotations

import pytest
import trio

from videoroomd.backoff import Backoff, recent, retry


def test_delays_follow_the_schedule_and_the_last_repeats():
    backoff = Backoff((0.2, 1.0, 5.0))
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 10)] == [0.2, 1.0, 5.0, 5.0, 5.0]
    assert backoff.delay(0) == 0.2


def test_doubling_stops_at_its_cap():
    assert Backoff.doubling(1, 3).delays == (1, 2, 3)
    assert Backoff.doubling(0.5, 30).delays == (0.5, 1, 2, 4, 8, 16, 30)
    assert Backoff.doubling(0.01, 0.01).delays == (0.01,)
    assert Backoff.doubling(0, 30).delays == (0,)


def test_a_schedule_without_delays_or_with_negative_ones_is_refused():
    with pytest.raises(ValueError):
        Backoff(())
    with pytest.raises(ValueError):
        Backoff((1.0, -1.0))


def test_recent_forgets_failures_a_window_old():
    assert recent([0.0, 50.0, 51.0, 90.0], 110.0, 60.0) == [51.0, 90.0, 110.0]  # 60 s old: forgotten
    assert recent([], 5.0, 60.0) == [5.0]


async def test_retry_waits_by_the_schedule_until_the_attempt_works(autojump_clock):
    tries: list[float] = []
    told: list[tuple[str, float]] = []

    async def attempt() -> str:
        tries.append(trio.current_time())
        if len(tries) < 3:
            raise OSError(f"try {len(tries)}")
        return "open"

    result = await retry(attempt, Backoff((1.0, 4.0)), tries=5, retry_on=(OSError,),
                         on_retry=lambda error, delay: told.append((str(error), delay)))
    assert result == "open"
    assert [b - a for a, b in zip(tries, tries[1:])] == [1.0, 4.0]
    assert told == [("try 1", 1.0), ("try 2", 4.0)]


async def test_retry_raises_the_last_failure_when_the_tries_run_out(autojump_clock):
    tries = 0

    async def attempt() -> None:
        nonlocal tries
        tries += 1
        raise OSError(f"try {tries}")

    with pytest.raises(OSError, match="try 3"):
        await retry(attempt, Backoff((1.0,)), tries=3, retry_on=(OSError,))
    assert tries == 3 and trio.current_time() == 2.0


async def test_retry_lets_other_errors_through_at_once(autojump_clock):
    async def attempt() -> None:
        raise KeyError("a bug, not a failure to retry")

    with pytest.raises(KeyError):
        await retry(attempt, Backoff((1.0,)), tries=3, retry_on=(OSError,))
    assert trio.current_time() == 0.0
