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
import logging
from typing import TYPE_CHECKING, cast

import httptools

from minga.gateway._exchange import Exchange
from minga.gateway._http import error_response
from minga.gateway._state import _Body, _Reject, _Request
from minga.gateway._upstream import UpstreamConnection

if TYPE_CHECKING:
    from minga.gateway._gateway import Gateway

__all__ = ["ClientConnection"]

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
        self.upstream_deadline = 0.0  # when the exchange answered in callbacks times out; 0: none

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
            self._next()

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
        """Called by the gateway's sweeper: act on the deadlines that have passed."""
        if self.deadline and now >= self.deadline:
            self.deadline = 0.0
            self._expired(self.deadline_kind)
        if self.upstream_deadline and now >= self.upstream_deadline:
            self.upstream_deadline = 0.0
            if self.exchange is not None:
                self.exchange.timed_out()

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
            self._next()

    # -- answering -----------------------------------------------------------------------------

    def _next(self) -> None:
        """Answer the queued requests in order: in callbacks when possible, else in a task."""
        try:
            while self.queue and not self.closed:
                req = self.queue[0]
                if req.error is not None:
                    self.gw.count_rejected(req.error.status)
                    self.write(error_response(req.error.status, req.error.message, close=True))
                    self.close()
                    break
                exchange = Exchange(self, req)
                self.exchange = exchange
                if not exchange.begin():
                    self.gw.spawn(self._slow(exchange, None))
                    return
                if not exchange.finished:
                    return  # the upstream connection's callbacks carry on, then call done()
                if not self._after(exchange):
                    break
        except Exception:
            logging.getLogger("minga.gateway").exception("unexpected error while answering a request")
            self.close()
        self._idle()

    def done(self, exchange: Exchange) -> None:
        """An exchange answered in callbacks has finished."""
        if self._after(exchange):
            self._next()
        else:
            self._idle()

    def slow(self, exchange: Exchange, outcome: str) -> None:
        """An exchange begun in callbacks needs a task to go on (a retry, or an error to answer)."""
        self.gw.spawn(self._slow(exchange, outcome))

    async def _slow(self, exchange: Exchange, outcome: str | None) -> None:
        try:
            await exchange.run_slow(outcome)
            go_on = self._after(exchange)
        except Exception:
            logging.getLogger("minga.gateway").exception("unexpected error while answering a request")
            self.close()
            go_on = False
        if go_on:
            self._next()
        else:
            self._idle()

    def _after(self, exchange: Exchange) -> bool:
        """Done with the request at the head of the queue; False when the connection ends here."""
        self.exchange = None
        if self.queue and self.queue[0] is exchange.req:
            self.queue.popleft()
        if exchange.close_after or not exchange.req.keep_alive or self.gw.stopping:
            self.close()
            return False
        return not self.closed

    def _idle(self) -> None:
        self.busy = False
        if not self.closed:
            self._arm(self.limits.idle_timeout, "idle")
            self.resume_reading()

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
