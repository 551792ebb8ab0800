"""A crashing child is restarted with growing delays, and given up on when it keeps crashing."""

from __future__ import annotations

import trio
from structlog.testing import capture_logs

from videoroomd.daemon.supervisor import ChildState, RestartPolicy, supervise


async def test_crashing_child_restarts_with_exponential_backoff(autojump_clock):
    starts: list[float] = []

    async def child():
        starts.append(trio.current_time())
        if len(starts) <= 3:
            raise RuntimeError(f"crash {len(starts)}")
        # the fourth run is healthy and ends on purpose

    state = ChildState("room:x")
    with capture_logs() as logs:
        await supervise("room:x", child, state, RestartPolicy(first_delay=1, max_delay=3, max_crashes=10, window=60))
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    assert gaps == [1, 2, 3]  # doubled, then capped at max_delay
    assert state.status == "stopped" and state.restarts == 3 and state.last_error == "RuntimeError: crash 3"
    crashes = [e for e in logs if e["event"] == "crashed; restarting"]
    assert [e["error"] for e in crashes] == ["RuntimeError: crash 1", "RuntimeError: crash 2", "RuntimeError: crash 3"]


async def test_child_crashing_too_often_is_given_up_loudly(autojump_clock):
    runs = 0

    async def child():
        nonlocal runs
        runs += 1
        raise ValueError("broken room")

    state = ChildState("room:bad")
    with capture_logs() as logs:
        await supervise("room:bad", child, state, RestartPolicy(first_delay=0.1, max_crashes=4, window=60))
    assert runs == 4 and state.status == "failed"
    gave_up = [e for e in logs if e["event"] == "giving up: crashed too often"]
    assert gave_up and gave_up[0]["log_level"] == "error" and gave_up[0]["child"] == "room:bad"


async def test_a_child_that_ran_long_enough_is_forgiven(autojump_clock):
    runs = 0

    async def child():
        nonlocal runs
        runs += 1
        if runs < 8:
            await trio.sleep(100)  # healthy for longer than the window, then crashes
            raise OSError("hiccup")

    state = ChildState("room:flaky")
    await supervise("room:flaky", child, state, RestartPolicy(first_delay=1, max_crashes=3, window=60))
    assert runs == 8 and state.status == "stopped"


async def test_cancellation_passes_through(autojump_clock):
    state = ChildState("room:x")
    with trio.move_on_after(5) as scope:
        await supervise("room:x", trio.sleep_forever, state)
    assert scope.cancelled_caught and state.status == "running"
