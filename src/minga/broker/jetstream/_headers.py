"""Reading and writing NATS header blocks (``NATS/1.0`` + MIME-style lines), as pure functions."""

from __future__ import annotations

__all__ = ["header_block", "parse_headers", "status_block"]

_HEAD = b"NATS/1.0"


def parse_headers(raw: bytes | None) -> dict[str, str]:
    """The headers of a raw block (first value wins for repeated keys); ``{}`` for None or garbage."""
    if not raw or not raw.startswith(_HEAD):
        return {}
    out: dict[str, str] = {}
    for line in raw.split(b"\r\n")[1:]:
        if not line:
            continue
        key, sep, value = line.partition(b":")
        if not sep:
            continue
        k = key.decode("utf-8", "replace").strip()
        if k and k not in out:
            out[k] = value.decode("utf-8", "replace").strip()
    return out


def header_block(headers: dict[str, str], base: bytes | None = None) -> bytes:
    """A header block with ``headers`` added to (or replacing those keys in) the raw block ``base``."""
    lines: list[bytes] = []
    if base and base.startswith(_HEAD):
        keys = {k.lower() for k in headers}
        for line in base.split(b"\r\n")[1:]:
            if not line:
                continue
            key = line.partition(b":")[0].decode("utf-8", "replace").strip().lower()
            if key not in keys:
                lines.append(line)
    lines.extend(f"{k}: {v}".encode() for k, v in headers.items())
    return _HEAD + b"\r\n" + b"".join(line + b"\r\n" for line in lines) + b"\r\n"


def status_block(code: int, description: str, headers: dict[str, str] | None = None) -> bytes:
    """A status-only header block such as ``NATS/1.0 404 No Messages``."""
    extra = b"".join(f"{k}: {v}\r\n".encode() for k, v in (headers or {}).items())
    return f"NATS/1.0 {code} {description}\r\n".encode() + extra + b"\r\n"
