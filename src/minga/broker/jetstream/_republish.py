"""Republish: a stream's configured copy of each stored message to another subject.

A :class:`Republish` maps a stored message's subject through ``src`` -> ``dest`` as
nats-server 2.9 does: ``src`` (default ``>``) selects the subjects, and ``dest`` uses each
``*`` of ``src`` through ``$n`` or ``{{wildcard(n)}}`` (n from 1) and ends in ``>`` exactly
when ``src`` does. Every wildcard of ``src`` must be used; a plain ``*`` in ``dest`` is not
a mapping. Pure functions: the engine publishes what :meth:`Republish.message` returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from minga.broker.jetstream import _errors as E
from minga.broker.jetstream._headers import header_block
from minga.broker.jetstream._subjects import is_literal, is_valid_pattern, matches, overlaps

__all__ = ["Republish"]

_WILDCARD_REF = re.compile(r"^(?:\$(\d+)|\{\{\s*wildcard\s*\(\s*(\d+)\s*\)\s*\}\})$")
_INVALID = "stream configuration for republish not valid"


@dataclass(frozen=True, slots=True)
class Republish:
    """``src`` -> ``dest`` (see the module docstring); ``headers_only`` sends headers and the size only."""

    src: str
    dest: str
    headers_only: bool = False
    _plan: tuple[str | int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_plan", tuple(self._tokens()))

    @classmethod
    def from_request(cls, raw: object, stream_subjects: list[str]) -> Republish:
        """Validate a stream configuration's ``republish`` object against the stream's subjects.

        Raises :class:`~minga.errors.JetStreamError` with nats-server's code and text when the
        mapping is not valid, when ``src`` selects none of the stream's subjects, or when ``dest``
        would be stored by the stream again (a cycle).
        """
        if not isinstance(raw, dict):
            raise E.invalid_json("republish must be an object")
        src = raw.get("src") or ">"
        dest = raw.get("dest") or ""
        if not isinstance(src, str) or not isinstance(dest, str) or not is_valid_pattern(src):
            raise E.stream_invalid_config(_INVALID)
        rp = cls(src, dest, bool(raw.get("headers_only")))  # validates dest against src
        if not any(overlaps(src, s) for s in stream_subjects):
            raise E.stream_invalid_config("stream configuration for republish source is not valid subset of subjects")
        literal_dest = ".".join("*" if _WILDCARD_REF.match(t) else t for t in dest.split("."))
        if any(overlaps(literal_dest, s) for s in stream_subjects):
            raise E.stream_invalid_config("stream configuration for republish destination forms a cycle")
        return rp

    def _tokens(self) -> list[str | int]:
        """``dest`` as literal tokens and wildcard indexes (0-based); ``>`` stays a token."""
        src = self.src.split(".")
        stars = src.count("*")
        out: list[str | int] = []
        used: set[int] = set()
        dest = self.dest.split(".") if self.dest else []
        if not dest:
            raise E.stream_invalid_config(_INVALID)
        for i, token in enumerate(dest):
            ref = _WILDCARD_REF.match(token)
            if ref is not None:
                n = int(ref.group(1) or ref.group(2))
                if not 1 <= n <= stars:
                    raise E.stream_invalid_config(_INVALID)
                used.add(n - 1)
                out.append(n - 1)
            elif token == ">":
                if i != len(dest) - 1 or src[-1] != ">":
                    raise E.stream_invalid_config(_INVALID)
                out.append(token)
            elif "{{" in token:
                raise E.stream_invalid_config(
                    f"stream configuration for republish uses {token!r}: only $n and {{{{wildcard(n)}}}} are supported"
                )
            elif not token or not is_literal(token):
                raise E.stream_invalid_config(_INVALID)
            else:
                out.append(token)
        if len(used) != stars or (src[-1] == ">" and dest[-1] != ">"):
            raise E.stream_invalid_config(_INVALID)
        return out

    def subject_for(self, subject: str) -> str | None:
        """Where a message stored under ``subject`` is republished, or None when ``src`` does not select it."""
        if not matches(self.src, subject):
            return None
        tokens = subject.split(".")
        src = self.src.split(".")
        stars = [tokens[i] for i, t in enumerate(src) if t == "*"]
        out: list[str] = []
        for t in self._plan:
            if isinstance(t, int):
                out.append(stars[t])
            elif t == ">":
                out.extend(tokens[len(src) - 1 :])
            else:
                out.append(t)
        return ".".join(out)

    def message(
        self, stream: str, subject: str, seq: int, last_seq: int, headers: bytes | None, payload: bytes
    ) -> tuple[str, bytes, bytes] | None:
        """The republished ``(subject, headers, payload)`` of a stored message, or None when not selected.

        ``last_seq`` is the sequence of the previous message on the same subject (0 when none).
        """
        to = self.subject_for(subject)
        if to is None or not is_literal(to):  # a wildcard publish (a KV purge of "a.*") is stored, not republished
            return None
        added = {
            "Nats-Stream": stream,
            "Nats-Subject": subject,
            "Nats-Sequence": str(seq),
            "Nats-Last-Sequence": str(last_seq),
        }
        if self.headers_only:
            added["Nats-Msg-Size"] = str(len(payload))
            payload = b""
        return to, header_block(added, base=headers), payload

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"src": self.src, "dest": self.dest}
        if self.headers_only:
            out["headers_only"] = True
        return out
