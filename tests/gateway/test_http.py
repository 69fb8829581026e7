"""The proxy's pure wire pieces: routing, hop-by-hop headers, heads and chunks."""

from __future__ import annotations

import pytest

from minga.gateway._http import (
    Router,
    TargetRefused,
    chunk,
    error_response,
    filter_headers,
    is_internal,
    normalize_target,
    request_head,
)


def test_router_matches_prefixes_at_segment_boundaries_and_strips() -> None:
    router = Router([("/api/orders", None, True), ("/api", None, False), ("/", "shop.example", False)])
    m = router.match(b"/api/orders/healthz?x=1", b"localhost:8080")
    assert m is not None and m.index == 0 and m.target == b"/healthz?x=1"
    m = router.match(b"/api/orders", None)
    assert m is not None and m.target == b"/"
    m = router.match(b"/api/orders?x", None)
    assert m is not None and m.target == b"/?x"
    m = router.match(b"/api/ordersx", None)
    assert m is not None and m.index == 1 and m.target == b"/api/ordersx"
    assert router.match(b"/other", b"localhost") is None
    m = router.match(b"/other", b"Shop.Example:80")
    assert m is not None and m.index == 2


def test_hop_by_hop_headers_and_those_named_by_connection_are_dropped() -> None:
    headers = [
        (b"Host", b"a"),
        (b"Connection", b"keep-alive, X-Secret-Hop"),
        (b"X-Secret-Hop", b"1"),
        (b"Transfer-Encoding", b"chunked"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Accept", b"*/*"),
    ]
    assert filter_headers(headers, drop=(b"accept",)) == [(b"Host", b"a")]


def test_heads_chunks_and_errors() -> None:
    assert request_head("GET", b"/x", [(b"Host", b"h")]) == b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n"
    assert chunk(b"hello") == b"5\r\nhello\r\n" and chunk(b"") == b""
    raw = error_response(429, "slow down", extra=[(b"Retry-After", b"1")], close=True)
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"Retry-After: 1" in head and b"Connection: close" in head
    assert body == b'{"error":{"status":429,"message":"slow down"}}'


def test_normalize_target_resolves_dot_segments_and_refuses_what_it_cannot_route() -> None:
    assert normalize_target(b"/api/orders?x=1") == b"/api/orders?x=1"
    assert normalize_target(b"/api/orders/../../etc/passwd") == b"/etc/passwd"
    assert normalize_target(b"/a//b/./c?x=/../") == b"/a/b/c?x=/../"
    assert normalize_target(b"/a/%2e%2E/b") == b"/b"
    assert normalize_target(b"/a/b/..") == b"/a/"
    assert normalize_target(b"/a/.") == b"/a/"
    for target in (b"/../x", b"/a/%2F..", b"/a/%5c", b"/a\\b", b"*", b"http://example.com/"):
        with pytest.raises(TargetRefused):
            normalize_target(target)
    assert is_internal(b"/metrics?x=1") and is_internal(b"/healthz/") and not is_internal(b"/metricsx")
