"""Exponential backoff: how long to wait before trying again, for the bus's redeliveries and the
supervisor's restarts. A leaf module: it imports nothing of minga."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Backoff"]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Seconds to wait before try ``n + 1`` after ``n`` failures: ``initial * factor ** (n - 1)``,
    capped at ``maximum``.

    The defaults are the bus's redelivery delays; the supervisor restarts sooner by default
    (``RestartPolicy``'s backoff starts at 0.2 s and stops at 10 s).
    """

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def delay(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failure (1-based); 0 before any failure."""
        if attempt <= 0:
            return 0.0
        return float(min(self.maximum, self.initial * self.factor ** (attempt - 1)))
