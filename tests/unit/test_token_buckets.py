"""The one token bucket: burst, refill, costs, the bound on keys, and the budgets built on it."""

from videoroomd.token_buckets import TokenBuckets
from videoroomd.turn.allocations import ByteBudget


def test_burst_then_refused_until_refilled():
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert buckets.wait("a", 0.0) == 0.5
    assert not buckets.take("a", 0.4)
    assert buckets.take("a", 0.5)


def test_keys_have_buckets_of_their_own():
    buckets = TokenBuckets(rate=1.0, burst=1)
    assert buckets.take("a", 0.0)
    assert not buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)


def test_refill_stops_at_burst():
    buckets = TokenBuckets(rate=10.0, burst=2)
    buckets.take("a", 0.0)
    assert buckets.tokens("a", 100.0) == 2.0
    assert [buckets.take("a", 100.0) for _ in range(3)] == [True, True, False]


def test_a_refused_take_spends_nothing():
    buckets = TokenBuckets(rate=100.0, burst=100)
    assert not buckets.take("u", 0.0, cost=150)
    assert buckets.take("u", 0.0, cost=100)
    assert buckets.wait("u", 0.0, cost=50) == 0.5


def test_forget_gives_a_fresh_burst():
    buckets = TokenBuckets(rate=0.01, burst=1)
    assert buckets.take("a", 0.0)
    buckets.forget("a")
    buckets.forget("never seen")
    assert buckets.take("a", 0.0)


def test_keys_remembered_are_bounded_least_recently_used_first():
    buckets = TokenBuckets(rate=0.01, burst=1, max_tracked=2)
    for key in "abc":
        assert buckets.take(key, 0.0)
    assert len(buckets) == 2
    assert buckets.take("a", 0.0)      # forgotten, so full again
    assert not buckets.take("c", 0.0)  # still remembered, still empty


def test_byte_budget_is_a_second_of_bytes_and_zero_means_no_limit():
    budget = ByteBudget(1000)
    assert budget.spend("u", 800, 0.0)
    assert not budget.spend("u", 300, 0.0)
    assert budget.spend("u", 300, 0.1)
    assert ByteBudget(0).spend("u", 10**9, 0.0)
    budget.rate = 0
    assert budget.spend("u", 10**9, 0.0)
