"""Stream and consumer configurations as the JetStream JSON API carries them.

Durations are nanoseconds on the wire and here. ``from_request`` validates a request's
JSON object and fills nats-server's defaults; ``to_json`` is what info replies carry.
Unknown fields are ignored, as nats-server ignores them; fields that ask for something this
broker does not do (sources, mirrors, nats-server 2.10's compression, first sequence, subject
transform and consumer limits) are refused with a clear error rather than dropped.
"""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass, field
from typing import Any

from minga.broker.jetstream import _errors as E
from minga.broker.jetstream._republish import Republish
from minga.broker.jetstream._subjects import is_literal, is_valid_pattern, overlaps

__all__ = ["ConsumerConfig", "StreamConfig", "rfc3339", "rfc3339_to_ns"]

SECOND = 1_000_000_000
DEFAULT_DUPLICATE_WINDOW = 120 * SECOND
DEFAULT_ACK_WAIT = 30 * SECOND
DEFAULT_MAX_ACK_PENDING = 1000
DEFAULT_MAX_WAITING = 512
DEFAULT_EPHEMERAL_INACTIVE = 5 * SECOND
# a name becomes a file name and a subject token: no separators, wildcards or control characters
_BAD_NAME = frozenset(" .*>/\\") | frozenset(map(chr, range(32))) | {"\x7f"}


def rfc3339(ns: int) -> str:
    """``ns`` (Unix nanoseconds) as an RFC 3339 UTC timestamp with nanoseconds, as nats-server writes them."""
    secs, frac = divmod(ns, SECOND)
    base = datetime.datetime.fromtimestamp(secs, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def rfc3339_to_ns(text: str) -> int:
    """Parse an RFC 3339 timestamp (any fraction digits) into Unix nanoseconds."""
    s = text.strip().replace("Z", "+00:00")
    frac_ns = 0
    if "." in s:
        head, rest = s.split(".", 1)
        digits = ""
        while rest and rest[0].isdigit():
            digits, rest = digits + rest[0], rest[1:]
        frac_ns = int((digits + "000000000")[:9])
        s = head + rest
    dt = datetime.datetime.fromisoformat(s)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.UTC)
    return int(dt.timestamp()) * SECOND + frac_ns


def valid_name(name: str) -> bool:
    """True for a stream, consumer or durable name: not empty, no ``.``, ``*``, ``>``, slashes,
    whitespace or control characters (NUL included)."""
    return bool(name) and _BAD_NAME.isdisjoint(name)


def _int(req: dict[str, Any], key: str, default: int) -> int:
    val = req.get(key)
    if val is None:
        return default
    if isinstance(val, bool) or not isinstance(val, int | float):
        raise E.invalid_json(f"{key} must be a number")
    return int(val)


def _str(req: dict[str, Any], key: str, default: str = "") -> str:
    val = req.get(key)
    if val is None:
        return default
    if not isinstance(val, str):
        raise E.invalid_json(f"{key} must be a string")
    return val


def _bool(req: dict[str, Any], key: str) -> bool:
    return bool(req.get(key) or False)


def _choice(req: dict[str, Any], key: str, default: str, allowed: tuple[str, ...], what: str) -> str:
    val = _str(req, key, default) or default
    if val not in allowed:
        raise E.invalid_json(f"invalid {what} {val!r}")
    return val


