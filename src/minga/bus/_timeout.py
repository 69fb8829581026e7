"""Typed timeouts for calls over the bus."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_TIMEOUT", "Timeout"]


@dataclass(frozen=True, slots=True)
class Timeout:
    """How long a call may take, in seconds.

    ``request`` bounds one RPC round trip (send, handle remotely, reply);
    ``connect`` bounds establishing the broker connection.

    >>> Timeout(2.5).request
    2.5
    """

    request: float = 5.0
    connect: float = 5.0

    def __post_init__(self) -> None:
        if self.request <= 0 or self.connect <= 0:
            raise ValueError(f"timeouts must be > 0 seconds, got {self}")

    @classmethod
    def of(cls, value: Timeout | float | None, default: Timeout) -> Timeout:
        """``value`` as a Timeout: a number is the request timeout, None is ``default``."""
        if value is None:
            return default
        if isinstance(value, Timeout):
            return value
        return cls(request=float(value), connect=default.connect)


DEFAULT_TIMEOUT = Timeout()
