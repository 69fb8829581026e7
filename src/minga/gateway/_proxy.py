"""The client side of the proxy: one :class:`ClientConnection` per downstream socket.

Requests are parsed with httptools and answered one after the other (pipelined requests
wait their turn); each is an :class:`Exchange` that picks an upstream instance, forwards the
request with its body streamed, and relays the response straight from the upstream
socket's ``data_received``.

Slow or oversized clients are bounded: a request head must arrive within ``header_timeout``
and fit ``max_header`` bytes (408 / 431), a body may pause no longer than ``body_timeout``
and must fit ``max_body`` (413), and an idle kept-alive connection is closed after
``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import random
import re
import time
from typing import TYPE_CHECKING, cast

import httptools

from minga.bus import TraceContext
from minga.gateway._http import (
    IDEMPOTENT,
    LAST_CHUNK,
    Headers,
    chunk,
    error_response,
    filter_headers,
    header_value,
    request_head,
    response_head,
)
from minga.gateway._upstream import ConnectFailed, UpstreamConnection

if TYPE_CHECKING:
    from minga.gateway._gateway import Gateway, _RouteState, _UpstreamState

__all__ = ["ClientConnection"]

access_log = logging.getLogger("minga.gateway.access")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
_ids = random.Random(os.urandom(16))  # ids need to be unique, not secret: no system call per request


def _hex(bits: int) -> str:
    return f"{_ids.getrandbits(bits) or 1:0{bits // 4}x}"


KEEP_FOR_RETRY = 64 * 1024  # request bodies up to this size are kept so that a retry can resend them
PAUSE_ABOVE = 1024 * 1024  # unread request body bytes above which the client is not read


class _Reject(Exception):
    """Raised inside a parser callback to stop parsing; ``status`` is what the client is told."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Body:
    """A request body as it arrives: parts in order, kept for a retry while small."""

    __slots__ = ("conn", "done", "error", "keep", "parts", "received", "unread", "waiter")

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.parts: list[bytes] = []
        self.received = 0
        self.unread = 0
        self.done = False
        self.keep = True
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def feed(self, data: bytes) -> None:
        self.parts.append(data)
        self.received += len(data)
        self.unread += len(data)
        if self.received > KEEP_FOR_RETRY:
            self.keep = False
        if self.unread > PAUSE_ABOVE:
            self.conn.pause_reading()
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    @property
    def replayable(self) -> bool:
        return self.done and self.keep

    async def read(self, index: int) -> bytes | None:
        """Part ``index``, waiting for it; None after the last part. Raises if the client failed."""
        while True:
            if self.error is not None:
                raise self.error
            if index < len(self.parts):
                data = self.parts[index]
                if not self.keep:
                    self.parts[index] = b""
                self.unread = max(0, self.unread - len(data))
                if self.unread <= PAUSE_ABOVE // 2:
                    self.conn.resume_reading()
                return data
            if self.done:
                return None
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter


