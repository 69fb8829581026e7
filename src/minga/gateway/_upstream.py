"""Connections to upstream instances, parsed with httptools, and a keep-alive pool per instance.

An :class:`UpstreamConnection` hands what it parses to its current :class:`ResponseSink` (the
proxy's exchange), straight from ``data_received``: response bodies go from one socket to the
other without a task switch.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Protocol, cast

import httptools

from minga.gateway._http import Headers
from minga.gateway._sources import Endpoint

__all__ = ["ConnectFailed", "Pool", "ResponseSink", "UpstreamConnection"]


class ConnectFailed(Exception):
    """No connection could be opened to an upstream instance (refused, unreachable, timed out)."""


class ResponseSink(Protocol):
    """What receives a response parsed from an upstream connection."""

    def response_head(self, status: int, headers: Headers, keep_alive: bool, chunked: bool) -> None: ...

    def response_body(self, data: bytes) -> None: ...

    def response_done(self) -> None: ...

    def upstream_lost(self, exc: BaseException | None) -> None: ...

    def tunnel_data(self, data: bytes) -> None: ...

    def flush(self) -> None: ...


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to an upstream instance."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.sink: ResponseSink | None = None
        self.closed = False
        self.reusable = False
        self.tunnel = False
        self._headers: Headers = []
        self._informational = False
        self._chunked = False
        self._write_paused = False
        self._drained: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses

    def data_received(self, data: bytes) -> None:
        sink = self.sink
        if sink is None:
            # an idle connection has nothing to say: whatever comes is a broken peer
            self.close()
            return
        if self.tunnel:
            sink.tunnel_data(data)
            return
        try:
            self.parser.feed_data(data)
            sink.flush()
        except httptools.HttpParserUpgrade as upgrade:
            sink.flush()
            self.tunnel = True
            rest = data[upgrade.args[0] :]
            if rest:
                sink.tunnel_data(rest)
        except httptools.HttpParserError as exc:
            self.close()
            sink.upstream_lost(exc)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        self._wake_writer()
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_lost(exc)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()

    def _wake_writer(self) -> None:
        waiter, self._drained = self._drained, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's write buffer is below its high-water mark."""
        if self._write_paused and not self.closed:
            self._drained = asyncio.get_running_loop().create_future()
            await self._drained

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = []
        self._informational = False
        self._chunked = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"transfer-encoding" and b"chunked" in value.lower():
            self._chunked = True
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._informational = True  # 103 Early Hints and the like: wait for the final answer
            return
        if self.sink is not None:
            self.sink.response_head(status, self._headers, self.parser.should_keep_alive(), self._chunked)

    def on_body(self, body: bytes) -> None:
        if not self._informational and self.sink is not None:
            self.sink.response_body(body)

    def on_message_complete(self) -> None:
        if self._informational:
            return
        if self.parser.get_status_code() == 101:
            self.tunnel = True  # the bytes that follow belong to the upgraded protocol
            return
        self.reusable = self.parser.should_keep_alive()
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.response_done()

    # -- use -----------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        self.reusable = False
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True


class Pool:
    """Idle keep-alive connections to one endpoint, most recently used first."""

    def __init__(self, endpoint: Endpoint, max_idle: int = 64) -> None:
        self.endpoint = endpoint
        self.max_idle = max_idle
        self._idle: collections.deque[UpstreamConnection] = collections.deque()

    def take(self) -> UpstreamConnection | None:
        """An idle connection still open, or None."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def connect(self, seconds: float) -> UpstreamConnection:
        """A new connection; raises :class:`ConnectFailed` within ``seconds``."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    UpstreamConnection, self.endpoint.host, self.endpoint.port
                )
        except (OSError, TimeoutError) as exc:
            raise ConnectFailed(f"{self.endpoint.address}: {exc or 'connect timed out'}") from None
        return conn

    def give_back(self, conn: UpstreamConnection) -> None:
        """Keep ``conn`` for the next request if it may carry one, else close it."""
        if conn.reusable and not conn.closed and conn.sink is None and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()

    @property
    def idle(self) -> int:
        return sum(1 for c in self._idle if not c.closed)
