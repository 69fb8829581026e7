"""A consumer as a pure state machine: what to deliver next, what an ack changes, what times out.

Time is passed in (``now`` in Unix nanoseconds); nothing here sleeps or sends. The server
asks :meth:`Consumer.next_delivery` for the next message to send, feeds acknowledgements
to :meth:`Consumer.on_ack` and calls :meth:`Consumer.check_timeouts` when a deadline may
have passed; the events these return (acked sequences, max-deliveries, terminations) are
what the server turns into retention and advisories.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from minga.broker.jetstream._models import ConsumerConfig, rfc3339, rfc3339_to_ns
from minga.broker.jetstream._stream import Stream
from minga.broker.jetstream._subjects import matches, subset_of
from minga.broker.storage import StoredMessage
from minga.security import load_json

__all__ = ["AckOutcome", "Consumer", "Outgoing", "PullRequest"]


@dataclass(slots=True)
class _Pending:
    cseq: int
    deadline: int
    deliveries: int
    queued: bool = False


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One delivery: the message, its ``$JS.ACK`` reply subject and its counters."""

    msg: StoredMessage
    reply: str
    deliveries: int
    cseq: int
    pending: int


@dataclass(slots=True, eq=False)
class PullRequest:
    """A waiting pull request: where to deliver and how much is still wanted (compared by identity)."""

    reply: str
    batch: int
    expires_at: int = 0  # Unix ns; 0 waits until the batch is filled
    no_wait: bool = False
    max_bytes: int = 0
    heartbeat: int = 0  # ns
    delivered: int = 0
    bytes: int = 0
    last_sent: int = 0  # Unix ns of the last message or heartbeat sent for this request


@dataclass(slots=True)
class AckOutcome:
    """What an acknowledgement or a timeout changed."""

    acked: list[int] = field(default_factory=list)
    terminated: list[tuple[int, int]] = field(default_factory=list)  # (stream seq, deliveries)
    max_delivered: list[tuple[int, int]] = field(default_factory=list)  # (stream seq, deliveries)
    redeliver_now: bool = False