@dataclass(slots=True)
class StreamConfig:
    """A stream's configuration; durations in nanoseconds, ``-1`` means unlimited."""

    name: str
    subjects: list[str]
    description: str = ""
    retention: str = "limits"
    max_consumers: int = -1
    max_msgs: int = -1
    max_bytes: int = -1
    max_age: int = 0
    max_msgs_per_subject: int = -1
    max_msg_size: int = -1
    discard: str = "old"
    discard_new_per_subject: bool = False
    storage: str = "file"
    num_replicas: int = 1
    duplicate_window: int = DEFAULT_DUPLICATE_WINDOW
    no_ack: bool = False
    sealed: bool = False
    deny_delete: bool = False
    deny_purge: bool = False
    allow_rollup_hdrs: bool = False
    allow_direct: bool = False
    mirror_direct: bool = False
    republish: Republish | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_request(cls, req: dict[str, Any], name_in_subject: str | None = None) -> StreamConfig:
        name = _str(req, "name", name_in_subject or "")
        if name_in_subject is not None and name != name_in_subject:
            raise E.stream_mismatch()
        if not valid_name(name):
            raise E.stream_invalid_config(
                "stream name is required and can not contain '.', '*', '>', whitespace or control characters"
            )
        subjects = req.get("subjects") or [name]
        if not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects):
            raise E.invalid_json("subjects must be a list of strings")
        for s in subjects:
            if not is_valid_pattern(s):
                raise E.stream_invalid_config(f"invalid subject {s!r}")
        if len(set(subjects)) != len(subjects):
            raise E.stream_invalid_config("duplicate subjects detected")
        max_age = _int(req, "max_age", 0)
        window = _int(req, "duplicate_window", 0)
        if window <= 0:
            window = min(DEFAULT_DUPLICATE_WINDOW, max_age) if max_age > 0 else DEFAULT_DUPLICATE_WINDOW
        if max_age > 0 and window > max_age:
            raise E.stream_invalid_config("duplicates window can not be larger then max age")
        replicas = _int(req, "num_replicas", 1) or 1
        if replicas > 1:
            raise E.api_error(500, 10074, "replicas > 1 not supported in non-clustered mode")
        _refuse_unsupported(req)
        raw_republish = req.get("republish")
        meta = req.get("metadata") or {}
        cfg = cls(
            name=name,
            subjects=list(subjects),
            description=_str(req, "description"),
            retention=_choice(req, "retention", "limits", ("limits", "interest", "workqueue"), "retention"),
            max_consumers=_int(req, "max_consumers", -1) or -1,
            max_msgs=_int(req, "max_msgs", -1) or -1,
            max_bytes=_int(req, "max_bytes", -1) or -1,
            max_age=max_age,
            max_msgs_per_subject=_int(req, "max_msgs_per_subject", -1) or -1,
            max_msg_size=_int(req, "max_msg_size", -1) or -1,
            discard=_choice(req, "discard", "old", ("old", "new"), "discard policy"),
            discard_new_per_subject=_bool(req, "discard_new_per_subject"),
            storage=_choice(req, "storage", "file", ("file", "memory"), "storage type"),
            num_replicas=1,
            duplicate_window=window,
            no_ack=_bool(req, "no_ack"),
            sealed=_bool(req, "sealed"),
            deny_delete=_bool(req, "deny_delete"),
            deny_purge=_bool(req, "deny_purge"),
            allow_rollup_hdrs=_bool(req, "allow_rollup_hdrs"),
            allow_direct=_bool(req, "allow_direct"),
            mirror_direct=_bool(req, "mirror_direct"),
            republish=Republish.from_request(raw_republish, list(subjects)) if raw_republish else None,
            metadata={str(k): str(v) for k, v in meta.items()} if isinstance(meta, dict) else {},
        )
        if not cfg.no_ack and any(overlaps(s, "$JS.API.>") for s in cfg.subjects):
            raise E.stream_invalid_config("subjects that overlap with jetstream api require no-ack to be true")
        if cfg.discard_new_per_subject and (cfg.discard != "new" or cfg.max_msgs_per_subject <= 0):
            raise E.stream_invalid_config(
                "discard new per subject requires discard new policy and max msgs per subject to be set"
            )
        return cfg

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if not out["metadata"]:
            del out["metadata"]
        if not out["description"]:
            del out["description"]
        if self.republish is None:
            del out["republish"]
        else:
            out["republish"] = self.republish.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StreamConfig:
        """Rebuild a config saved with :meth:`to_json` (no validation: it was valid when saved)."""
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        republish = fields.pop("republish", None)
        if republish:
            fields["republish"] = Republish(republish["src"], republish["dest"], bool(republish.get("headers_only")))
        return cls(**fields)


def _refuse_unsupported(req: dict[str, Any]) -> None:
    """Refuse, with one clear line, the stream options this broker does not implement."""
    if req.get("mirror"):
        raise E.stream_invalid_config(
            "stream mirrors are not supported by the embedded broker; run nats-server for a mirrored stream"
        )
    if req.get("mirror_direct"):
        raise E.stream_invalid_config("stream has no mirror but does have mirror direct")
    if req.get("sources"):
        raise E.stream_invalid_config(
            "stream sources are not supported by the embedded broker; run nats-server for a sourced stream"
        )
    newer = {
        "compression": req.get("compression") not in (None, "", "none"),
        "first_seq": isinstance(req.get("first_seq"), int) and req["first_seq"] > 1,
        "subject_transform": bool(req.get("subject_transform")),
        "consumer_limits": isinstance(req.get("consumer_limits"), dict) and any(req["consumer_limits"].values()),
    }
    for key, asked in newer.items():
        if asked:
            raise E.stream_invalid_config(
                f"stream configuration {key} is a nats-server 2.10 feature; this broker implements 2.9 and does not offer it"
            )


