"""NATS header blocks (``HPUB``/``HMSG``): encode and decode, as pure functions.

A block is ``NATS/1.0[ status[ description]]\\r\\n`` followed by ``Name: value\\r\\n``
lines and an empty line. A status line without headers (``NATS/1.0 503\\r\\n\\r\\n``)
is how nats-server says "no responders".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from minga.errors import ProtocolError

__all__ = ["NO_RESPONDERS", "HeaderBlock", "decode_headers", "encode_headers"]

_VERSION = b"NATS/1.0"

NO_RESPONDERS = b"NATS/1.0 503\r\n\r\n"
"""The header block nats-server sends to a requester when nobody listens on the subject."""


class HeaderBlock(NamedTuple):
    """A decoded header block: ``status`` (None when absent), its ``description``, the header pairs in order."""

    status: int | None
    description: str
    headers: list[tuple[str, str]]

    def get(self, name: str) -> str | None:
        """The first value of header ``name`` (case-sensitive, as NATS headers are), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


def encode_headers(
    headers: Mapping[str, str | Sequence[str]] | Iterable[tuple[str, str]] | None = None,
    *,
    status: int | None = None,
    description: str = "",
) -> bytes:
    """The raw header block for ``headers`` (a mapping, values may be lists, or pairs).

    Raises :class:`ValueError` when a name or value holds a line break or a name holds ``:``.

    >>> encode_headers({"Trace": "abc"})
    b'NATS/1.0\\r\\nTrace: abc\\r\\n\\r\\n'
    """
    pairs: list[tuple[str, str]] = []
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if isinstance(value, str):
                pairs.append((key, value))
            else:
                pairs.extend((key, v) for v in value)
    elif headers is not None:
        pairs.extend(headers)
    first = "NATS/1.0"
    if status is not None:
        first += f" {status:03d}"
        if description:
            first += f" {description}"
    lines = [first]
    for key, value in pairs:
        if not key or ":" in key or _has_break(key) or _has_break(value):
            raise ValueError(f"invalid header {key!r}: {value!r}")
        lines.append(f"{key}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def decode_headers(block: bytes) -> HeaderBlock:
    """Decode a raw header block. Raises :class:`~minga.errors.ProtocolError` when it is malformed."""
    if not block.startswith(_VERSION):
        raise ProtocolError("header block does not start with NATS/1.0")
    if not block.endswith(b"\r\n\r\n") and block != _VERSION + b"\r\n":
        raise ProtocolError("header block does not end with an empty line")
    try:
        text = block.decode()
    except UnicodeDecodeError:
        raise ProtocolError("header block is not UTF-8") from None
    lines = text.split("\r\n")
    first = lines[0][len("NATS/1.0") :].strip()
    status: int | None = None
    description = ""
    if first:
        code, _, description = first.partition(" ")
        if not (len(code) == 3 and code.isdigit()):
            raise ProtocolError(f"invalid status in header block: {code!r}")
        status = int(code)
        description = description.strip()
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ProtocolError(f"invalid header line: {line!r}")
        headers.append((key.strip(), value.strip()))
    return HeaderBlock(status, description, headers)


def _has_break(text: str) -> bool:
    return "\r" in text or "\n" in text
