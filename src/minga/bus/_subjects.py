"""Names on the bus, as pure functions: RPC and event subjects, queue streams and dead letters."""

from __future__ import annotations

import functools
import re

from minga.errors import UsageError

__all__ = [
    "DEAD_LETTER_STREAM",
    "check_name",
    "dead_letter_subject",
    "event_subject",
    "queue_stream",
    "queue_subject",
    "rpc_subject",
]

DEAD_LETTER_STREAM = "MINGA_DLQ"

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_TOPIC_TOKEN = re.compile(r"^([A-Za-z0-9_-]+|\*|>)$")


def check_name(kind: str, name: str) -> str:
    """``name`` if it is one subject token (letters, digits, ``_`` and ``-``); UsageError otherwise."""
    if not _NAME.match(name):
        raise UsageError(
            f"{kind} name {name!r} must be letters, digits, '_' or '-' (it becomes a subject token)"
        )
    return name


def _check_topic(topic: str, *, wildcards: bool) -> str:
    tokens = topic.split(".")
    for i, token in enumerate(tokens):
        ok = _TOPIC_TOKEN.match(token) is not None and (wildcards or token not in ("*", ">"))
        if not ok or (token == ">" and i != len(tokens) - 1):
            raise UsageError(
                f"topic {topic!r} must be dot-separated tokens of letters, digits, '_' or '-'"
                + (" ('*' and a final '>' match any token)" if wildcards else "")
            )
    return topic


@functools.lru_cache(maxsize=4096)  # called for every request: validate each name once
def rpc_subject(service: str, method: str) -> str:
    """``minga.rpc.<service>.<method>``."""
    return f"minga.rpc.{check_name('service', service)}.{check_name('method', method)}"


@functools.lru_cache(maxsize=4096)
def event_subject(topic: str, *, wildcards: bool = False) -> str:
    """``minga.evt.<topic>``; a subscription may use NATS wildcards in ``topic``."""
    return f"minga.evt.{_check_topic(topic, wildcards=wildcards)}"


def queue_subject(queue: str) -> str:
    """``minga.q.<queue>``: where jobs for a durable work queue are published."""
    return f"minga.q.{check_name('queue', queue)}"


def queue_stream(queue: str) -> str:
    """The JetStream stream that holds a work queue's jobs: ``MINGA_Q_<queue>``."""
    return f"MINGA_Q_{check_name('queue', queue)}"


def dead_letter_subject(queue: str) -> str:
    """``minga.dlq.<queue>``: where a job lands after its last failed delivery (stream MINGA_DLQ)."""
    return f"minga.dlq.{check_name('queue', queue)}"