@dataclass(slots=True)
class ConsumerConfig:
    """A consumer's configuration; durations in nanoseconds."""

    name: str = ""
    durable_name: str = ""
    description: str = ""
    deliver_policy: str = "all"
    opt_start_seq: int = 0
    opt_start_time: str = ""
    ack_policy: str = "explicit"
    ack_wait: int = DEFAULT_ACK_WAIT
    max_deliver: int = -1
    backoff: list[int] = field(default_factory=list)
    filter_subject: str = ""
    filter_subjects: list[str] = field(default_factory=list)
    replay_policy: str = "instant"
    max_waiting: int = 0
    max_ack_pending: int = DEFAULT_MAX_ACK_PENDING
    flow_control: bool = False
    idle_heartbeat: int = 0
    headers_only: bool = False
    deliver_subject: str = ""
    deliver_group: str = ""
    inactive_threshold: int = 0
    num_replicas: int = 0
    mem_storage: bool = False
    max_batch: int = 0
    max_expires: int = 0
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def is_push(self) -> bool:
        return bool(self.deliver_subject)

    @property
    def filters(self) -> list[str]:
        """The filter subjects (empty: every subject of the stream)."""
        if self.filter_subjects:
            return list(self.filter_subjects)
        return [self.filter_subject] if self.filter_subject else []

    @classmethod
    def from_request(cls, req: dict[str, Any]) -> ConsumerConfig:
        deliver_policy = _choice(
            req,
            "deliver_policy",
            "all",
            ("all", "last", "new", "by_start_sequence", "by_start_time", "last_per_subject"),
            "deliver policy",
        )
        ack_policy = _choice(req, "ack_policy", "explicit", ("none", "all", "explicit"), "ack policy")
        filters = req.get("filter_subjects") or []
        if not isinstance(filters, list):
            raise E.invalid_json("filter_subjects must be a list")
        cfg = cls(
            name=_str(req, "name"),
            durable_name=_str(req, "durable_name"),
            description=_str(req, "description"),
            deliver_policy=deliver_policy,
            opt_start_seq=_int(req, "opt_start_seq", 0),
            opt_start_time=_str(req, "opt_start_time"),
            ack_policy=ack_policy,
            ack_wait=_int(req, "ack_wait", 0) or DEFAULT_ACK_WAIT,
            max_deliver=_int(req, "max_deliver", -1) or -1,
            backoff=[int(b) for b in (req.get("backoff") or [])],
            filter_subject=_str(req, "filter_subject"),
            filter_subjects=[str(f) for f in filters],
            replay_policy=_choice(req, "replay_policy", "instant", ("instant", "original"), "replay policy"),
            max_waiting=_int(req, "max_waiting", 0),
            max_ack_pending=_int(req, "max_ack_pending", 0),
            flow_control=_bool(req, "flow_control"),
            idle_heartbeat=_int(req, "idle_heartbeat", 0),
            headers_only=_bool(req, "headers_only"),
            deliver_subject=_str(req, "deliver_subject"),
            deliver_group=_str(req, "deliver_group"),
            inactive_threshold=_int(req, "inactive_threshold", 0),
            num_replicas=_int(req, "num_replicas", 0),
            mem_storage=_bool(req, "mem_storage"),
            max_batch=_int(req, "max_batch", 0),
            max_expires=_int(req, "max_expires", 0),
            metadata={str(k): str(v) for k, v in (req.get("metadata") or {}).items()},
        )
        cfg._validate()
        return cfg

    def _validate(self) -> None:
        for n in (self.name, self.durable_name):
            if n and not valid_name(n):
                raise E.consumer_bad_durable()
        if self.filter_subject and self.filter_subjects:
            raise E.api_error(400, 10136, "consumer cannot have both FilterSubject and FilterSubjects specified")
        for f in self.filters:
            if not is_valid_pattern(f):
                raise E.consumer_filter_not_subset()
        if self.is_push:
            if not is_literal(self.deliver_subject):
                raise E.consumer_deliver_wildcards()
            if self.max_waiting:
                raise E.consumer_push_max_waiting()
            if self.flow_control and not self.idle_heartbeat:
                raise E.consumer_fc_requires_heartbeat()
        else:
            if self.idle_heartbeat:
                raise E.consumer_hb_requires_push()
            if self.flow_control:
                raise E.consumer_fc_requires_push()
            if not self.max_waiting:
                self.max_waiting = DEFAULT_MAX_WAITING
        if self.ack_policy == "none":
            if self.max_ack_pending > 0:
                raise E.consumer_max_pending_requires_ack()
            self.max_ack_pending = -1
        elif self.max_ack_pending == 0:
            self.max_ack_pending = DEFAULT_MAX_ACK_PENDING
        if self.deliver_policy == "by_start_sequence" and self.opt_start_seq <= 0:
            raise E.consumer_invalid_policy("consumer delivery policy is deliver by start sequence, but optional start sequence is not set")
        if self.deliver_policy != "by_start_sequence" and self.opt_start_seq:
            raise E.consumer_invalid_policy("consumer delivery policy is not by start sequence, but optional start sequence is set")
        if self.deliver_policy == "by_start_time" and not self.opt_start_time:
            raise E.consumer_invalid_policy("consumer delivery policy is deliver by start time, but optional start time is not also set")
        if not self.durable_name and not self.inactive_threshold:
            self.inactive_threshold = DEFAULT_EPHEMERAL_INACTIVE

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        for key in ("name", "description", "opt_start_time", "filter_subject", "deliver_subject", "deliver_group"):
            if not out[key]:
                del out[key]
        for key in ("opt_start_seq", "idle_heartbeat", "inactive_threshold", "max_waiting", "max_batch", "max_expires"):
            if not out[key]:
                del out[key]
        for key in ("backoff", "filter_subjects", "metadata"):
            if not out[key]:
                del out[key]
        if not self.durable_name:
            del out["durable_name"]
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
