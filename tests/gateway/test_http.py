"""The proxy's pure wire pieces: routing, hop-by-hop headers, heads and chunks."""

from __future__ import annotations

from minga.gateway._http import Router, chunk, error_response, filter_headers, request_head


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
