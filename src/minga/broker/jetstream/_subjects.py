"""Subject questions a stream asks beyond matching: do two patterns overlap, is one inside another.

Validation and matching are the broker's own (:func:`minga.broker.subject_matches`...),
re-exported here under short names for the JetStream modules.
"""

from __future__ import annotations

from minga.broker import is_literal_subject as is_literal
from minga.broker import is_valid_subject as is_valid_pattern
from minga.broker import subject_matches as matches

__all__ = ["is_literal", "is_valid_pattern", "matches", "overlaps", "subset_of"]


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
