"""Is a history of key-value operations linearizable?

Each key is a register, checked on its own (linearizability is compositional: a history is
linearizable exactly when each object's sub-history is). For one key the search is Wing and
Gong's, with Lowe's memo of (operations linearized, state) pairs already explored: walk the
events in time order; an operation whose invocation comes before every pending completion
may take effect now, if the register allows it; when a completion is reached whose operation
has not taken effect, undo the last choice. Operations of unknown outcome (``info``) never
complete, so they may take effect at any later moment or not at all.

A register's operations: ``read`` (the value read; ``null`` for a missing key), ``write``
(the value written), ``delete`` (the key removed), ``cas`` (``[expected, new]``; a cas that
answered ``fail`` did not happen and is dropped like every failed operation).

When a key fails, the history is shrunk to a smallest failing one: operations are removed
one at a time while the rest still fails, so every operation printed is needed for the
anomaly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from minga.chaos._history import Event, Operation, operations
from minga.errors import UsageError

__all__ = ["KeyVerdict", "LinearizabilityResult", "check_register", "check_registers"]

REGISTER_FUNCTIONS = frozenset({"read", "write", "delete", "cas"})
_MISSING = "null"  # the state of a key never written, or deleted: reads see null


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _step(state: str, op: Operation) -> str | None:
    """The register's state after ``op`` from ``state``; None when ``op`` cannot happen there."""
    if op.f == "read":
        # an unknown read constrains nothing; definite reads must see the state
        return state if op.outcome != "ok" or _canon(op.value) == state else None
    if op.f == "write":
        return _canon(op.value)
    if op.f == "delete":
        return _MISSING
    if op.f == "cas":
        expected, new = op.value
        return _canon(new) if _canon(expected) == state else None
    raise UsageError(f"a register has no operation {op.f!r}: use read, write, delete or cas")


class _Budget(Exception):
    """The search ran past its step budget: the answer is unknown, not no."""


def _linearizable(ops: Sequence[Operation], budget: int) -> bool:
    # events: (time, 0 for invocation / 1 for completion, op position); invocations before
    # completions at the same instant, so operations that touch in time count as concurrent
    events: list[tuple[float, int, int]] = []
    for pos, op in enumerate(ops):
        events.append((op.start, 0, pos))
        if not math.isinf(op.end):
            events.append((op.end, 1, pos))
    events.sort()
    n = len(events)
    # a doubly linked list over the events, with a head sentinel at index n; -1 ends it
    nxt = [i + 1 for i in range(n)] + [0 if n else -1]
    if n:
        nxt[n - 1] = -1
    prv = [n, *range(n - 1), -1]
    completion = {pos: i for i, (_, kind, pos) in enumerate(events) if kind == 1}

    def unlink(i: int) -> None:
        p, q = prv[i], nxt[i]
        nxt[p] = q
        if q != -1:
            prv[q] = p

    def relink(i: int) -> None:
        p, q = prv[i], nxt[i]
        nxt[p] = i
        if q != -1:
            prv[q] = i

    definite_left = sum(1 for op in ops if op.definite)
    state = _MISSING
    linearized = 0
    seen: set[tuple[int, str]] = set()
    stack: list[tuple[int, str]] = []  # (invocation event, state before it)
    entry = nxt[n]
    steps = 0
    while True:
        steps += 1
        if steps > budget:
            raise _Budget
        if definite_left == 0:
            return True
        if entry != -1 and events[entry][1] == 0:
            pos = events[entry][2]
            op = ops[pos]
            after = _step(state, op)
            if after is not None:
                memo = (linearized | (1 << pos), after)
                if memo not in seen:
                    seen.add(memo)
                    stack.append((entry, state))
                    state, linearized = after, memo[0]
                    unlink(entry)
                    if pos in completion:
                        unlink(completion[pos])
                    definite_left -= op.definite
                    entry = nxt[n]
                    continue
            entry = nxt[entry]
            continue
        # a completion whose operation has not taken effect, or the end: undo the last choice
        if not stack:
            return False
        entry, state = stack.pop()
        pos = events[entry][2]
        linearized &= ~(1 << pos)
        definite_left += ops[pos].definite
        if pos in completion:
            relink(completion[pos])
        relink(entry)
        entry = nxt[entry]


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """One key's answer: linearizable, not (with a smallest failing history), or unknown."""

    key: str | None
    valid: bool | None
    operations: int
    anomaly: tuple[Operation, ...] = ()

    def describe(self) -> str:
        name = "(no key)" if self.key is None else self.key
        if self.valid is None:
            return f"{name}: unknown, the search ran past its budget over {self.operations} operations"
        if self.valid:
            return f"{name}: linearizable ({self.operations} operations)"
        lines = [f"{name}: NOT linearizable; a smallest failing history ({len(self.anomaly)} operations):"]
        lines += [f"  {op.describe()}" for op in self.anomaly]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class LinearizabilityResult:
    keys: tuple[KeyVerdict, ...]

    @property
    def valid(self) -> bool | None:
        """True when every key is linearizable, False when one is not, None when unknown."""
        if any(k.valid is False for k in self.keys):
            return False
        if any(k.valid is None for k in self.keys):
            return None
        return True