class Consumer:
    """A consumer of one stream; see the module docstring for how the server drives it."""

    def __init__(self, stream: Stream, name: str, config: ConsumerConfig, created_ns: int) -> None:
        self.stream = stream
        self.name = name
        self.config = config
        self.created_ns = created_ns
        self.filters: list[str] = []
        self.refresh_filters()
        self.delivered_cseq = 0
        self.delivered_sseq = 0
        self.ack_floor_cseq = 0
        self.ack_floor_sseq = 0
        self.next_sseq = 1
        self.pending: dict[int, _Pending] = {}
        self._deadlines: list[tuple[int, int]] = []
        self._redeliver: deque[int] = deque()
        self._initial: deque[int] = deque()
        self.waiting: deque[PullRequest] = deque()
        self.last_active_ns = created_ns
        self.last_delivery_ns = 0
        self._start(created_ns)

    def refresh_filters(self) -> None:
        """Drop filters that cover every subject of the stream: an unfiltered consumer is much cheaper."""
        filters = self.config.filters
        subjects = self.stream.config.subjects
        if filters and all(any(subset_of(s, f) for f in filters) for s in subjects):
            filters = []
        self.filters = filters

    # -- where to start --------------------------------------------------------------------

    def _start(self, now_ns: int) -> None:
        s = self.stream
        policy = self.config.deliver_policy
        if policy == "all":
            self.next_sseq = s.store.first_seq
        elif policy == "new":
            self.next_sseq = s.store.last_seq + 1
        elif policy == "last":
            last = s.last_for_subject(self.filters[0]) if len(self.filters) == 1 else None
            if not self.filters:
                last = s.store.get(s.store.last_seq)
            elif len(self.filters) > 1:
                seqs = s.last_per_subject(self.filters)
                last = s.store.get(seqs[-1]) if seqs else None
            self.next_sseq = last.seq if last else s.store.last_seq + 1
        elif policy == "by_start_sequence":
            self.next_sseq = max(self.config.opt_start_seq, 1)
        elif policy == "by_start_time":
            self.next_sseq = s.first_at_or_after(rfc3339_to_ns(self.config.opt_start_time))
        elif policy == "last_per_subject":
            self._initial = deque(s.last_per_subject(self.filters))
            self.next_sseq = s.store.last_seq + 1
        self.delivered_sseq = self.ack_floor_sseq = max(0, self.next_sseq - 1)
        if self._initial:
            self.delivered_sseq = self.ack_floor_sseq = self._initial[0] - 1

    # -- counters --------------------------------------------------------------------------

    @property
    def num_pending(self) -> int:
        """Messages not yet delivered that this consumer will deliver."""
        return len(self._initial) + self.stream.count_matching(self.next_sseq, self.filters)

    @property
    def num_ack_pending(self) -> int:
        return len(self.pending)

    @property
    def num_redelivered(self) -> int:
        return sum(1 for p in self.pending.values() if p.deliveries > 1)

    def wants(self, subject: str) -> bool:
        return not self.filters or any(matches(f, subject) for f in self.filters)

    def still_needs(self, msg: StoredMessage) -> bool:
        """True while ``msg`` is still to be delivered or acknowledged by this consumer."""
        if not self.wants(msg.subject):
            return False
        if msg.seq in self.pending:
            return True
        return msg.seq >= self.next_sseq or msg.seq in self._initial

    # -- delivering ------------------------------------------------------------------------

    def _ack_wait(self, deliveries: int) -> int:
        backoff = self.config.backoff
        if backoff:
            return backoff[min(deliveries, len(backoff)) - 1]
        return self.config.ack_wait

    def can_deliver(self) -> bool:
        """True when something is ready and ``max_ack_pending`` allows a delivery."""
        if self._redeliver:
            return True
        limit = self.config.max_ack_pending
        if limit > 0 and len(self.pending) >= limit:
            return False
        return bool(self._initial) or self.stream.next_matching(self.next_sseq, self.filters) is not None

    def next_delivery(self, now_ns: int) -> Outgoing | None:
        """The next message to send (a due redelivery first), or None when nothing may go now."""
        while self._redeliver:
            sseq = self._redeliver.popleft()
            p = self.pending.get(sseq)
            if p is None or not p.queued:
                continue
            msg = self.stream.store.get(sseq)
            if msg is None:
                del self.pending[sseq]
                continue
            p.queued = False
            p.deliveries += 1
            return self._send(msg, p, now_ns)
        limit = self.config.max_ack_pending
        if limit > 0 and len(self.pending) >= limit:
            return None
        msg = None
        while self._initial and msg is None:
            msg = self.stream.store.get(self._initial.popleft())
        if msg is None:
            msg = self.stream.next_matching(self.next_sseq, self.filters)
            if msg is None:
                return None
            self.next_sseq = msg.seq + 1
        self.delivered_sseq = max(self.delivered_sseq, msg.seq)
        if self.config.ack_policy == "none":
            self.delivered_cseq += 1
            self.ack_floor_cseq, self.ack_floor_sseq = self.delivered_cseq, self.delivered_sseq
            return self._out(msg, 1, self.delivered_cseq, now_ns)
        p = _Pending(0, 0, 1)
        self.pending[msg.seq] = p
        return self._send(msg, p, now_ns)

    def _send(self, msg: StoredMessage, p: _Pending, now_ns: int) -> Outgoing:
        self.delivered_cseq += 1
        p.cseq = self.delivered_cseq
        p.deadline = now_ns + self._ack_wait(p.deliveries)
        heapq.heappush(self._deadlines, (p.deadline, msg.seq))
        return self._out(msg, p.deliveries, p.cseq, now_ns)

    def _out(self, msg: StoredMessage, deliveries: int, cseq: int, now_ns: int) -> Outgoing:
        self.last_delivery_ns = now_ns
        pending = self.num_pending
        reply = (
            f"$JS.ACK.{self.stream.name}.{self.name}.{deliveries}.{msg.seq}.{cseq}.{msg.time_ns}.{pending}"
        )
        return Outgoing(msg, reply, deliveries, cseq, pending)

    # -- acknowledgements ------------------------------------------------------------------

    def on_ack(self, sseq: int, body: bytes, now_ns: int) -> AckOutcome:
        """Apply an acknowledgement body (``+ACK``, ``-NAK [{"delay": ns}]``, ``+WPI``, ``+TERM``) for ``sseq``."""
        out = AckOutcome()
        self.last_active_ns = now_ns
        kind, _, rest = body.strip().partition(b" ")
        if kind in (b"", b"+ACK", b"+NXT"):
            out.acked = self._ack(sseq)
        elif kind == b"-NAK":
            p = self.pending.get(sseq)
            if p is not None and not p.queued and 0 < self.config.max_deliver <= p.deliveries:
                # a nak of the last allowed delivery: no redelivery, the message is given up on
                del self.pending[sseq]
                out.max_delivered.append((sseq, p.deliveries))
                self._advance_floor()
            elif p is not None and not p.queued:
                delay = 0
                if rest:
                    try:
                        delay = int(load_json(rest).get("delay", 0))
                    except (ValueError, AttributeError, TypeError):
                        delay = 0
                if delay > 0:
                    p.deadline = now_ns + delay
                    heapq.heappush(self._deadlines, (p.deadline, sseq))
                else:
                    self._queue(sseq, p)
                    out.redeliver_now = True
        elif kind == b"+WPI":
            p = self.pending.get(sseq)
            if p is not None and not p.queued:
                p.deadline = now_ns + self._ack_wait(p.deliveries)
                heapq.heappush(self._deadlines, (p.deadline, sseq))
        elif kind == b"+TERM":
            p = self.pending.pop(sseq, None)
            if p is not None:
                out.terminated.append((sseq, p.deliveries))
                out.acked = [sseq]
                self._advance_floor()
        return out

    def _ack(self, sseq: int) -> list[int]:
        if self.config.ack_policy == "all":
            done = [s for s in self.pending if s <= sseq]
        else:
            done = [sseq] if sseq in self.pending else []
        for s in done:
            del self.pending[s]
        if done:
            self._advance_floor()
        return done

    def _advance_floor(self) -> None:
        if not self.pending:
            self.ack_floor_cseq, self.ack_floor_sseq = self.delivered_cseq, self.delivered_sseq
            return
        low = min(self.pending)
        self.ack_floor_sseq = max(self.ack_floor_sseq, low - 1)
        self.ack_floor_cseq = max(self.ack_floor_cseq, self.pending[low].cseq - 1)

    def _queue(self, sseq: int, p: _Pending) -> None:
        p.queued = True
        self._redeliver.append(sseq)

    def check_timeouts(self, now_ns: int) -> AckOutcome:
        """Queue for redelivery what passed its ack deadline; give up on what reached ``max_deliver``."""
        out = AckOutcome()
        heap = self._deadlines
        while heap and heap[0][0] <= now_ns:
            deadline, sseq = heapq.heappop(heap)
            p = self.pending.get(sseq)
            if p is None or p.queued or p.deadline != deadline:
                continue
            if 0 < self.config.max_deliver <= p.deliveries:
                del self.pending[sseq]
                out.max_delivered.append((sseq, p.deliveries))
                continue
            self._queue(sseq, p)
            out.redeliver_now = True
        if out.max_delivered:
            self._advance_floor()
        return out

    def next_deadline(self) -> int | None:
        """The earliest pending deadline (Unix ns), if any."""
        while self._deadlines:
            deadline, sseq = self._deadlines[0]
            p = self.pending.get(sseq)
            if p is not None and not p.queued and p.deadline == deadline:
                return deadline
            heapq.heappop(self._deadlines)
        return None

    def forget(self, seqs: list[int]) -> None:
        """Messages were removed from the stream: stop tracking them."""
        dropped = [s for s in seqs if self.pending.pop(s, None) is not None]
        if dropped:
            self._advance_floor()

    # -- persistence and info --------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        return {
            "delivered": [self.delivered_cseq, self.delivered_sseq],
            "ack_floor": [self.ack_floor_cseq, self.ack_floor_sseq],
            "next": self.next_sseq,
            "initial": list(self._initial),
            "pending": {str(s): [p.cseq, p.deliveries] for s, p in self.pending.items()},
        }

    def restore(self, state: dict[str, Any], now_ns: int) -> None:
        """Take back a saved state: everything pending becomes due for redelivery."""
        self.delivered_cseq, self.delivered_sseq = state["delivered"]
        self.ack_floor_cseq, self.ack_floor_sseq = state["ack_floor"]
        self.next_sseq = state["next"]
        self._initial = deque(state.get("initial", []))
        self.pending.clear()
        self._redeliver.clear()
        for s, (cseq, deliveries) in sorted(state["pending"].items(), key=lambda kv: int(kv[0])):
            p = _Pending(cseq, now_ns, deliveries)
            self.pending[int(s)] = p
            self._queue(int(s), p)

    def info_json(self, now_ns: int, push_bound: bool) -> dict[str, Any]:
        last = {"last_active": rfc3339(self.last_delivery_ns)} if self.last_delivery_ns else {}
        info: dict[str, Any] = {
            "stream_name": self.stream.name,
            "name": self.name,
            "created": rfc3339(self.created_ns),
            "config": self.config.to_json(),
            "delivered": {"consumer_seq": self.delivered_cseq, "stream_seq": self.delivered_sseq, **last},
            "ack_floor": {"consumer_seq": self.ack_floor_cseq, "stream_seq": self.ack_floor_sseq},
            "num_ack_pending": self.num_ack_pending,
            "num_redelivered": self.num_redelivered,
            "num_waiting": len(self.waiting),
            "num_pending": self.num_pending,
            "ts": rfc3339(now_ns),
        }
        if self.config.is_push:
            info["push_bound"] = push_bound
        return info
