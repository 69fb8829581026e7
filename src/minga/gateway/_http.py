"""HTTP/1.1 wire pieces of the proxy, as pure functions: headers in, bytes out.

Header names and values are ``bytes`` as they came off the wire; names are compared
lowercased. Nothing here touches a socket.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus

__all__ = [
    "IDEMPOTENT",
    "INTERNAL_PATHS",
    "Headers",
    "RouteMatch",
    "Router",
    "TargetRefused",
    "chunk",
    "error_response",
    "filter_headers",
    "header_value",
    "is_internal",
    "normalize_target",
    "request_head",
    "response_head",
]

Headers = list[tuple[bytes, bytes]]

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Methods whose requests may be sent again (RFC 9110 section 9.2.2)."""

# hop-by-hop headers (RFC 9110 section 7.6.1) and those the proxy rewrites itself
_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"expect",
    }
)

LAST_CHUNK = b"0\r\n\r\n"


INTERNAL_PATHS = (b"/metrics", b"/healthz")
"""A replica's own endpoints: forwarded only by a route that names them in ``expose``."""

_ENCODED_SEPARATOR = re.compile(rb"%(2f|5c)", re.IGNORECASE)
_ENCODED_DOT = re.compile(rb"%2e", re.IGNORECASE)


class TargetRefused(ValueError):
    """A request target the gateway will not route; the message says why."""


def normalize_target(target: bytes) -> bytes:
    """``target`` with its path normalised, so that a route sees the path the upstream will.

    Percent-encoded dots are decoded, empty segments (``//``) dropped, and ``.`` and ``..``
    segments resolved (RFC 3986 section 5.2.4); the query is kept as it is. A target that is
    not a path (absolute-form, ``*``), one with an encoded or literal slash that is not a
    separator (``%2F``, ``%5C``, ``\\``), or one whose ``..`` climbs above the root raises
    :class:`TargetRefused`. A plain path is returned as it is, at the cost of a few scans.
    """
    if target[:1] != b"/":
        raise TargetRefused("the request target must be a path starting with /")
    end = target.find(b"?")
    path = target if end == -1 else target[:end]
    # the common case, a plain path, costs four scans of it
    if b"%" not in path and b"/." not in path and b"//" not in path and b"\\" not in path:
        return target
    end = len(path)
    i = path.find(b"#")  # a fragment is never sent, but a client may: it ends the path too
    if i != -1:
        end = i
    path = target[:end]
    if b"\\" in path or _ENCODED_SEPARATOR.search(path):
        raise TargetRefused("an encoded slash or a backslash in the path is not routed")
    path = _ENCODED_DOT.sub(b".", path)
    out: list[bytes] = []
    segments = path.split(b"/")[1:]
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == b"..":
            if not out:
                raise TargetRefused("the path climbs above the root with ..")
            out.pop()
        elif segment not in (b".", b""):
            out.append(segment)
            continue
        if last:
            out.append(b"")  # "/a/." and "/a/b/.." name a directory: keep the trailing slash
    return b"/" + b"/".join(out) + target[end:]


def is_internal(target: bytes, paths: tuple[bytes, ...] = INTERNAL_PATHS) -> bool:
    """Whether the path of ``target`` (normalised, with its query) is one of ``paths`` or under one."""
    if not target.startswith(paths):  # one call in the common case
        return False
    path = target.split(b"?", 1)[0].split(b"#", 1)[0]
    return any(path == p or path.startswith(p + b"/") for p in paths)


def header_value(headers: Headers, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lowercase), or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def filter_headers(headers: Headers, drop: Iterable[bytes] = ()) -> Headers:
    """``headers`` without hop-by-hop ones, those named by ``Connection``, and ``drop`` (lowercase)."""
    named: set[bytes] = set(drop)
    for key, value in headers:
        if key.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    return [(k, v) for k, v in headers if (low := k.lower()) not in _HOP and low not in named]


def request_head(method: str, target: bytes, headers: Headers) -> bytes:
    """``METHOD target HTTP/1.1`` and the headers, ending with the blank line."""
    parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    for key, value in headers:
        parts += (key, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


_REASONS = {s.value: s.phrase.encode("ascii") for s in HTTPStatus}


def response_head(status: int, headers: Headers) -> bytes:
    """``HTTP/1.1 status reason`` and the headers, ending with the blank line."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))]
    for key, value in headers:
        parts += (key, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never the last one: an empty ``data`` gives ``b""``)."""
    if not data:
        return b""
    return b"%x\r\n%s\r\n" % (len(data), data)


def error_response(
    status: int,
    message: str,
    *,
    request_id: bytes | None = None,
    close: bool = False,
    extra: Headers | None = None,
    routes: list[str] | None = None,
) -> bytes:
    """A complete JSON error response the gateway answers by itself: ``{"error": {...}}``; ``routes``
    (the paths it does route) is added to the error when given, so a 404 says where to go."""
    error: dict[str, object] = {"status": status, "message": message}
    if routes is not None:
        error["routes"] = routes
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    headers: Headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", str(len(body)).encode()),
    ]
    if request_id is not None:
        headers.append((b"X-Request-ID", request_id))
    if extra:
        headers.extend(extra)
    if close:
        headers.append((b"Connection", b"close"))
    return response_head(status, headers) + body


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """Which route took a request, and the target to send upstream."""

    index: int
    target: bytes


class Router:
    """Finds the route of a request by Host and path prefix; the longest prefix wins.

    ``routes`` are ``(prefix, host or None, strip_prefix)``. A prefix matches at segment
    boundaries: ``/api/orders`` takes ``/api/orders``, ``/api/orders/1`` and
    ``/api/orders?x=1``, never ``/api/ordersx``. With ``strip_prefix`` the prefix is removed
    (``/api/orders/healthz`` becomes ``/healthz``, ``/api/orders`` becomes ``/``).
    """

    def __init__(self, routes: Sequence[tuple[str, str | None, bool]]) -> None:
        entries = []
        for index, (prefix, host, strip) in enumerate(routes):
            p = prefix.rstrip("/").encode()
            entries.append((p, host.lower().encode() if host else None, strip, index))
        # longest prefix first; among equal prefixes, host-specific routes first
        self._routes = sorted(entries, key=lambda e: (-len(e[0]), e[1] is None))

    def match(self, target: bytes, host: bytes | None) -> RouteMatch | None:
        path_end = len(target)
        for sep in (b"?", b"#"):
            i = target.find(sep)
            if i != -1:
                path_end = min(path_end, i)
        path = target[:path_end]
        if host is not None:
            host = host.lower()
            if host.startswith(b"["):
                host = host[: host.find(b"]") + 1]
            elif b":" in host:
                host = host.rsplit(b":", 1)[0]
        for prefix, want_host, strip, index in self._routes:
            if want_host is not None and want_host != host:
                continue
            if prefix and not (path == prefix or path.startswith(prefix + b"/")):
                continue
            if not strip or not prefix:
                return RouteMatch(index, target)
            rest = target[len(prefix) :]
            if not rest.startswith(b"/"):
                rest = b"/" + rest
            return RouteMatch(index, rest)
        return None
