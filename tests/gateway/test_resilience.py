"""The circuit breaker, retry budget and token bucket, driven by a fake clock."""

from __future__ import annotations

import pytest

from minga.gateway import BreakerPolicy, BreakerState, CircuitBreaker, RetryBudget, TokenBucket


def test_breaker_opens_after_consecutive_failures_only() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=3, open_for=1.0))
    for outcome in (False, False, True, False, False):
        assert b.acquire(0.0)
        b.record(outcome, 0.0)
    assert b.state is BreakerState.CLOSED and b.failures == 2
    b.record(False, 0.0)
    assert b.state is BreakerState.OPEN
    assert not b.available(0.5) and not b.acquire(0.5)


def test_breaker_half_open_lets_one_probe_and_closes_on_success() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=1, open_for=1.0))
    b.record(False, 10.0)
    assert b.state is BreakerState.OPEN
    assert b.available(11.0)
    assert b.acquire(11.0) and b.state is BreakerState.HALF_OPEN
    assert not b.available(11.0) and not b.acquire(11.1), "only one probe at a time"
    b.record(True, 11.2)
    assert b.state is BreakerState.CLOSED and b.acquire(11.2)


def test_breaker_failed_probe_reopens_with_a_doubled_wait_up_to_the_cap() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=1, open_for=1.0, max_open_for=3.0))
    b.record(False, 0.0)
    assert b.acquire(1.0)
    b.record(False, 1.0)
    assert b.state is BreakerState.OPEN
    assert not b.available(2.5) and b.available(3.0)  # waits 2 s now
    assert b.acquire(3.0)
    b.record(False, 3.0)
    assert not b.available(5.9) and b.available(6.0)  # 4 s capped at 3 s
    b.acquire(6.0)
    b.record(True, 6.0)
    b.record(False, 7.0)
    assert b.state is BreakerState.OPEN and b.available(8.0), "a success resets the wait"


def test_breaker_release_frees_the_probe_without_a_verdict() -> None:
    b = CircuitBreaker(BreakerPolicy(failures=1, open_for=1.0))
    b.record(False, 0.0)
    assert b.acquire(1.0)
    b.release()
    assert b.state is BreakerState.HALF_OPEN and b.acquire(1.0)


def test_breaker_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failures=0)
    with pytest.raises(ValueError):
        BreakerPolicy(open_for=5, max_open_for=1)


def test_retry_budget_allows_twenty_percent_above_the_floor() -> None:
    budget = RetryBudget(0.2, min_per_s=0.0, window=10.0)
    for _ in range(100):
        budget.request(1.0)
    allowed = sum(budget.try_retry(1.0) for _ in range(50))
    assert allowed == 20
    assert budget.counts(1.0) == (100, 20)


def test_retry_budget_floor_allows_retries_at_low_traffic() -> None:
    budget = RetryBudget(0.2, min_per_s=1.0, window=10.0)
    budget.request(0.0)
    assert sum(budget.try_retry(0.0) for _ in range(20)) == 10


def test_retry_budget_window_slides() -> None:
    budget = RetryBudget(0.5, min_per_s=0.0, window=10.0, buckets=10)
    for _ in range(10):
        budget.request(0.0)
    assert sum(budget.try_retry(0.5) for _ in range(10)) == 5
    assert not budget.try_retry(9.5)
    # 10.5 s later the first slot has left the window: no requests, no retries
    assert budget.counts(10.5) == (0, 0)
    assert not budget.try_retry(10.5)
    for _ in range(4):
        budget.request(10.5)
    assert budget.try_retry(10.6) and budget.try_retry(10.6) and not budget.try_retry(10.6)


def test_retry_budget_after_a_long_pause_forgets_everything() -> None:
    budget = RetryBudget(0.2, min_per_s=0.0, window=1.0, buckets=4)
    for _ in range(50):
        budget.request(0.0)
    assert budget.counts(1000.0) == (0, 0)


def test_token_bucket_bursts_then_paces() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert [bucket.take(0.0) for _ in range(5)] == [0.0] * 5
    wait = bucket.take(0.0)
    assert wait == pytest.approx(0.1)
    assert bucket.take(0.05) == pytest.approx(0.05)
    assert bucket.take(0.1) == 0.0
    assert not bucket.full(0.1) and bucket.full(10.0)
    assert bucket.tokens == 5, "never more than the burst"


def test_token_bucket_retry_after_is_whole_seconds_at_least_one() -> None:
    assert TokenBucket.retry_after(0.01) == 1
    assert TokenBucket.retry_after(1.2) == 2
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, now=0)
