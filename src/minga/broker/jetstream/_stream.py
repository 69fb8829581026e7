"""A stream as pure logic: what storing a message does, what limits remove, what a purge keeps.

Nothing here touches the network: :meth:`Stream.ingest` takes a published message and
returns the stored message and the acknowledgement (or raises :class:`ApiError`), and the
consumers attached to the stream are told about removals through :meth:`Stream.remove`.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from minga.broker.jetstream import _errors as E
from minga.broker.jetstream._headers import parse_headers
from minga.broker.jetstream._models import StreamConfig, rfc3339
from minga.broker.jetstream._subjects import is_literal, matches
from minga.broker.storage import MemoryStore, StoredMessage

if TYPE_CHECKING:
    from minga.broker.jetstream._consumer import Consumer

__all__ = ["Stream"]

MSG_ID = "Nats-Msg-Id"
EXPECTED_STREAM = "Nats-Expected-Stream"
EXPECTED_LAST_SEQ = "Nats-Expected-Last-Sequence"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"
ROLLUP = "Nats-Rollup"


class Stream:
    """A stream: its configuration, its store, a per-subject index and the dedupe window."""

    def __init__(self, config: StreamConfig, store: MemoryStore, created_ns: int) -> None:
        self.config = config
        self.store = store
        self.created_ns = created_ns
        self.consumers: dict[str, Consumer] = {}
        self._by_subject: dict[str, list[int]] = {}
        self._dedupe: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._last_msg_id = ""
        horizon = time.time_ns() - config.duplicate_window
        for msg in store.iter_from(0):
            self._by_subject.setdefault(msg.subject, []).append(msg.seq)
            # the dedupe window outlives a restart: rebuild it from the recent messages' ids
            if msg.headers and msg.time_ns > horizon and b"Nats-Msg-Id" in msg.headers:
                msg_id = parse_headers(msg.headers).get(MSG_ID)
                if msg_id:
                    self._dedupe[msg_id] = (msg.seq, msg.time_ns)
                    self._last_msg_id = msg_id

    @property
    def name(self) -> str:
        return self.config.name

    # -- reading ---------------------------------------------------------------------------

    def subjects(self) -> list[str]:
        """The subjects that have stored messages."""
        return list(self._by_subject)

    def subject_seqs(self, subject: str) -> list[int]:
        return self._by_subject.get(subject, [])

    def last_for_subject(self, pattern: str) -> StoredMessage | None:
        """The newest message whose subject matches ``pattern``."""
        if is_literal(pattern):
            seqs = self._by_subject.get(pattern)
            return self.store.get(seqs[-1]) if seqs else None
        best = 0
        for subj, seqs in self._by_subject.items():
            if seqs and seqs[-1] > best and matches(pattern, subj):
                best = seqs[-1]
        return self.store.get(best) if best else None

    def next_matching(self, seq: int, filters: list[str]) -> StoredMessage | None:
        """The first message with sequence >= ``seq`` whose subject matches one of ``filters`` (any when empty)."""
        if not filters:
            return self.store.next_from(seq)
        if len(filters) == 1 and is_literal(filters[0]):
            seqs = self._by_subject.get(filters[0], [])
            i = bisect.bisect_left(seqs, seq)
            return self.store.get(seqs[i]) if i < len(seqs) else None
        for msg in self.store.iter_from(seq):
            if any(matches(f, msg.subject) for f in filters):
                return msg
        return None

    def count_matching(self, seq: int, filters: list[str]) -> int:
        """How many messages with sequence >= ``seq`` match ``filters`` (all when empty)."""
        if not filters:
            return self.store.count_from(seq)
        total = 0
        if all(is_literal(f) for f in filters):
            for f in set(filters):
                seqs = self._by_subject.get(f, [])
                total += len(seqs) - bisect.bisect_left(seqs, seq)
            return total
        for subj, seqs in self._by_subject.items():
            if any(matches(f, subj) for f in filters):
                total += len(seqs) - bisect.bisect_left(seqs, seq)
        return total

    def last_per_subject(self, filters: list[str]) -> list[int]:
        """The newest sequence of every subject matching ``filters``, in order."""
        out = [
            seqs[-1]
            for subj, seqs in self._by_subject.items()
            if seqs and (not filters or any(matches(f, subj) for f in filters))
        ]
        out.sort()
        return out

    def first_at_or_after(self, time_ns: int) -> int:
        for msg in self.store.iter_from(0):
            if msg.time_ns >= time_ns:
                return msg.seq
        return self.store.last_seq + 1

    # -- writing ---------------------------------------------------------------------------

    def ingest(
        self, subject: str, raw_headers: bytes | None, headers: dict[str, str], payload: bytes, now_ns: int
    ) -> tuple[StoredMessage | None, dict[str, Any], tuple[str, bytes, bytes] | None]:
        """Store a published message; return it (None for a duplicate), the PubAck JSON and the
        ``(subject, headers, payload)`` to republish (None unless the stream republishes it).

        Raises :class:`ApiError` when an expectation header or a ``discard: new`` limit refuses it.
        """
        cfg = self.config
        if cfg.sealed:
            raise E.api_error(400, 10109, "invalid operation on sealed stream")
        size = self.store.sizer(subject, raw_headers, payload)
        if cfg.max_msg_size >= 0 and len(payload) + len(raw_headers or b"") > cfg.max_msg_size:
            raise E.message_too_big()
        expected = headers.get(EXPECTED_STREAM)
        if expected is not None and expected != cfg.name:
            raise E.stream_not_match()
        msg_id = headers.get(MSG_ID, "")
        if msg_id:
            self._expire_dedupe(now_ns)
            seen = self._dedupe.get(msg_id)
            if seen is not None:
                return None, {"stream": cfg.name, "seq": seen[0], "duplicate": True}, None
        if EXPECTED_LAST_SEQ in headers:
            want = _as_int(headers[EXPECTED_LAST_SEQ])
            if want != self.store.last_seq:
                raise E.wrong_last_sequence(self.store.last_seq)
        if EXPECTED_LAST_SUBJECT_SEQ in headers:
            want = _as_int(headers[EXPECTED_LAST_SUBJECT_SEQ])
            seqs = self._by_subject.get(subject)
            have = seqs[-1] if seqs else 0
            if want != have:
                raise E.wrong_last_sequence(have)
        if EXPECTED_LAST_MSG_ID in headers and headers[EXPECTED_LAST_MSG_ID] != self._last_msg_id:
            raise E.wrong_last_msg_id(self._last_msg_id)
        rollup = headers.get(ROLLUP, "")
        if rollup:
            if not cfg.allow_rollup_hdrs:
                raise E.rollup_failed("rollup not permitted")
            if rollup not in ("sub", "all"):
                raise E.rollup_failed(f"rollup value invalid: {rollup!r}")
        if cfg.discard == "new" and not rollup:
            if cfg.max_msgs > 0 and self.store.num_msgs >= cfg.max_msgs:
                raise E.store_failed("maximum messages exceeded")
            if cfg.max_bytes > 0 and self.store.num_bytes + size > cfg.max_bytes:
                raise E.store_failed("maximum bytes exceeded")
            if (
                cfg.discard_new_per_subject
                and cfg.max_msgs_per_subject > 0
                and len(self._by_subject.get(subject, ())) >= cfg.max_msgs_per_subject
            ):
                raise E.store_failed("maximum messages per subject exceeded")

        msg = self.store.append(subject, raw_headers, payload, now_ns)
        same_subject = self._by_subject.setdefault(subject, [])
        previous = same_subject[-1] if same_subject else 0
        same_subject.append(msg.seq)
        if msg_id:
            self._dedupe[msg_id] = (msg.seq, now_ns)
            self._last_msg_id = msg_id
        if rollup == "sub":
            # the subject may hold wildcards (a KV purge of "a.*"): every subject it matches is rolled up
            if is_literal(subject):
                older = [s for s in same_subject if s != msg.seq]
            else:
                older = sorted(
                    s for subj, seqs in self._by_subject.items() if matches(subject, subj) for s in seqs if s != msg.seq
                )
            self.remove(older)
        elif rollup == "all":
            self.remove([s for s in self.store.seqs() if s != msg.seq])
        self._enforce_limits(subject)
        republish = None
        if cfg.republish is not None:
            republish = cfg.republish.message(cfg.name, subject, msg.seq, previous, raw_headers, payload)
        return msg, {"stream": cfg.name, "seq": msg.seq}, republish

    def _expire_dedupe(self, now_ns: int) -> None:
        horizon = now_ns - self.config.duplicate_window
        while self._dedupe:
            _, (_, ts) = next(iter(self._dedupe.items()))
            if ts > horizon:
                break
            self._dedupe.popitem(last=False)

    def _enforce_limits(self, subject: str) -> None:
        cfg = self.config
        if cfg.max_msgs_per_subject > 0:
            seqs = self._by_subject.get(subject, [])
            if len(seqs) > cfg.max_msgs_per_subject:
                self.remove(seqs[: len(seqs) - cfg.max_msgs_per_subject])
        if cfg.max_msgs > 0 and self.store.num_msgs > cfg.max_msgs:
            self.remove(self.store.seqs()[: self.store.num_msgs - cfg.max_msgs])
        if cfg.max_bytes > 0 and self.store.num_bytes > cfg.max_bytes:
            drop: list[int] = []
            excess = self.store.num_bytes - cfg.max_bytes
            for m in self.store.iter_from(0):
                if excess <= 0:
                    break
                drop.append(m.seq)
                excess -= self.store.size_of(m)
            self.remove(drop)

    def enforce_all_limits(self) -> None:
        """Apply the limits again (after a configuration update)."""
        for subject in list(self._by_subject):
            self._enforce_limits(subject)

    def expire(self, now_ns: int) -> int:
        """Remove messages older than ``max_age``; return how many."""
        if self.config.max_age <= 0:
            return 0
        horizon = now_ns - self.config.max_age
        old: list[int] = []
        for m in self.store.iter_from(0):
            if m.time_ns > horizon:
                break
            old.append(m.seq)
        return len(self.remove(old))

    def remove(self, seqs: list[int]) -> list[StoredMessage]:
        """Remove messages by sequence, keeping the subject index in step."""
        gone = self.store.remove(seqs)
        for m in gone:
            lst = self._by_subject.get(m.subject)
            if lst is not None:
                i = bisect.bisect_left(lst, m.seq)
                if i < len(lst) and lst[i] == m.seq:
                    del lst[i]
                if not lst:
                    del self._by_subject[m.subject]
        if gone and self.consumers:
            seqs_gone = [m.seq for m in gone]
            for c in self.consumers.values():
                c.forget(seqs_gone)
        return gone

    def purge(self, filter_subject: str = "", seq: int = 0, keep: int = 0) -> int:
        """Remove messages as a purge request asks; return how many went."""
        if not filter_subject and not seq and not keep:
            gone = self.store.purge()
            self._by_subject.clear()
            return len(gone)
        if filter_subject:
            candidates = sorted(
                s for subj, seqs in self._by_subject.items() if matches(filter_subject, subj) for s in seqs
            )
        else:
            candidates = self.store.seqs()
        if seq:
            candidates = [s for s in candidates if s < seq]
        elif keep:
            candidates = candidates[: max(0, len(candidates) - keep)]
        return len(self.remove(candidates))

    def on_acked(self, seqs: list[int]) -> None:
        """Consumers acknowledged ``seqs``: work-queue and interest streams drop what nobody still needs."""
        if self.config.retention == "limits" or not seqs:
            return
        if self.config.retention == "workqueue":
            self.remove(seqs)
            return
        done = [s for s in seqs if self._nobody_needs(s)]
        self.remove(done)

    def _nobody_needs(self, seq: int) -> bool:
        msg = self.store.get(seq)
        if msg is None:
            return False
        return all(not c.still_needs(msg) for c in self.consumers.values())

    def drop_uninterested(self, msg: StoredMessage) -> None:
        """Interest retention: a message no consumer wants is not kept."""
        if self.config.retention == "interest" and self._nobody_needs(msg.seq):
            self.remove([msg.seq])

    # -- info ------------------------------------------------------------------------------

    def state_json(self) -> dict[str, Any]:
        st = self.store
        first = st.get(st.first_seq)
        last = st.get(st.last_seq)
        span = st.last_seq - st.first_seq + 1 if st.num_msgs else 0
        return {
            "messages": st.num_msgs,
            "bytes": st.num_bytes,
            "first_seq": st.first_seq,
            "first_ts": rfc3339(first.time_ns) if first else "0001-01-01T00:00:00Z",
            "last_seq": st.last_seq,
            "last_ts": rfc3339(last.time_ns) if last else "0001-01-01T00:00:00Z",
            "num_subjects": len(self._by_subject),
            "num_deleted": max(0, span - st.num_msgs),
            "consumer_count": len(self.consumers),
        }

    def info_json(self, now_ns: int) -> dict[str, Any]:
        return {
            "config": self.config.to_json(),
            "created": rfc3339(self.created_ns),
            "state": self.state_json(),
            "ts": rfc3339(now_ns),
        }


def _as_int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise E.bad_request() from None