class _Request:
    __slots__ = (
        "body",
        "chunked",
        "error",
        "headers",
        "keep_alive",
        "length",
        "method",
        "pending",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.headers: Headers = []
        self.version = "1.1"
        self.keep_alive = True
        self.upgrade = False
        self.length: int | None = None
        self.chunked = False
        self.body: _Body | None = None
        self.error: _Reject | None = None
        self.pending = bytearray()  # bytes after an Upgrade request, sent once the tunnel opens


class ClientConnection(asyncio.Protocol):
    """One downstream connection: parse, queue, answer in order, enforce the client limits."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.loop = gateway.loop
        self.limits = gateway.spec.limits
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.queue: collections.deque[_Request] = collections.deque()
        self.req: _Request | None = None  # the request being parsed
        self.busy = False
        self.closed = False
        self.head_bytes = 0
        self.exchange: Exchange | None = None
        self.tunnel: UpstreamConnection | None = None
        self.upgrading = False
        self.write_paused = False
        self._read_paused = False
        self.deadline = 0.0  # loop time when the current client limit runs out; 0: none
        self.deadline_kind = ""

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.gw.clients.add(self)
        self._arm(self.limits.header_timeout, "header")

    def data_received(self, data: bytes) -> None:
        if self.tunnel is not None:
            self.tunnel.write(data)
            return
        if self.upgrading:
            if self.queue:
                self.queue[-1].pending += data
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgrading = True
            if self.queue:
                self.queue[-1].pending += data[upgrade.args[0] :]
            self.pause_reading()
        except httptools.HttpParserError as exc:
            reject = exc.__context__ if isinstance(exc.__context__, _Reject) else None
            self._malformed(reject or _Reject(400, f"malformed request: {exc}"))

    def eof_received(self) -> bool:
        if self.req is not None and self.req.body is not None and not self.req.body.done:
            self.req.body.fail(ConnectionResetError("client closed before sending the whole body"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        self.gw.clients.discard(self)
        for req in (*self.queue, self.req):
            if req is not None and req.body is not None and not req.body.done:
                req.body.fail(ConnectionResetError("client went away"))
        if self.exchange is not None:
            self.exchange.client_lost()
        if self.tunnel is not None:
            self.tunnel.close()

    def pause_writing(self) -> None:
        self.write_paused = True
        ex = self.exchange
        if ex is not None and ex.conn is not None and ex.conn.transport is not None:
            ex.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        ex = self.exchange
        if ex is not None and ex.conn is not None and ex.conn.transport is not None and not ex.conn.closed:
            ex.conn.transport.resume_reading()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.req = _Request()
        self.head_bytes = 0
        self._arm(self.limits.header_timeout, "header")

    def on_url(self, url: bytes) -> None:
        assert self.req is not None
        self.req.target += url
        self._count_head(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.req is not None
        self._count_head(len(name) + len(value) + 4)
        self.req.headers.append((name, value))
        low = name.lower()
        if low == b"content-length":
            try:
                self.req.length = int(value)
            except ValueError:
                raise _Reject(400, "bad Content-Length") from None
        elif low == b"transfer-encoding" and b"chunked" in value.lower():
            self.req.chunked = True

    def _count_head(self, n: int) -> None:
        self.head_bytes += n
        if self.head_bytes > self.limits.max_header:
            raise _Reject(431, f"request head larger than {self.limits.max_header} bytes")

    def on_headers_complete(self) -> None:
        req = self.req
        assert req is not None
        req.method = self.parser.get_method().decode("ascii", "replace")
        req.version = self.parser.get_http_version()
        req.keep_alive = self.parser.should_keep_alive()
        req.upgrade = self.parser.should_upgrade()
        if req.length is not None and req.length > self.limits.max_body:
            raise _Reject(413, f"request body larger than {self.limits.max_body} bytes")
        if req.chunked or (req.length or 0) > 0:
            req.body = _Body(self)
            self._arm(self.limits.body_timeout, "body")
        else:
            self._disarm()
        self.queue.append(req)
        if len(self.queue) > 1:
            self.pause_reading()  # pipelined: read on once the earlier requests are answered
        if not self.busy:
            self.busy = True
            self.gw.spawn(self._process())

    def on_body(self, body: bytes) -> None:
        req = self.req
        if req is None or req.body is None:
            return
        if req.body.received + len(body) > self.limits.max_body:
            raise _Reject(413, f"request body larger than {self.limits.max_body} bytes")
        req.body.feed(body)
        self._arm(self.limits.body_timeout, "body")

    def on_message_complete(self) -> None:
        req, self.req = self.req, None
        if req is not None and req.body is not None:
            req.body.finish()
            self._disarm()

    # -- limits --------------------------------------------------------------------------------

    def _arm(self, seconds: float, kind: str) -> None:
        # a deadline the gateway's sweeper checks (Gateway.sweep): cheaper than a timer per request
        self.deadline = self.loop.time() + seconds
        self.deadline_kind = kind

    def _disarm(self) -> None:
        self.deadline = 0.0

    def expire(self, now: float) -> None:
        """Called by the gateway's sweeper: act on a deadline that has passed."""
        if self.deadline and now >= self.deadline:
            self.deadline = 0.0
            self._expired(self.deadline_kind)

    def _expired(self, kind: str) -> None:
        if self.closed:
            return
        if kind == "idle" or (kind == "header" and self.req is None and not self.queue):
            self.close()  # nothing was asked: just hang up
            return
        status, message = 408, f"request {kind} not received within the timeout"
        self._malformed(_Reject(status, message))

    def _malformed(self, reject: _Reject) -> None:
        """Answer ``reject`` once what is ahead of it is answered, then close."""
        if self.req is not None and self.req.body is not None:
            self.req.body.fail(ConnectionAbortedError(reject.message))
        current = self.req if self.req is not None and self.req in self.queue else None
        self.req = None
        self.pause_reading()
        if current is not None:
            # the request whose body broke the limit gets the answer, unless its answer has begun
            if self.exchange is not None and self.exchange.req is current:
                if not self.exchange.head_sent:
                    self.exchange.reject = reject
                    return
            else:
                current.error = reject
                return
        bad = _Request()
        bad.error = reject
        self.queue.append(bad)
        if not self.busy:
            self.busy = True
            self.gw.spawn(self._process())

    # -- answering -----------------------------------------------------------------------------

    async def _process(self) -> None:
        try:
            while self.queue and not self.closed:
                req = self.queue[0]
                if req.error is not None:
                    self.gw.count_rejected(req.error.status)
                    self.write(error_response(req.error.status, req.error.message, close=True))
                    self.close()
                    return
                exchange = Exchange(self, req)
                self.exchange = exchange
                try:
                    await exchange.run()
                finally:
                    self.exchange = None
                self.queue.popleft()
                if exchange.close_after or not req.keep_alive or self.gw.stopping:
                    self.close()
                    return
            if not self.closed:
                self._arm(self.limits.idle_timeout, "idle")
                self.resume_reading()
        except Exception:
            logging.getLogger("minga.gateway").exception("unexpected error while answering a request")
            self.close()
        finally:
            self.busy = False

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def pause_reading(self) -> None:
        if not self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._read_paused and self.transport is not None and not self.closed:
            self._read_paused = False
            self.transport.resume_reading()


class _UpstreamLost(Exception):
    """The upstream connection broke before the response was complete."""


class Exchange:
    """One request: route, limit, pick, forward (with retries), relay the response, log it."""

    def __init__(self, client: ClientConnection, req: _Request) -> None:
        self.client = client
        self.req = req
        self.gw = client.gw
        self.loop = client.loop
        self.conn: UpstreamConnection | None = None
        self.status = 0
        self.head_sent = False
        self.close_after = False
        self.reject: _Reject | None = None
        self.bytes_out = 0
        self._chunk_out = False
        self._close_delimited = False
        self._head: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._last_read = 0.0
        self._request_id = b""
        self._out: list[bytes] = []
        self._route: _RouteState | None = None
        self.trace_id: str | None = None
        if req.upgrade:
            self.close_after = True  # the connection is a tunnel now, or done with

    # -- the request ---------------------------------------------------------------------------

    async def run(self) -> None:
        started = self.loop.time()
        req = self.req
        gw = self.gw
        rid = header_value(req.headers, b"x-request-id")
        self._request_id = rid if rid is not None and _REQUEST_ID.match(rid) else _hex(128).encode()
        path_only = req.target.split(b"?", 1)[0]
        if gw.metrics_path is not None and path_only == gw.metrics_path and req.method == "GET":
            body = gw.metrics.render().encode()
            self._answer(200, body, [(b"Content-Type", b"text/plain; version=0.0.4")])
            return
        match = gw.router.match(req.target, header_value(req.headers, b"host"))
        if match is None:
            self._answer_error(404, "no route for this path")
            self._log(started, None, None, 0)
            return
        route = self._route = gw.routes[match.index]
        if gw.limiter is not None:
            wait = gw.limiter.check(self._client_key(), self.loop.time())
            if wait > 0:
                gw.metrics.limited(route.name)
                retry_after = str(max(1, int(wait + 0.999))).encode()
                self._answer_error(429, "rate limit exceeded", [(b"Retry-After", retry_after)])
                self._finish_metrics(route, started)
                self._log(started, route, None, 0)
                return
        head = self._upstream_head(match.target)
        upstream, attempts = await self._forward(route, head)
        self._finish_metrics(route, started)
        self._log(started, route, upstream, attempts)

    def _client_key(self) -> str:
        header = self.gw.limiter.header if self.gw.limiter is not None else None
        if header is not None:
            value = header_value(self.req.headers, header)
            if value:
                return "key:" + value.decode("latin-1")
        return "ip:" + self.client.peer

    def _upstream_head(self, target: bytes) -> bytes:
        req = self.req
        headers = filter_headers(
            req.headers, drop=(b"x-request-id", b"traceparent", b"x-forwarded-for", b"content-length")
        )
        if header_value(req.headers, b"host") is None:  # HTTP/1.0 clients may send none; upstreams want one
            headers.append((b"Host", self.gw.url.removeprefix("http://").encode()))
        forwarded = header_value(req.headers, b"x-forwarded-for")
        peer = self.client.peer.encode()
        headers.append((b"X-Forwarded-For", forwarded + b", " + peer if forwarded else peer))
        headers.append((b"X-Forwarded-Proto", b"http"))
        headers.append((b"X-Request-ID", self._request_id))
        parent = header_value(req.headers, b"traceparent")
        remote = TraceContext.parse(parent.decode("latin-1")) if parent is not None else None
        if remote is not None:
            trace = TraceContext(remote.trace_id, _hex(64), remote.span_id, remote.sampled)
        else:
            trace = TraceContext(_hex(128), _hex(64))
        self.trace_id = trace.trace_id
        headers.append((b"traceparent", trace.header().encode()))
        if req.upgrade:
            upgrade = header_value(req.headers, b"upgrade") or b"websocket"
            headers += [(b"Connection", b"Upgrade"), (b"Upgrade", upgrade)]
        elif req.chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        elif req.length is not None:
            headers.append((b"Content-Length", str(req.length).encode()))
        return request_head(req.method, target, headers)

    async def _forward(self, route: _RouteState, head: bytes) -> tuple[_UpstreamState | None, int]:
        """Send the request to one instance after another until one answers or retries run out."""
        gw = self.gw
        req = self.req
        timeouts = route.spec.timeouts
        idempotent = req.method in IDEMPOTENT and not req.upgrade
        tried: set[str] = set()
        attempts = 0
        route.budget.request(self.loop.time())
        last_error = "no healthy instance"
        upstream: _UpstreamState | None = None
        while True:
            upstream = gw.pick(route, tried)
            if upstream is None:
                status = 503
                self._answer_error(status, f"{last_error} of service {route.spec.service!r}")
                return None, attempts
            attempts += 1
            tried.add(upstream.endpoint.id)
            upstream.outstanding += 1
            t0 = self.loop.time()
            retry = False
            try:
                outcome = await self._attempt(
                    upstream, head, timeouts.connect, timeouts.response, timeouts.idle
                )
            finally:
                upstream.finished()
            if self.reject is not None:
                outcome = "client"  # the client broke its request: not the instance's fault
            ok = outcome == "ok"
            upstream.breaker.record(ok or outcome == "client", self.loop.time())
            gw.metrics.upstream(route.name, upstream.endpoint.address, ok, self.loop.time() - t0)
            if outcome == "connect":
                last_error = "could not connect to an instance"
                retry = True  # nothing was sent: safe for every method
            elif outcome == "lost":
                last_error = "an instance closed the connection"
                retry = idempotent and (req.body is None or req.body.replayable)
            if not retry or self.head_sent:
                break
            if attempts > route.spec.retries or not route.budget.try_retry(self.loop.time()):
                break
            gw.metrics.retry(route.name)
        if not self.head_sent and self.reject is None and outcome != "client":
            status = 504 if outcome == "timeout" else 502
            self._answer_error(status, f"{outcome_text(outcome)} ({route.spec.service})")
        elif self.reject is not None and not self.head_sent:
            self._answer_error(self.reject.status, self.reject.message, close=True)
        return upstream, attempts

    async def _attempt(
        self, upstream: _UpstreamState, head: bytes, connect: float, response: float, idle: float
    ) -> str:
        """One try on one instance: "ok", "connect", "lost", "timeout", "bad" (5xx) or "client"."""
        conn = upstream.pool.take()
        if conn is None:
            try:
                conn = await upstream.pool.connect(connect)
            except ConnectFailed:
                return "connect"
        if self.client.closed:
            upstream.pool.give_back(conn)
            return "client"
        self.conn = conn
        self._head = self.loop.create_future()
        self._done = self.loop.create_future()
        conn.sink = self
        pump: asyncio.Task[None] | None = None
        body = self.req.body
        if body is None:
            conn.write(head)
        elif body.done and all(body.parts):
            # the whole body is here: one write, one system call
            if self.req.chunked:
                conn.write(b"".join([head, *(chunk(p) for p in body.parts), LAST_CHUNK]))
            else:
                conn.write(b"".join([head, *body.parts]))
        else:
            conn.write(head)
            pump = self.gw.spawn(self._pump(conn, body))
        try:
            if not self._head.done():
                # a timer rather than asyncio.timeout: this is on every request's path
                timer = self.loop.call_later(response, self._head_timed_out, self._head)
                try:
                    await self._head
                except TimeoutError:
                    conn.close()
                    return "timeout"
                except _UpstreamLost:
                    return "client" if self.client.closed else "lost"
                finally:
                    timer.cancel()
            elif self._head.exception() is not None:
                return "client" if self.client.closed else "lost"
            if self.req.upgrade and self.status == 101:
                await self._tunnel(conn)
                return "ok"
            try:
                await self._wait_body(idle)
            except TimeoutError:
                conn.close()
                self.close_after = True
                self.client.close()
                return "timeout"
            except _UpstreamLost:
                self.close_after = True
                self.client.close()
                return "client" if self.client.closed and self.conn is None else "lost"
            if self.status in (502, 503, 504):
                return "bad"
            return "ok"
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
                conn.close()
            self.conn = None
            conn.sink = None
            if self.req.method == "HEAD" or self.req.upgrade:
                conn.close()
            upstream.pool.give_back(conn)

    @staticmethod
    def _head_timed_out(head: asyncio.Future[None]) -> None:
        if not head.done():
            head.set_exception(TimeoutError())

    async def _pump(self, conn: UpstreamConnection, body: _Body) -> None:
        """Stream the request body upstream as it arrives (chunked when the client sent it so)."""
        index = 0
        chunked = self.req.chunked
        try:
            while True:
                part = await body.read(index)
                if part is None:
                    break
                index += 1
                conn.write(chunk(part) if chunked else part)
                await conn.drain()
            if chunked:
                conn.write(LAST_CHUNK)
        except (ConnectionError, OSError):
            conn.close()  # the client left mid-body: the upstream must not take half a request

    async def _wait_body(self, idle: float) -> None:
        assert self._done is not None
        while not self._done.done():
            self._last_read = self.loop.time()
            try:
                async with asyncio.timeout(idle):
                    await asyncio.shield(self._done)
            except TimeoutError:
                if self.loop.time() - self._last_read >= idle:
                    raise
        self._done.result()

    async def _tunnel(self, conn: UpstreamConnection) -> None:
        """Relay bytes both ways after a 101 until either side closes."""
        self.close_after = True
        client = self.client
        client.tunnel = conn
        client.upgrading = False
        if self.req.pending:
            conn.write(bytes(self.req.pending))
            self.req.pending.clear()
        client.resume_reading()
        assert self._done is not None
        with contextlib.suppress(_UpstreamLost):
            await self._done

    # -- ResponseSink (called from the upstream connection's data_received) --------------------

    def response_head(self, status: int, headers: Headers, keep_alive: bool, chunked: bool) -> None:
        self.status = status
        req = self.req
        out = filter_headers(headers)
        no_body = req.method == "HEAD" or status in (204, 304)
        if status == 101 and req.upgrade:
            out += [(b"Connection", b"Upgrade"), (b"Upgrade", header_value(headers, b"upgrade") or b"")]
        elif not no_body and not chunked and header_value(headers, b"content-length") is None:
            self._close_delimited = True
            if req.version == "1.1":
                self._chunk_out = True
                out.append((b"Transfer-Encoding", b"chunked"))
            else:
                self.close_after = True
        elif chunked and not no_body:
            self._chunk_out = True
            out.append((b"Transfer-Encoding", b"chunked"))
        out.append((b"X-Request-ID", self._request_id))
        if self.close_after or not req.keep_alive or self.gw.stopping:
            out.append((b"Connection", b"close"))
        self._out.append(response_head(status, out))  # sent with the first body bytes (flush)
        self.head_sent = True
        if self._head is not None and not self._head.done():
            self._head.set_result(None)
        if req.method == "HEAD" and self._done is not None and not self._done.done():
            self._done.set_result(None)  # httptools cannot be told a HEAD response has no body
        if self.client.write_paused and self.conn is not None and self.conn.transport is not None:
            self.conn.transport.pause_reading()

    def response_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self._last_read = self.loop.time()
        self._out.append(chunk(data) if self._chunk_out else data)

    def response_done(self) -> None:
        if self._chunk_out:
            self._out.append(LAST_CHUNK)
        self.flush()
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.flush()
        if self._head is not None and not self._head.done():
            self._head.set_exception(_UpstreamLost(str(exc or "connection closed")))
            self._done_quietly()
            return
        if self._done is None or self._done.done():
            return
        if self._close_delimited or (self.req.upgrade and self.status == 101):
            self.response_done()  # the end of a close-delimited body, or of a tunnel
            return
        self._done.set_exception(_UpstreamLost(str(exc or "connection closed")))

    def flush(self) -> None:
        """Write what the last read of the upstream produced, as one write."""
        out = self._out
        if out:
            self.client.write(out[0] if len(out) == 1 else b"".join(out))
            out.clear()

    def _done_quietly(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.cancel()

    def tunnel_data(self, data: bytes) -> None:
        self.flush()
        self.client.write(data)

    def client_lost(self) -> None:
        """The client went away: stop the upstream side too."""
        conn = self.conn
        if conn is not None:
            conn.close()  # connection_lost then fails the waiting futures

    # -- answers and records -------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, headers: Headers) -> None:
        self.status = status
        headers = [
            *headers,
            (b"Content-Length", str(len(body)).encode()),
            (b"X-Request-ID", self._request_id),
        ]
        if not self.req.keep_alive:
            headers.append((b"Connection", b"close"))
        self.client.write(response_head(status, headers) + body)
        self.head_sent = True

    def _answer_error(
        self, status: int, message: str, extra: Headers | None = None, close: bool = False
    ) -> None:
        self.status = status
        close = close or not self.req.keep_alive or (self.req.body is not None and not self.req.body.done)
        self.close_after = self.close_after or close
        self.client.write(
            error_response(status, message, request_id=self._request_id, close=close, extra=extra)
        )
        self.head_sent = True

    def _finish_metrics(self, route: _RouteState, started: float) -> None:
        self.gw.metrics.request(route.name, self.status, self.loop.time() - started)

    def _log(
        self, started: float, route: _RouteState | None, upstream: _UpstreamState | None, attempts: int
    ) -> None:
        if not access_log.isEnabledFor(logging.INFO) or not self.gw.spec.access_log:
            return
        access_log.info(
            json.dumps(
                {
                    "ts": round(time.time(), 3),
                    "request_id": self._request_id.decode(),
                    "trace_id": self.trace_id,
                    "client": self.client.peer,
                    "method": self.req.method,
                    "path": self.req.target.decode("latin-1"),
                    "route": route.name if route else None,
                    "upstream": upstream.endpoint.address if upstream else None,
                    "status": self.status,
                    "bytes": self.bytes_out,
                    "attempts": attempts,
                    "duration_ms": round((self.loop.time() - started) * 1000, 3),
                },
                separators=(",", ":"),
            )
        )


def outcome_text(outcome: str) -> str:
    return {
        "connect": "could not connect to an instance",
        "lost": "the instance closed the connection before answering",
        "timeout": "the instance did not answer in time",
        "bad": "the instance failed",
    }.get(outcome, outcome)
