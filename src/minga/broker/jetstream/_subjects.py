"""Subject questions a stream asks: is a pattern valid, does it match, do two patterns overlap."""

from __future__ import annotations

__all__ = ["is_literal", "is_valid_pattern", "matches", "overlaps", "subset_of"]


def is_valid_pattern(subject: str) -> bool:
    """True for a valid subject or subscription pattern (``*`` tokens, ``>`` last)."""
    if not subject or any(c in subject for c in " \t\r\n"):
        return False
    tokens = subject.split(".")
    return all(tok and (tok != ">" or i == len(tokens) - 1) for i, tok in enumerate(tokens))


def is_literal(subject: str) -> bool:
    """True for a valid subject without wildcard tokens."""
    return is_valid_pattern(subject) and all(t not in ("*", ">") for t in subject.split("."))


def matches(pattern: str, subject: str) -> bool:
    """True when the literal ``subject`` matches ``pattern``."""
    if pattern == subject or pattern == ">":
        return True
    p = pattern.split(".")
    s = subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(s) > i
        if i >= len(s) or (tok != "*" and tok != s[i]):
            return False
    return len(p) == len(s)


def overlaps(a: str, b: str) -> bool:
    """True when some subject matches both patterns."""
    ta, tb = a.split("."), b.split(".")
    for i in range(max(len(ta), len(tb))):
        x = ta[i] if i < len(ta) else None
        y = tb[i] if i < len(tb) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and x != "*" and y != "*":
            return False
    return True


def subset_of(inner: str, outer: str) -> bool:
    """True when every subject matching ``inner`` also matches ``outer``."""
    ti, to = inner.split("."), outer.split(".")
    for i, o in enumerate(to):
        if o == ">":
            return len(ti) > i
        if i >= len(ti):
            return False
        t = ti[i]
        if t == ">":
            return False
        if o != "*" and (t == "*" or t != o):
            return False
    return len(ti) == len(to)