def _writes(op: Operation) -> str | None:
    if op.f == "write":
        return _canon(op.value)
    if op.f == "cas":
        return _canon(op.value[1])
    return None


def _explains_a_read(op: Operation, kept: list[Operation]) -> bool:
    """True when ``op`` is the last kept writer of a value a kept read returned."""
    value = _writes(op)
    if value is None:
        return False
    read = any(o.f == "read" and o.definite and _canon(o.value) == value for o in kept)
    return read and not any(o is not op and _writes(o) == value for o in kept)


def _shrink(ops: list[Operation], budget: int) -> list[Operation]:
    """Remove operations one at a time while the rest still fails.

    A write is kept while it is the only source of a value some kept read returned: without
    it the read would fail for a reason of the shrinking's making (a value nobody wrote), and
    the history printed would hide the real anomaly (a stale read, a lost write).
    """
    kept = list(ops)
    i = 0
    while i < len(kept):
        if _explains_a_read(kept[i], kept):
            i += 1
            continue
        trial = kept[:i] + kept[i + 1 :]
        try:
            still_fails = not _linearizable(trial, budget)
        except _Budget:
            still_fails = False
        if still_fails:
            kept = trial
        else:
            i += 1
    return kept


def check_register(
    ops: Sequence[Operation], *, budget: int = 2_000_000, key: str | None = None
) -> KeyVerdict:
    """Check one register's operations; ``budget`` bounds the search's steps."""
    for op in ops:
        if op.f not in REGISTER_FUNCTIONS:
            raise UsageError(f"a register has no operation {op.f!r}: use read, write, delete or cas")
        if op.f == "cas" and not (isinstance(op.value, list | tuple) and len(op.value) == 2):
            raise UsageError(
                f"process {op.process}: a cas value is [expected, new], got {json.dumps(op.value)}"
            )
    listed = list(ops)
    try:
        ok = _linearizable(listed, budget)
    except _Budget:
        return KeyVerdict(key, None, len(listed))
    if ok:
        return KeyVerdict(key, True, len(listed))
    return KeyVerdict(key, False, len(listed), tuple(_shrink(listed, budget)))


def check_registers(events: Iterable[Event], *, budget: int = 2_000_000) -> LinearizabilityResult:
    """Check a key-value history key by key (the events of other functions are ignored)."""
    by_key: dict[str | None, list[Operation]] = {}
    for op in operations(events, with_f=REGISTER_FUNCTIONS):
        by_key.setdefault(op.key, []).append(op)
    verdicts = [
        check_register(ops, budget=budget, key=key)
        for key, ops in sorted(by_key.items(), key=lambda kv: str(kv[0]))
    ]
    return LinearizabilityResult(tuple(verdicts))
