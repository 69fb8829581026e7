"""W3C trace context (``traceparent``) carried across RPC, events and queues.

minga only carries the context: a later monitoring layer turns it into spans.
The header is ``00-<trace-id: 32 hex>-<parent-id: 16 hex>-<flags: 2 hex>``.
"""

from __future__ import annotations

import contextvars
import random
import re
from dataclasses import dataclass

__all__ = ["TRACEPARENT", "TraceContext", "current_trace", "random_id"]

TRACEPARENT = "traceparent"

# ids must be unique, not secret (W3C Trace Context); a syscall per id would cost more than the rest
_random = random.Random()
_LOW64 = (1 << 64) - 1
_HEADER = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\Z")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16


def random_id(bits: int) -> str:
    """A random id of ``bits`` bits as ``bits // 4`` hex digits, never all zeros (an invalid trace or
    span id): the one generator of trace, span and request ids."""
    value = 0
    while value == 0:
        value = _random.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def _root_ids() -> tuple[str, str]:
    """A new trace id (32 hex digits) and span id (16), both from one draw; neither is all zeros."""
    value = _random.getrandbits(192)
    if value >> 64 and value & _LOW64:
        ids = f"{value:048x}"
        return ids[:32], ids[32:]
    return random_id(128), random_id(64)


def _span_id() -> str:
    """A new 64-bit span id as 16 hex digits (never all zeros)."""
    value = _random.getrandbits(64)
    return f"{value:016x}" if value else random_id(64)


@dataclass(frozen=True, slots=True)
class TraceContext:
    """The span a piece of work runs in: its trace, its own span id, and the span that caused it."""

    trace_id: str
    span_id: str
    parent_id: str | None = None
    sampled: bool = True

    @classmethod
    def new(cls) -> TraceContext:
        """A root span of a fresh trace."""
        trace_id, span_id = _root_ids()
        return cls(trace_id, span_id)

    @classmethod
    def parse(cls, header: str | None) -> TraceContext | None:
        """The remote span named by a ``traceparent`` header, or None when absent or malformed.

        All-zero ids and version ``ff`` are invalid per the W3C recommendation.
        """
        fields = _fields(header)
        return None if fields is None else cls(fields[0], fields[1], None, fields[2])

    def child(self) -> TraceContext:
        """A new span in the same trace, caused by this one."""
        return TraceContext(self.trace_id, _span_id(), self.span_id, self.sampled)

    def header(self) -> str:
        """This span as a ``traceparent`` value, naming it as the parent of whatever receives it."""
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"


current_trace: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar(
    "minga_current_trace", default=None
)
"""The span the running task works in; the bus sets it around every handler call."""


def outgoing() -> TraceContext:
    """The span a message sent now belongs to: the current one, or a new root."""
    return current_trace.get() or TraceContext.new()


def outgoing_header() -> str:
    """``outgoing().header()``, without building a context object when a new root is needed."""
    trace = current_trace.get()
    if trace is not None:
        return trace.header()
    trace_id, span_id = _root_ids()
    return f"00-{trace_id}-{span_id}-01"


def incoming(header: str | None) -> TraceContext:
    """The span a received message's handler runs in: a child of the sender's, or a new root."""
    fields = _fields(header)
    if fields is None:
        return TraceContext.new()
    # the child made at once, without the remote span's own context object
    return TraceContext(fields[0], _span_id(), fields[1], fields[2])


def _fields(header: str | None) -> tuple[str, str, bool] | None:
    """(trace id, span id, sampled) of a valid ``traceparent`` value, None when absent or invalid.

    All-zero ids and version ``ff`` are invalid per the W3C recommendation.
    """
    if not header:
        return None
    value = header
    if _HEADER.match(value) is None:  # one compiled match: the common, well-formed case costs no more
        value = header.strip().lower()
        if _HEADER.match(value) is None:
            return None
    # fixed layout, checked by the pattern: 2 hex - 32 hex - 16 hex - 2 hex
    trace_id, span_id = value[3:35], value[36:52]
    if value[:2] == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return trace_id, span_id, bool(int(value[53:55], 16) & 1)
