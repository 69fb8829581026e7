"""Histories: what clients asked and what they were told, one event per line.

A workload under faults records every operation twice: when a client invokes it and when
the answer comes back (``ok``: it happened; ``fail``: it certainly did not; ``info``: nobody
knows, the connection broke or the request timed out). Events observed without an invocation
(a consumer receiving a message, an acknowledgement confirmed) are recorded once, as ``ok``.

The file format is JSON lines, one event each::

    {"process": 0, "type": "invoke", "f": "write", "key": "x", "value": 1, "time": 0.10}
    {"process": 0, "type": "ok", "f": "write", "key": "x", "value": 1, "time": 0.12}

``time`` is seconds on one clock (monotonic, one recorder per history); ``process`` names the
client that waited, so each process has at most one operation in flight.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO, cast

from minga.errors import UsageError

__all__ = [
    "NEMESIS",
    "Event",
    "EventType",
    "FaultWindow",
    "Operation",
    "Recorder",
    "fault_windows",
    "load_history",
    "operations",
]

EventType = Literal["invoke", "ok", "fail", "info"]
NEMESIS = "nemesis"  # the process that records faults (as Jepsen names it)
_TYPES: frozenset[str] = frozenset({"invoke", "ok", "fail", "info"})


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history."""

    process: int | str
    type: EventType
    f: str
    value: Any = None
    key: str | None = None
    time: float = 0.0

    def to_json(self) -> str:
        record: dict[str, Any] = {"process": self.process, "type": self.type, "f": self.f}
        if self.key is not None:
            record["key"] = self.key
        record["value"] = self.value
        record["time"] = round(self.time, 6)
        return json.dumps(record, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Operation:
    """An invocation paired with its completion.

    ``end`` is ``math.inf`` for an operation whose outcome is unknown (``info``): it may have
    taken effect at any moment after ``start``, or never. ``value`` is what the completion
    reported (a read's result), else what was invoked.
    """

    index: int
    process: int | str
    f: str
    key: str | None
    value: Any
    start: float
    end: float
    outcome: EventType = field(default="ok")
    invoked: bool = True  # False for an observation: a completion recorded with no invocation

    @property
    def definite(self) -> bool:
        return self.outcome == "ok"

    def describe(self) -> str:
        end = "?" if math.isinf(self.end) else f"{self.end:.6f}"
        key = f" {self.key}" if self.key is not None else ""
        return f"process {self.process}: {self.f}{key} {json.dumps(self.value)} [{self.start:.6f} .. {end}] {self.outcome}"


class Recorder:
    """Appends events to a history file as a workload runs; safe from several threads.

    >>> rec = Recorder(path)                         # doctest: +SKIP
    >>> rec.invoke(1, "write", 5, key="x")           # doctest: +SKIP
    >>> rec.complete(1, "ok", "write", 5, key="x")   # doctest: +SKIP
    """

    def __init__(self, path: Path, *, origin: float | None = None) -> None:
        """``origin``: the ``time.monotonic()`` the history counts from (now when omitted).

        The monotonic clock is the machine's, so recorders in several processes given the same
        origin write one history's times: a workload's and the faults injected beside it.
        """
        self._file: TextIO = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()
        self._t0 = time.monotonic() if origin is None else origin

    def record(self, event: Event) -> None:
        with self._lock:
            self._file.write(event.to_json() + "\n")
            self._file.flush()

    def now(self) -> float:
        """The history's clock: seconds since the recorder was made."""
        return time.monotonic() - self._t0

    def invoke(
        self,
        process: int | str,
        f: str,
        value: Any = None,
        *,
        key: str | None = None,
        at: float | None = None,
    ) -> None:
        """Record an invocation, now or ``at`` an earlier moment of :meth:`now`'s clock."""
        self.record(Event(process, "invoke", f, value, key, self.now() if at is None else at))

    def complete(
        self, process: int | str, type: EventType, f: str, value: Any = None, *, key: str | None = None
    ) -> None:
        self.record(Event(process, type, f, value, key, self.now()))

    def close(self) -> None:
        with self._lock:
            self._file.close()


def _event(record: Any, where: str) -> Event:
    if not isinstance(record, dict):
        raise UsageError(f"{where}: an event is a JSON object, got {type(record).__name__}")
    missing = [name for name in ("process", "type", "f") if name not in record]
    if missing:
        raise UsageError(f"{where}: the event has no {', '.join(missing)}")
    kind = record["type"]
    if kind not in _TYPES:
        raise UsageError(f"{where}: type {kind!r} is none of invoke, ok, fail, info")
    moment = record.get("time", 0.0)
    if not isinstance(moment, int | float) or isinstance(moment, bool) or not math.isfinite(moment):
        raise UsageError(f"{where}: time must be a finite number of seconds, got {moment!r}")
    key = record.get("key")
    return Event(
        process=record["process"],
        type=cast(EventType, kind),
        f=str(record["f"]),
        value=record.get("value"),
        key=None if key is None else str(key),
        time=float(moment),
    )


def load_history(path: Path) -> list[Event]:
    """Read a JSON-lines history; a malformed line is a UsageError naming it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    events: list[Event] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{path}:{number}: not JSON: {exc.msg}") from None
        events.append(_event(record, f"{path}:{number}"))
    return events


def operations(events: Iterable[Event], *, with_f: frozenset[str] | None = None) -> Iterator[Operation]:
    """Pair each invocation with its process's next completion.

    ``fail`` operations did not happen and are dropped; an invocation never completed counts
    as ``info`` (unknown). A completion with no invocation is an observation (a delivery, an
    ack) and becomes an operation of zero length. A process that invokes twice without a
    completion between is a broken history: UsageError.
    """
    pending: dict[int | str, Event] = {}
    index = 0
    for event in events:
        if with_f is not None and event.f not in with_f:
            continue
        if event.type == "invoke":
            if event.process in pending:
                raise UsageError(
                    f"process {event.process} invoked {event.f} at {event.time} while "
                    f"{pending[event.process].f} was still in flight: a process waits for each answer"
                )
            pending[event.process] = event
            continue
        call = pending.pop(event.process, None)
        if call is None:
            yield Operation(
                index,
                event.process,
                event.f,
                event.key,
                event.value,
                event.time,
                event.time,
                event.type,
                invoked=False,
            )
            index += 1
            continue
        if event.f != call.f or event.key != call.key:
            raise UsageError(
                f"process {event.process}: {event.type} {event.f} {event.key} does not answer "
                f"the {call.f} {call.key} it invoked"
            )
        if event.type == "fail":
            continue
        end = math.inf if event.type == "info" else event.time
        value = event.value if event.type == "ok" else call.value
        yield Operation(index, event.process, call.f, call.key, value, call.time, end, event.type)
        index += 1
    for call in pending.values():
        yield Operation(index, call.process, call.f, call.key, call.value, call.time, math.inf, "info")
        index += 1


@dataclass(frozen=True, slots=True)
class FaultWindow:
    """When a fault may have acted: from ``begins`` (before it was injected) to ``ends`` (once it
    was lifted); surely in force from ``in_force`` (once the injection returned)."""

    fault: str
    target: Any
    begins: float
    in_force: float
    ends: float


def fault_windows(events: Iterable[Event]) -> list[FaultWindow]:
    """The faults the ``nemesis`` recorded: ``start-X`` then ``stop-X`` operations (Jepsen's
    habit), or a single operation ``X`` spanning the whole fault."""
    windows: list[FaultWindow] = []
    open_: dict[str, Operation] = {}
    for op in operations(e for e in events if e.process == NEMESIS):
        if op.f.startswith("start-"):
            open_[op.f[6:]] = op
        elif op.f.startswith("stop-"):
            began = open_.pop(op.f[5:], None)
            if began is not None:
                windows.append(FaultWindow(op.f[5:], began.value, began.start, began.end, op.end))
        else:
            windows.append(FaultWindow(op.f, op.value, op.start, op.end, op.end))
    for name, began in open_.items():  # never lifted
        windows.append(FaultWindow(name, began.value, began.start, began.end, math.inf))
    return sorted(windows, key=lambda w: w.begins)
