"""The pure parts of the edge: the log-line budget, the failure split, Host names, connection counts."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import trio
from hypothesis import given, strategies as st

from videoroomd.exception_groups import split_failure
from videoroomd.http.hosts import HostPolicy, is_loopback_host, proxy_headers, split_host
from videoroomd.http.isolation import contained
from videoroomd.http.limits import PER_ADDRESS, TOTAL, OpenConnections
from videoroomd.http.request import Request
from videoroomd.logs.ratelimit import LineBudget


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_budget_allows_n_lines_a_second_per_kind_then_says_how_many_were_left_out():
    clock = Clock()
    budget = LineBudget(per_second=3, clock=clock)
    assert [budget.take("bad frame") for _ in range(10)] == [0, 0, 0] + [None] * 7
    assert budget.take("other kind") == 0  # kinds have budgets of their own
    clock.now += 1.0
    assert budget.take("bad frame") == 7  # the first line after the silence says how many were left out
    assert budget.take("bad frame") == 0


def test_a_failure_group_is_split_from_what_must_propagate():
    propagate, failure = split_failure(BaseExceptionGroup("x", [ValueError("bug"), KeyboardInterrupt()]))
    assert isinstance(failure.exceptions[0], ValueError) and isinstance(propagate.exceptions[0], KeyboardInterrupt)
    assert split_failure(ValueError("bug"))[0] is None
    assert split_failure(ExceptionGroup("x", [OSError()]))[0] is None


async def test_contained_swallows_failures_but_not_cancellation():
    seen = []

    async def broken():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.sleep_forever)
            raise RuntimeError("bug")

    await contained(broken, seen.append)
    assert len(seen) == 1
    with trio.move_on_after(0.01) as scope:
        await contained(trio.sleep_forever, seen.append)
    assert scope.cancelled_caught and len(seen) == 1


@pytest.mark.parametrize("text, parsed", [
    ("Example.ORG", ("example.org", None)), ("example.org:8443", ("example.org", 8443)), ("[::1]:80", ("[::1]", 80)),
    ("127.0.0.1", ("127.0.0.1", None)), ("[::1", None), ("a b", None), ("x:99999", None), ("x:", None),
    ("[zz]", None), ("x:+1", None), ("x:١", None), ("", None), ("evil.example:80@x", None),
])
def test_host_headers_are_parsed_strictly(text, parsed):
    assert split_host(text) == parsed


def test_default_names_are_the_listen_address_and_loopback_and_a_wildcard_takes_any():
    policy = HostPolicy(None, "127.0.0.1")
    assert policy.accepts("127.0.0.1:8080") and policy.accepts("localhost") and policy.accepts("[::1]:1")
    assert not policy.accepts("evil.example") and not policy.accepts(None)
    assert HostPolicy(None, "0.0.0.0").accepts("anything.example")
    assert not HostPolicy(("meet.example.org",), "0.0.0.0").accepts("anything.example")
    assert HostPolicy(("meet.example.org",), "0.0.0.0").accepts("localhost:1", loopback_peer=True)
    assert not HostPolicy(("meet.example.org",), "0.0.0.0").accepts("localhost:1", loopback_peer=False)
    assert is_loopback_host("LOCALHOST:8080") and not is_loopback_host("localhost.evil.example")
    assert proxy_headers({"x-forwarded-anything": "1", "x-real-ip": "1", "host": "x"}) == ["x-forwarded-anything", "x-real-ip"]


def test_open_connections_are_capped_in_total_and_per_address():
    connections = OpenConnections()
    assert [connections.open("a", 3, 2) for _ in range(3)] == [None, None, PER_ADDRESS]
    assert connections.open("b", 3, 2) is None
    assert connections.open("c", 3, 2) == TOTAL
    connections.close("a")
    connections.close("a")
    assert connections.from_address("a") == 0 and connections.total == 1


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=200))
def test_request_properties_never_raise_on_odd_bytes(text):
    try:
        urlsplit("/" + text)
    except ValueError:
        return  # the listener answers 400 to such a target before any property is read
    request = Request("GET", "/" + text, {"cookie": text, "host": text}, ("127.0.0.1", 1))
    request.path, request.query, request.cookies, request.from_loopback, request.own_origin


def test_new_connections_per_address_come_in_bursts_of_twice_the_rate_and_a_reload_changes_it():
    from videoroomd.http.ratelimit import ConnectionRateLimit

    limit = ConnectionRateLimit(2)
    assert [limit.allow("192.0.2.1", 0.0) for _ in range(5)] == [True] * 4 + [False]
    assert limit.allow("192.0.2.9", 0.0)  # another address has its own
    assert limit.allow("192.0.2.1", 0.5) and not limit.allow("192.0.2.1", 0.5)  # 2 a second again
    limit.rate = 10
    assert limit.burst == 20 and limit.allow("192.0.2.1", 0.7)
