"""What the contract suites of a seam share: its implementations, each with the clock and lease time it
runs on, as pytest fixtures parametrized by implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncContextManager, Callable

import pytest
import trio


@dataclass(frozen=True)
class Implementation:
    open: Callable[..., AsyncContextManager[Any]]  # (its fixture's value, *what the suite passes) -> the seam
    ttl: float
    clock: Callable[[], trio.abc.Clock]
    needs: str | None = None  # "redis": it runs on the test run's Redis server, under a prefix of its own


def implementation_fixtures(implementations: dict[str, Implementation]):
    """The fixtures ``implementation`` (one per entry), ``clock`` (the trio clock the test runs on:
    pytest-trio takes the Clock among a test's arguments) and ``ttl``; assign them in the suite's module."""

    @pytest.fixture(params=sorted(implementations), name="implementation")
    def implementation(request) -> Implementation:
        return implementations[request.param]

    @pytest.fixture(name="clock")
    def clock(implementation):
        return implementation.clock()

    @pytest.fixture(name="ttl")
    def ttl(implementation) -> float:
        return implementation.ttl

    return implementation, clock, ttl


def needed(request, implementation: Implementation) -> Any:
    """What ``implementation`` runs on: (the Redis server, a key prefix of the test's own), or None."""
    if implementation.needs == "redis":
        return request.getfixturevalue("redis_server"), request.getfixturevalue("redis_prefix")
    return None
