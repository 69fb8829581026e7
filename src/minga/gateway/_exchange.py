"""One request's way through the gateway: an :class:`Exchange`.

Route, rate limit, pick an instance, forward, relay the response, record. The common case —
a request without a body, and an idle kept-alive connection to the picked instance — runs
entirely in callbacks (no task, no future): the head is written upstream from the client's
``data_received`` and the answer relayed from the upstream's. Everything else (a body to
stream, a connection to open, a retry, an Upgrade) continues in a task
(:meth:`Exchange.run_slow`), with the same rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import time
from typing import TYPE_CHECKING

from minga.bus import Span, TraceContext, random_id
from minga.gateway._auth import SUBJECT_HEADER, AuthRefused
from minga.gateway._http import (
    IDEMPOTENT,
    LAST_CHUNK,
    Headers,
    TargetRefused,
    chunk,
    error_response,
    filter_headers,
    header_value,
    is_internal,
    normalize_target,
    request_head,
    response_head,
)
from minga.gateway._resilience import TokenBucket
from minga.gateway._state import _Body, _Reject, _Request, _RouteState, _UpstreamState
from minga.gateway._upstream import ConnectFailed, UpstreamConnection

if TYPE_CHECKING:
    from minga.gateway._proxy import ClientConnection

__all__ = ["Exchange"]

access_log = logging.getLogger("minga.gateway.access")

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


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
        self._upstream_head_bytes = b""
        self._started = 0.0
        self._tried: set[str] = set()
        self._attempts = 0
        self._upstream: _UpstreamState | None = None
        self._attempt_started = 0.0
        self._fast = False  # the attempt in flight runs in callbacks
        self._timed_out = False
        self.finished = False  # answered and recorded
        self.trace_id: str | None = None
        self._trace: TraceContext | None = None
        self._subject: bytes | None = None  # who the route's auth found, sent on as X-Minga-Subject
        if req.upgrade:
            self.close_after = True  # the connection is a tunnel now, or done with

    # -- the request ---------------------------------------------------------------------------

    def begin(self) -> bool:
        """Start answering, in the caller's callback. True: answered already (``finished``), or
        in flight on an upstream connection whose callbacks finish it; False: await :meth:`run_slow`."""
        self._started = now = self.loop.time()
        req = self.req
        gw = self.gw
        rid = header_value(req.headers, b"x-request-id")
        self._request_id = rid if rid is not None and _REQUEST_ID.match(rid) else random_id(128).encode()
        try:
            target = normalize_target(req.target)
        except TargetRefused as exc:
            return self._refused(None, 400, str(exc))
        if gw.metrics_path is not None and req.method == "GET" and target.split(b"?", 1)[0] == gw.metrics_path:
            body = gw.metrics.render().encode()
            self._answer(200, body, [(b"Content-Type", b"text/plain; version=0.0.4")])
            self.finished = True
            return True
        match = gw.router.match(target, header_value(req.headers, b"host"))
        if match is None:
            return self._refused(None, 404, "no route for this path", routes=[r.name for r in gw.routes])
        route = self._route = gw.routes[match.index]
        if is_internal(match.target) and not route.exposes(match.target):
            return self._refused(route, 404, "a replica's own /metrics and /healthz are not routed here")
        if gw.limiter is not None:
            wait = gw.limiter.check(self._client_key())
            if wait > 0:
                gw.metrics.limited(route.name)
                retry_after = str(TokenBucket.retry_after(wait)).encode()
                return self._refused(route, 429, "rate limit exceeded", [(b"Retry-After", retry_after)])
        if route.auth is not None:  # after the rate limit, which also bounds guessing
            try:
                self._subject = route.auth.check(
                    header_value(req.headers, b"authorization"),
                    header_value(req.headers, route.auth.api_key_header),
                ).encode()
            except AuthRefused as exc:
                # the path only: a query may carry a credential of its own
                path = target.split(b"?", 1)[0][:200].decode("latin-1")
                gw.audit_refusal(exc.subject, self.client.peer, f"{req.method} {path}", exc.message)
                extra = [(b"WWW-Authenticate", b"Bearer")] if exc.status == 401 else None
                return self._refused(route, exc.status, exc.message, extra)
        self._upstream_head_bytes = self._upstream_head(match.target)
        route.budget.request(now)
        if req.body is not None or req.upgrade:
            return False
        upstream = gw.pick(route, self._tried)
        if upstream is None:
            return False
        conn = upstream.pool.take()
        if conn is None:
            upstream.breaker.release()  # the task picks again
            return False
        self._launch(upstream)
        self._fast = True
        self.conn = conn
        conn.sink = self
        self.client.upstream_deadline = now + route.spec.timeouts.response
        conn.write(self._upstream_head_bytes)
        return True

    async def run_slow(self, outcome: str | None) -> None:
        """Go on in a task: forward (again, when the attempt made in callbacks ended with
        ``outcome``), then record."""
        route = self._route
        if route is None:
            return
        await self._forward(route, self._upstream_head_bytes, outcome)
        self._finish_metrics(route)
        self._log(route, self._upstream)
        self.finished = True

    def _launch(self, upstream: _UpstreamState) -> None:
        self._attempts += 1
        self._tried.add(upstream.endpoint.id)
        self._upstream = upstream
        upstream.started()
        self._attempt_started = self.loop.time()

    def _settle(self, upstream: _UpstreamState, outcome: str) -> None:
        """Record one attempt's outcome: the breaker, the metrics, the load count."""
        now = self.loop.time()
        ok = outcome == "ok"
        upstream.breaker.record(ok or outcome == "client", now)
        assert self._route is not None
        self.gw.metrics.upstream(self._route.name, upstream.endpoint.id, ok, now - self._attempt_started)
        upstream.finished()

    def _release(self, upstream: _UpstreamState, conn: UpstreamConnection) -> None:
        conn.sink = None
        if self.req.method == "HEAD" or self.req.upgrade:
            conn.close()  # httptools would wait for a HEAD response's body; a tunnel is spent
        upstream.pool.give_back(conn)

    # -- the attempt made in callbacks ---------------------------------------------------------

    def _fast_end(self, outcome: str) -> None:
        """The attempt made in callbacks is over (``outcome`` as :meth:`_attempt` names them)."""
        self._fast = False
        self.client.upstream_deadline = 0.0
        upstream, conn = self._upstream, self.conn
        self.conn = None
        assert upstream is not None and conn is not None and self._route is not None
        if self.reject is not None:
            outcome = "client"
        self._settle(upstream, outcome)
        self._release(upstream, conn)
        if not self.head_sent and outcome in ("connect", "lost", "timeout", "bad"):
            self.client.slow(self, outcome)  # a retry or an error answer: both are the task's
            return
        if self.head_sent and outcome != "ok":
            self.close_after = True
            self.client.close()
        self._finish_metrics(self._route)
        self._log(self._route, upstream)
        self.finished = True
        self.client.done(self)

    def timed_out(self) -> None:
        """The sweeper found the attempt made in callbacks past its deadline."""
        if self._fast and self.conn is not None:
            self._timed_out = True
            self.conn.close()  # connection_lost -> upstream_lost -> _fast_end("timeout")

    def _refused(
        self,
        route: _RouteState | None,
        status: int,
        message: str,
        extra: Headers | None = None,
        routes: list[str] | None = None,
    ) -> bool:
        """Answer an error without asking an upstream; the exchange is finished."""
        self._answer_error(status, message, extra, routes=routes)
        if route is not None:
            self._finish_metrics(route)
        else:
            self.gw.count_rejected(status)
        self._log(route, None)
        self.finished = True
        return True

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
            req.headers,
            drop=(b"x-request-id", b"traceparent", b"x-forwarded-for", b"content-length", SUBJECT_HEADER),
        )
        if self._subject is not None:
            headers.append((b"X-Minga-Subject", self._subject))
        if header_value(req.headers, b"host") is None:  # HTTP/1.0 clients may send none; upstreams want one
            headers.append((b"Host", self.gw.url.removeprefix("http://").encode()))
        forwarded = header_value(req.headers, b"x-forwarded-for")
        peer = self.client.peer.encode()
        headers.append((b"X-Forwarded-For", forwarded + b", " + peer if forwarded else peer))
        headers.append((b"X-Forwarded-Proto", b"http"))
        headers.append((b"X-Request-ID", self._request_id))
        parent = header_value(req.headers, b"traceparent")
        remote = TraceContext.parse(parent.decode("latin-1")) if parent is not None else None
        trace = remote.child() if remote is not None else TraceContext.new()
        self.trace_id = trace.trace_id
        self._trace = trace
        headers.append((b"traceparent", trace.header().encode()))
        if req.upgrade:
            upgrade = header_value(req.headers, b"upgrade") or b"websocket"
            headers += [(b"Connection", b"Upgrade"), (b"Upgrade", upgrade)]
        elif req.chunked:
            headers.append((b"Transfer-Encoding", b"chunked"))
        elif req.length is not None:
            headers.append((b"Content-Length", str(req.length).encode()))
        return request_head(req.method, target, headers)

    async def _forward(self, route: _RouteState, head: bytes, outcome: str | None = None) -> None:
        """Send the request to one instance after another until one answers or retries run out.

        ``outcome`` is that of an attempt already made (in callbacks), judged first.
        """
        gw = self.gw
        timeouts = route.spec.timeouts
        while True:
            if outcome is not None:
                if not self._may_retry(route, outcome):
                    break
                gw.metrics.retry(route.name)
            upstream = gw.pick(route, self._tried)
            if upstream is None:
                last = outcome_text(outcome) if outcome in ("connect", "lost") else "no healthy instance"
                self._answer_error(503, f"{last} of service {route.spec.service!r}")
                return
            self._launch(upstream)
            outcome = "client"
            try:
                outcome = await self._attempt(
                    upstream, head, timeouts.connect, timeouts.response, timeouts.idle
                )
            finally:
                if self.reject is not None:
                    outcome = "client"  # the client broke its request: not the instance's fault
                self._settle(upstream, outcome)
        if not self.head_sent and self.reject is None and outcome != "client":
            status = 504 if outcome == "timeout" else 502
            self._answer_error(status, f"{outcome_text(outcome)} ({route.spec.service})")
        elif self.reject is not None and not self.head_sent:
            self._answer_error(self.reject.status, self.reject.message, close=True)

    def _may_retry(self, route: _RouteState, outcome: str) -> bool:
        if self.head_sent or self.reject is not None:
            return False
        if outcome == "connect":
            safe = True  # nothing was sent: safe for every method
        elif outcome == "lost":
            body = self.req.body
            safe = (
                self.req.method in IDEMPOTENT and not self.req.upgrade and (body is None or body.replayable)
            )
        else:
            return False
        return safe and self._attempts <= route.spec.retries and route.budget.try_retry(self.loop.time())

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
                client_left = self.client.closed
                self.close_after = True
                self.client.close()  # the response is cut: the client must see it end
                return "client" if client_left else "lost"
            if self.status in (502, 503, 504):
                return "bad"
            return "ok"
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
                conn.close()
            self.conn = None
            self._release(upstream, conn)

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
        if self._fast:
            assert self._route is not None
            self.client.upstream_deadline = self.loop.time() + self._route.spec.timeouts.idle
            if req.method == "HEAD":
                self.flush()
                self._fast_end("ok")

    def response_body(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self._last_read = now = self.loop.time()
        self._out.append(chunk(data) if self._chunk_out else data)
        if self._fast:
            assert self._route is not None
            self.client.upstream_deadline = now + self._route.spec.timeouts.idle

    def response_done(self) -> None:
        if self._chunk_out:
            self._out.append(LAST_CHUNK)
        self.flush()
        if self._fast:
            self._fast_end("bad" if self.status in (502, 503, 504) else "ok")
            return
        if self._done is not None and not self._done.done():
            self._done.set_result(None)

    def upstream_lost(self, exc: BaseException | None) -> None:
        self.flush()
        if self._fast:
            if self.head_sent and (self._close_delimited or (self.req.upgrade and self.status == 101)):
                self.response_done()  # the end of a close-delimited body
            elif self._timed_out:
                self._fast_end("timeout")
            else:
                self._fast_end("client" if self.client.closed else "lost")
            return
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
        self,
        status: int,
        message: str,
        extra: Headers | None = None,
        close: bool = False,
        routes: list[str] | None = None,
    ) -> None:
        self.status = status
        close = close or not self.req.keep_alive or (self.req.body is not None and not self.req.body.done)
        self.close_after = self.close_after or close
        self.client.write(
            error_response(status, message, request_id=self._request_id, close=close, extra=extra, routes=routes)
        )
        self.head_sent = True

    def _finish_metrics(self, route: _RouteState) -> None:
        took = self.loop.time() - self._started
        self.gw.metrics.request(route.name, self.status, took)
        sink, trace = self.gw.span_sink, self._trace
        if sink is not None and trace is not None and trace.sampled:
            end = time.time()
            sink(
                Span(
                    trace.trace_id, trace.span_id, trace.parent_id, "gateway", "gateway",
                    f"{self.req.method} {route.name}", "gateway", end - took, end,
                    "error" if self.status >= 500 else "ok",
                    {"http.status_code": str(self.status), "http.target": self.req.target.decode("latin-1")[:200]},
                )
            )  # fmt: skip

    def _log(self, route: _RouteState | None, upstream: _UpstreamState | None) -> None:
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
                    "attempts": self._attempts,
                    "duration_ms": round((self.loop.time() - self._started) * 1000, 3),
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
