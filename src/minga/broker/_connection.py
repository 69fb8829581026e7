"""One client connection: the protocol state machine between the parser and the router.

It sees the broker only through :class:`~minga.broker._api.ConnectionHost`, so it can be
driven with bytes in and a recording host, without a socket or a server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from minga.broker._permissions import ClientPermissions
from minga.broker._protocol import Connect, Frame, Invalid, Parser, Ping, Pong, Pub, Sub, Unsub
from minga.broker._subjects import is_literal_subject, is_valid_subject

if TYPE_CHECKING:
    from minga.broker._api import ConnectionHost, Delivery

__all__: list[str] = []

log = logging.getLogger("minga.broker")

ERR_AUTH = "Authorization Violation"
ERR_AUTH_TIMEOUT = "Authentication Timeout"
ERR_STALE = "Stale Connection"
ERR_INVALID_SUBJECT = "Invalid Subject"
ERR_INVALID_PUB_SUBJECT = "Invalid Publish Subject"
ERR_TLS_REQUIRED = "Secure Connection - TLS Required"
ERR_MAX_CONNECTIONS = "maximum connections exceeded"
ERR_MAX_SUBSCRIPTIONS = "maximum subscriptions exceeded"

# A consumer whose transport holds more than this (bytes) makes its producers pause reading
# for a moment, so that a fast publisher does not bury a subscriber that is merely busy.
STALL_HIGH_WATER = 4 * 1024 * 1024
# The longest one such pause lasts (seconds): a consumer that does not drain at all must not
# hold producers back, it is to be cut off as a slow consumer instead.
STALL_MAX = 0.02


class Subscription:
    """A subscription of a client (``client`` set) or of the broker itself (``callback`` set)."""

    __slots__ = ("callback", "client", "closed", "delivered", "guard", "max_msgs", "queue", "sid", "subject")

    def __init__(
        self,
        client: ClientConnection | None,
        subject: bytes,
        queue: bytes | None,
        sid: bytes,
        callback: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.client = client
        self.subject = subject
        self.queue = queue
        self.sid = sid
        self.callback = callback
        self.max_msgs = 0
        self.delivered = 0
        self.closed = False
        # the client's permissions when deliveries must pass them (a denied subject, replies to note)
        self.guard: ClientPermissions | None = None


class ClientConnection(asyncio.Protocol):
    """The server side of one NATS client connection."""

    def __init__(self, broker: ConnectionHost) -> None:
        self.broker = broker
        config = broker.config
        self.cid = broker.next_client_id()
        self.transport: asyncio.Transport | None = None
        self.parser = Parser(config.max_payload, config.max_control_line)
        self.subs: dict[bytes, Subscription] = {}
        self.out: list[bytes] = []
        self.out_size = 0
        self.max_pending = config.max_pending
        # CONNECT options
        # nats-server's defaults for a client that leaves an option out (or sends no CONNECT)
        self.echo = True
        self.headers = False
        self.no_responders = False
        self.verbose = True
        self.pedantic = True
        self.name = ""
        self.lang = ""
        self.version = ""
        self.authorized = config.auth is None
        self.user = ""
        self.perms: ClientPermissions | None = None
        self.connect_received = False
        self.closed = False
        self.close_reason = ""
        # flow control
        self.write_paused = False
        self.stalled: set[ClientConnection] = set()
        self.reading_paused = False
        # statistics
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.started = time.time()
        self.last_activity = self.started
        self.host = ""
        self.port = 0
        self.tls_version = ""
        self.handshaking = False
        self.pings_out = 0
        self.awaiting_handshake = False
        self.gone = asyncio.Event()  # set once the socket is closed
        self._timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol --------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.host, self.port = str(peer[0]), int(peer[1])
        broker = self.broker
        admitted = broker.register_client(self)
        timeouts = broker.config.timeouts
        if not admitted:
            # nats-server sends its INFO first, then the error, and closes
            transport.write(broker.info_line(self))
            broker.audit(self, "connect", ERR_MAX_CONNECTIONS)
            self.close(ERR_MAX_CONNECTIONS, reason="Maximum Connections Exceeded")
            return
        tls = broker.ssl_context
        if tls is not None:
            # the client starts its handshake once it has read INFO: hold reads until TLS is up
            transport.pause_reading()
        transport.write(broker.info_line(self))
        if tls is not None:
            self.handshaking = True
            broker.spawn(self._upgrade(tls, timeouts.auth))
        # a CONNECT deadline whether or not authentication is on: a client that never completes
        # its CONNECT must not hold a connection (and its partial input) open
        self.awaiting_handshake = True
        self._timer = asyncio.get_running_loop().call_later(timeouts.auth, self._auth_expired)
        transport.set_write_buffer_limits(high=min(STALL_HIGH_WATER, self.max_pending // 2))

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        frames = self.parser.feed(data)
        if not frames:
            return
        broker = self.broker
        route = broker.route
        count = 0
        total = 0
        for frame in frames:
            if type(frame) is Pub and self.authorized and self.perms is None and not self.pedantic and not self.verbose:
                # the hot path: what nats-py sends, inlined; the counters are added once per read
                subject, reply, headers, payload = frame
                size = len(payload) if headers is None else len(payload) + len(headers)
                count += 1
                total += size
                if not route(subject, reply, headers, payload, self) and reply and self.no_responders:
                    broker.no_responders(self, reply)
            else:
                self._dispatch(frame)
            if self.closed:
                break
        if count:
            self.in_msgs += count
            self.in_bytes += total
            broker.in_msgs += count
            broker.in_bytes += total

    def _dispatch(self, frame: Frame) -> None:
        match frame:
            case Pub():
                self._on_pub(frame)
            case Connect():
                self._on_connect(frame)
            case _ if not self.authorized:
                self.close(ERR_AUTH)
            case Sub():
                self._on_sub(frame)
            case Unsub():
                self._on_unsub(frame)
            case Ping():
                self.send(b"PONG\r\n")
            case Pong():
                self.pings_out = 0
            case Invalid():
                self.close(frame.message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.gone.set()
        self.close_reason = self.close_reason or ("Client Closed" if exc is None else str(exc))
        self._teardown()

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._release_producers()

    # -- operations --------------------------------------------------------

    def _on_connect(self, frame: Connect) -> None:
        options = frame.options
        auth = self.broker.config.auth
        if auth is not None:
            user = auth.authenticate(options)
            if user is None:
                self.broker.audit(self, "connect", ERR_AUTH, who=_text(options.get("user")) or "anonymous")
                self.close(ERR_AUTH)
                return
            self.user = user.user
            if user.permissions is not None:
                self.perms = ClientPermissions(user.permissions)
        self.authorized = True
        self.connect_received = True
        self.verbose = bool(options.get("verbose", True))
        self.pedantic = bool(options.get("pedantic", True))
        self.echo = bool(options.get("echo", True))
        self.headers = bool(options.get("headers", False))
        self.no_responders = bool(options.get("no_responders", False)) and self.headers
        self.name = str(options.get("name", ""))[:256]
        self.lang = str(options.get("lang", ""))[:64]
        self.version = str(options.get("version", ""))[:64]
        self._maybe_ready()
        if self.verbose:
            self.send(b"+OK\r\n")

    def _on_pub(self, frame: Pub) -> None:
        if not self.authorized:
            self.close(ERR_AUTH)
            return
        subject, reply, headers, payload = frame
        if self.pedantic and not is_literal_subject(subject.decode("utf-8", "surrogateescape")):
            # nats-server warns and still routes the message
            self.send_err(ERR_INVALID_PUB_SUBJECT)
        size = len(payload) if headers is None else len(payload) + len(headers)
        self.in_msgs += 1
        self.in_bytes += size
        broker = self.broker
        perms = self.perms
        if perms is not None and not perms.may_publish(subject):
            self._violation(f'Permissions Violation for Publish to "{_show(subject)}"', "publish", subject)
            return
        broker.in_msgs += 1
        broker.in_bytes += size
        if self.verbose:
            self.send(b"+OK\r\n")
        if not broker.route(subject, reply, headers, payload, self) and reply and self.no_responders:
            broker.no_responders(self, reply)

    def _on_sub(self, frame: Sub) -> None:
        subject, queue, sid = frame
        if not is_valid_subject(subject.decode("utf-8", "surrogateescape")) or (
            queue is not None and not is_literal_subject(queue.decode("utf-8", "surrogateescape"))
        ):
            self.send_err(ERR_INVALID_SUBJECT)
            return
        perms = self.perms
        if perms is not None and not perms.may_subscribe(subject):
            what = f'Subscription to "{_show(subject)}"'
            if queue is not None:
                what += f' using queue "{_show(queue)}"'
            self._violation(f"Permissions Violation for {what}", "subscribe", subject)
            return
        if sid in self.subs:
            # nats-server ignores a SUB that reuses a live sid
            if self.verbose:
                self.send(b"+OK\r\n")
            return
        limit = self.broker.config.max_subscriptions
        if limit and len(self.subs) >= limit:
            self.send_err(ERR_MAX_SUBSCRIPTIONS)
            return
        sub = Subscription(self, subject, queue, sid)
        if perms is not None and perms.filters_deliveries:
            sub.guard = perms
        self.subs[sid] = sub
        self.broker.add_subscription(sub)
        if self.verbose:
            self.send(b"+OK\r\n")

    def _on_unsub(self, frame: Unsub) -> None:
        sub = self.subs.get(frame.sid)
        if sub is not None:
            if frame.max_msgs and sub.delivered < frame.max_msgs:
                sub.max_msgs = frame.max_msgs
            else:
                self.broker.remove_subscription(sub)
        if self.verbose:
            self.send(b"+OK\r\n")

    def _violation(self, message: str, action: str, subject: bytes) -> None:
        """Refuse an operation the client's permissions forbid: ``-ERR``, an audit record, no close."""
        self.send_err(message)
        self.broker.audit(self, f"{action} {_show(subject)}", message)

    # -- output ------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue ``data`` for this client; queued data is written once per loop iteration."""
        if self.closed:
            return
        if not self.out:
            self.broker.mark_dirty(self)
        self.out.append(data)
        self.out_size += len(data)
        if self.out_size > self.max_pending:
            self._slow_consumer()

    def send_err(self, message: str) -> None:
        self.send(f"-ERR '{message}'\r\n".encode())

    def flush(self) -> None:
        out = self.out
        if not out or self.closed or self.transport is None:
            return
        if self.handshaking:
            return  # the TLS handshake owns the socket; _upgrade flushes once it is done
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        self.out_size = 0
        transport = self.transport
        transport.write(data)
        if transport.get_write_buffer_size() > self.max_pending:
            self._slow_consumer()

    def pending_bytes(self) -> int:
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None and not self.closed else 0
        return self.out_size + buffered

    def stall(self, producer: ClientConnection) -> None:
        """Pause ``producer``'s reads until this congested client drains (or :data:`STALL_MAX` passes)."""
        if producer is self or producer.reading_paused or producer.transport is None:
            return
        producer.reading_paused = True
        producer.transport.pause_reading()
        self.stalled.add(producer)
        asyncio.get_running_loop().call_later(STALL_MAX, producer.unstall)

    def unstall(self) -> None:
        if self.reading_paused and not self.closed and self.transport is not None:
            self.reading_paused = False
            self.transport.resume_reading()

    def _release_producers(self) -> None:
        stalled, self.stalled = self.stalled, set()
        for producer in stalled:
            producer.unstall()

    # -- lifecycle ---------------------------------------------------------

    def close(self, error: str | None = None, *, reason: str = "") -> None:
        """Close after writing what is queued, and ``-ERR 'error'`` when given."""
        if self.closed:
            return
        if error is not None and not self.handshaking:
            self.send_err(error)
        self.flush()
        self.close_reason = reason or error or "Server Shutdown"
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        self._teardown()

    def _slow_consumer(self) -> None:
        """Cut this client off: more than ``max_pending`` bytes wait to be written to it.

        Counted in /varz (``slow_consumers``), logged, and recorded in /connz?state=closed with
        the reason nats-server gives. Like nats-server, no ``-ERR`` is sent: the client is not
        reading, so nothing more could reach it.
        """
        if self.closed:
            return
        self.broker.slow_consumers += 1
        log.warning(
            "client %d (%s:%d) disconnected as a slow consumer: more than max_pending %d bytes were waiting",
            self.cid, self.host, self.port, self.max_pending,
        )
        self.abort("Slow Consumer (Pending Bytes)")

    def abort(self, reason: str) -> None:
        """Close at once, dropping what is queued for this client; ``reason`` goes to /connz."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self.out.clear()
        self.out_size = 0
        if self.transport is not None:
            self.transport.abort()
        self._teardown()

    def _teardown(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        broker = self.broker
        for sub in list(self.subs.values()):
            broker.remove_subscription(sub)
        self._release_producers()
        broker.unregister_client(self)

    async def _upgrade(self, context: ssl.SSLContext, handshake_timeout: float) -> None:
        loop = asyncio.get_running_loop()
        transport = self.transport
        assert transport is not None
        try:
            async with asyncio.timeout(handshake_timeout):
                tls = await loop.start_tls(transport, self, context, server_side=True)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            log.info("client %d (%s:%d): TLS handshake failed: %s", self.cid, self.host, self.port, exc)
            self.close_reason = "TLS Handshake Error"
            transport.abort()
            self._teardown()
            self.gone.set()
            return
        except asyncio.CancelledError:
            transport.abort()
            self._teardown()
            self.gone.set()
            raise
        self.handshaking = False
        if tls is None or self.closed:
            return
        self.transport = tls
        tls.set_write_buffer_limits(high=min(STALL_HIGH_WATER, self.max_pending // 2))
        ssl_object = tls.get_extra_info("ssl_object")
        self.tls_version = ssl_object.version() if ssl_object is not None else "TLS"
        self._maybe_ready()
        if self.out:
            self.flush()

    def _maybe_ready(self) -> None:
        """End the handshake timer once TLS (when required) and CONNECT (when auth is) are done."""
        if not self.awaiting_handshake:
            return
        if self.broker.ssl_context is not None and not self.tls_version:
            return
        if not self.connect_received:
            return
        self.awaiting_handshake = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._arm_ping()

    def _auth_expired(self) -> None:
        self._timer = None
        if not self.tls_version and self.broker.ssl_context is not None:
            self.close(ERR_TLS_REQUIRED, reason="TLS Handshake Timeout")
        else:
            self.close(ERR_AUTH_TIMEOUT)

    def _arm_ping(self) -> None:
        interval = self.broker.config.timeouts.ping_interval
        if interval > 0 and not self.closed:
            self._timer = asyncio.get_running_loop().call_later(interval, self._ping)

    def _ping(self) -> None:
        self._timer = None
        if self.pings_out >= self.broker.config.timeouts.max_pings_out:
            self.close(ERR_STALE)
            return
        self.pings_out += 1
        self.send(b"PING\r\n")
        self._arm_ping()

    def describe(self) -> dict[str, Any]:
        """This connection as a /connz entry."""
        now = time.time()
        return {
            "cid": self.cid,
            "ip": self.host,
            "port": self.port,
            "start": _rfc3339(self.started),
            "uptime": f"{now - self.started:.0f}s",
            "pending_bytes": self.pending_bytes(),
            "in_msgs": self.in_msgs,
            "out_msgs": self.out_msgs,
            "in_bytes": self.in_bytes,
            "out_bytes": self.out_bytes,
            "subscriptions": len(self.subs),
            "name": self.name,
            "lang": self.lang,
            "version": self.version,
            "tls_version": self.tls_version,
        }

    def info_for(self, base: dict[str, Any]) -> bytes:
        info = dict(base)
        info["client_id"] = self.cid
        if self.host:
            info["client_ip"] = self.host
        return b"INFO " + json.dumps(info, separators=(",", ":")).encode() + b"\r\n"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _show(subject: bytes) -> str:
    return subject.decode("utf-8", "replace")


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"
