"""Comparing secrets without telling an attacker, through timing, how much of a guess was right."""

from __future__ import annotations

import hmac

__all__ = ["same_secret"]


def same_secret(given: str | bytes | None, expected: str | bytes | None) -> bool:
    """``given == expected`` in time independent of where they differ; ``None`` matches nothing."""
    if given is None or expected is None:
        return False
    a = given.encode("utf-8") if isinstance(given, str) else given
    b = expected.encode("utf-8") if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)
