"""The gateway's resilience state machines: circuit breaker, retry budget, token bucket.

Pure and synchronous: every method takes ``now`` (seconds on a monotonic clock), so tests
drive them with a fake clock and no network, and the proxy passes ``loop.time()``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

__all__ = ["BreakerPolicy", "BreakerState", "CircuitBreaker", "RetryBudget", "TokenBucket"]


class BreakerState(enum.StrEnum):
    """``closed``: requests flow; ``open``: none is sent; ``half_open``: one probe decides."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and for how long.

    ``failures``: consecutive failed requests that open it. ``open_for``: seconds it stays
    open before one probe may go (half-open); each failed probe doubles the wait, up to
    ``max_open_for`` seconds.
    """

    failures: int = 5
    open_for: float = 1.0
    max_open_for: float = 30.0

    def __post_init__(self) -> None:
        if self.failures < 1:
            raise ValueError(f"failures must be at least 1, not {self.failures}")
        if self.open_for <= 0 or self.max_open_for < self.open_for:
            raise ValueError("open_for must be > 0 and no more than max_open_for")


class CircuitBreaker:
    """A circuit breaker for one upstream instance.

    Transitions::

        closed    --`failures` consecutive failures-->  open
        open      --`open_for` elapsed, acquire()-->    half_open (one probe in flight)
        half_open --probe succeeds-->                   closed
        half_open --probe fails-->                      open (wait doubled, up to max_open_for)

    Use :meth:`available` to filter candidates without side effects, :meth:`acquire` for the
    one chosen (it may start the probe), then :meth:`record` with the outcome.
    """

    __slots__ = ("_open_for", "_opened_at", "_probing", "failures", "policy", "state")

    def __init__(self, policy: BreakerPolicy | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self.state = BreakerState.CLOSED
        self.failures = 0
        self._opened_at = 0.0
        self._open_for = self.policy.open_for
        self._probing = False

    def available(self, now: float) -> bool:
        """Whether a request could be sent now (no state changes)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now - self._opened_at >= self._open_for
        return not self._probing

    def acquire(self, now: float) -> bool:
        """Claim the right to send one request now; False when the breaker refuses."""
        if self.state is BreakerState.CLOSED:
            return True
        if not self.available(now):
            return False
        self.state = BreakerState.HALF_OPEN
        self._probing = True
        return True

    def record(self, ok: bool, now: float) -> None:
        """The outcome of a request sent after :meth:`acquire`."""
        if ok:
            self.failures = 0
            if self.state is not BreakerState.CLOSED:
                self.state = BreakerState.CLOSED
                self._open_for = self.policy.open_for
            self._probing = False
            return
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open_for = min(self._open_for * 2, self.policy.max_open_for)
            self._trip(now)
        elif self.state is BreakerState.CLOSED and self.failures >= self.policy.failures:
            self._trip(now)

    def release(self) -> None:
        """A request sent after :meth:`acquire` ended with no verdict on the upstream (the client left)."""
        self._probing = False

    def _trip(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = now
        self._probing = False


class RetryBudget:
    """Retries may add at most ``ratio`` extra load, plus ``min_per_s`` retries per second.

    Requests and retries are counted over a sliding window of ``window`` seconds, kept in
    ``buckets`` slots; a retry is allowed while
    ``retries < ratio * requests + min_per_s * window``.
    """

    __slots__ = ("_requests", "_retries", "_slot", "_width", "min_per_s", "ratio", "window")

    def __init__(
        self, ratio: float = 0.2, *, min_per_s: float = 5.0, window: float = 10.0, buckets: int = 10
    ) -> None:
        if not 0 <= ratio <= 1:
            raise ValueError(f"ratio must be within [0, 1], not {ratio}")
        if window <= 0 or buckets < 1:
            raise ValueError("window must be > 0 seconds and buckets >= 1")
        self.ratio = ratio
        self.min_per_s = min_per_s
        self.window = window
        self._width = window / buckets
        self._requests = [0] * buckets
        self._retries = [0] * buckets
        self._slot = 0  # absolute index of the newest slot

    def _advance(self, now: float) -> int:
        slot = int(now // self._width)
        n = len(self._requests)
        if slot > self._slot:
            for s in range(max(self._slot + 1, slot - n + 1), slot + 1):
                self._requests[s % n] = 0
                self._retries[s % n] = 0
            self._slot = slot
        return self._slot % n

    def request(self, now: float) -> None:
        """A first attempt was made."""
        self._requests[self._advance(now)] += 1

    def try_retry(self, now: float) -> bool:
        """Spend a retry if the budget allows one; False means do not retry."""
        i = self._advance(now)
        allowed = self.ratio * sum(self._requests) + self.min_per_s * self.window
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[i] += 1
        return True

    def counts(self, now: float) -> tuple[int, int]:
        """(requests, retries) in the current window."""
        self._advance(now)
        return sum(self._requests), sum(self._retries)


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; starts full.

    :meth:`take` spends tokens or says how long to wait for them.
    """

    __slots__ = ("_stamp", "burst", "rate", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 per second and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self._stamp = now

    def _refill(self, now: float) -> None:
        if now > self._stamp:
            self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def take(self, now: float, n: float = 1.0) -> float:
        """Spend ``n`` tokens and return 0.0, or spend nothing and return the seconds until ``n`` are there."""
        self._refill(now)
        if self.tokens >= n:
            self.tokens -= n
            return 0.0
        return (n - self.tokens) / self.rate

    def full(self, now: float) -> bool:
        """No token spent that has not come back (a bucket that can be forgotten)."""
        self._refill(now)
        return self.tokens >= self.burst

    @staticmethod
    def retry_after(wait: float) -> int:
        """A ``Retry-After`` header value (whole seconds, at least 1) for a wait of ``wait`` seconds."""
        return max(1, math.ceil(wait))
