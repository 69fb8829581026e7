"""The broker: listener, routing through the subject trie, internal clients, lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import string
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from minga import _version
from minga.broker._api import BrokerExtension, Delivery
from minga.broker._config import BrokerConfig, bind_error
from minga.broker._connection import ClientConnection, Subscription
from minga.broker._headers import NO_RESPONDERS
from minga.broker._subjects import is_literal_subject, is_valid_subject
from minga.broker._trie import SubjectTrie
from minga.errors import BrokerError, UsageError

if TYPE_CHECKING:
    from minga.broker._monitor import Monitor

__all__ = ["PROTOCOL_VERSION", "Broker"]

log = logging.getLogger("minga.broker")

PROTOCOL_VERSION = "2.9.10"
"""The nats-server version whose behaviour the broker implements, as advertised in INFO and /varz.

It is the version the conformance suite runs against: clients that adapt to the server's version
(nats-py names consumers from 2.9 on, for instance) then ask only for what is implemented.
"""

_random = random.random

CLOSED_KEPT = 10_000
"""How many closed connections /connz?state=closed remembers (nats-server keeps as many)."""


class Broker:
    """An embedded NATS-protocol server.

    >>> async def main() -> None:
    ...     broker = Broker(BrokerConfig(port=0))
    ...     await broker.start()           # listening on broker.url
    ...     ...                            # nats.connect(broker.url) works as with nats-server
    ...     await broker.stop()

    Internal subscriptions (:meth:`subscribe_internal`) share the trie with client ones: they
    count for no-responders and queue groups. Their callbacks run synchronously on the event
    loop and must not block.
    """

    def __init__(self, config: BrokerConfig | None = None, extensions: Sequence[BrokerExtension] = ()) -> None:
        self.config = config if config is not None else BrokerConfig()
        self._extensions = list(extensions)
        self.ssl_context = self.config.tls.context() if self.config.tls is not None else None
        self._trie: SubjectTrie[Subscription] = SubjectTrie()
        self._clients: dict[int, ClientConnection] = {}
        self._closed_clients: deque[dict[str, Any]] = deque(maxlen=CLOSED_KEPT)
        self._cid = 0
        self._internal: dict[int, Subscription] = {}
        self._isid = 0
        self._dirty: list[ClientConnection] = []
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._monitor: Monitor | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started_extensions: list[BrokerExtension] = []
        self._stopped = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._lame_duck = False
        self._running = False
        self.server_id = "N" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(55))
        self._info: dict[str, Any] = {}
        self._extra_info: dict[str, Any] = {}
        self.port = 0
        self.started_at = 0.0
        # statistics (/varz)
        self.in_msgs = 0
        self.in_bytes = 0
        self.out_msgs = 0
        self.out_bytes = 0
        self.slow_consumers = 0
        self.total_connections = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def url(self) -> str:
        """``nats://host:port`` (``tls://`` with TLS) of the listening socket."""
        scheme = "tls" if self.ssl_context is not None else "nats"
        return f"{scheme}://{self.config.host}:{self.port}"

    @property
    def monitor_port(self) -> int | None:
        """The bound port of the monitoring endpoint, or None when it is off."""
        return self._monitor.port if self._monitor is not None else None

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Bind, start extensions and the monitor, then accept clients.

        Raises :class:`~minga.errors.UsageError` when the address cannot be bound (port taken).
        """
        if self._running:
            raise BrokerError("the broker is already running")
        config = self.config
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._lame_duck = False
        try:
            self._server = await self._loop.create_server(
                lambda: ClientConnection(self),
                config.host,
                config.port,
                start_serving=False,
                reuse_address=True,
            )
        except OSError as exc:
            raise UsageError(bind_error(config.host, config.port, exc, config.port_option)) from None
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.started_at = time.time()
        self._info = self._base_info()
        self._running = True
        try:
            if config.monitor_port is not None:
                # imported here, not above: aiohttp alone takes longer to import than the rest of the
                # broker, and a broker without monitoring must accept clients quickly after a restart
                from minga.broker._monitor import Monitor

                self._monitor = Monitor(self)
                await self._monitor.start(config.host, config.monitor_port)
            for extension in self._extensions:
                await extension.start(self)
                self._started_extensions.append(extension)
            await self._server.start_serving()
        except BaseException:
            await self.stop()
            raise
        log.info("broker listening on %s", self.url)

    async def serve_forever(self) -> None:
        """Start when not started, then wait until :meth:`stop` has finished."""
        if not self._running:
            await self.start()
        await self._stopped.wait()

    async def stop(self) -> None:
        """Shut down gracefully; idempotent.

        The order: stop accepting; tell clients the broker goes away (INFO with ``ldm``); wait the
        lame-duck grace; stop extensions (reverse order); flush and close every client; stop the monitor.
        """
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        self._stop_requested.set()
        try:
            self._announce_lame_duck()
            grace = self.config.timeouts.lame_duck
            if grace > 0 and self._clients:
                await asyncio.sleep(grace)
            while self._started_extensions:
                extension = self._started_extensions.pop()
                try:
                    await extension.stop()
                except Exception:
                    log.exception("broker extension %r failed to stop", extension)
            for task in list(self._tasks):  # TLS handshakes still under way
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            closing = list(self._clients.values())
            for client in closing:
                client.close(reason="Server Shutdown")
            # a client that does not read what is left for it must not hold the shutdown up
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.timeouts.shutdown_flush):
                    for client in closing:
                        await client.gone.wait()
            for client in closing:
                if client.transport is not None and not client.gone.is_set():
                    client.transport.abort()
            if self._server is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5.0):
                        await self._server.wait_closed()
                self._server = None
            if self._monitor is not None:
                await self._monitor.stop()
                self._monitor = None
        finally:
            self._running = False
            self._stopped.set()

    async def lame_duck(self) -> None:
        """Lame-duck mode, as nats-server's (SIGUSR2), then :meth:`stop`; a second call does nothing.

        Stop accepting connections and tell every client (INFO with ``"ldm": true``); close no one
        for ``timeouts.lame_duck_grace`` seconds; then close the clients one by one, spread over the
        rest of ``timeouts.lame_duck_duration`` at random intervals (half to all of the even share,
        at most 1 s), so that they do not all reconnect elsewhere at once. Then shut down.
        """
        if self._stopping or self._lame_duck or not self._running:
            return
        self._lame_duck = True
        log.info("entering lame duck mode: no new clients")
        timeouts = self.config.timeouts
        clients = self._announce_lame_duck()
        if not await self._pause(timeouts.lame_duck_grace):
            return
        if clients:
            share = min(max(timeouts.lame_duck_duration - timeouts.lame_duck_grace, 1.0) / len(clients), 1.0)
            for i, client in enumerate(clients):
                client.close(reason="Server Shutdown")
                if i < len(clients) - 1 and not await self._pause(share * (0.5 + _random() / 2)):
                    return
        await self.stop()

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds``; False (at once) when a shutdown started meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop_requested.wait()
        return not self._stopping

    def _announce_lame_duck(self) -> list[ClientConnection]:
        """Stop accepting and send every client the lame-duck INFO; return the clients told."""
        if self._server is not None:
            self._server.close()
        ldm = dict(self._info)
        ldm["ldm"] = True
        clients = list(self._clients.values())
        for client in clients:
            client.send(client.info_for(ldm))
        self._flush_dirty()
        return clients

    # -- the extension interface -------------------------------------------

    def update_info(self, **fields: Any) -> None:
        """Add fields to the INFO that clients receive from now on (``jetstream=True``...)."""
        self._info.update(fields)
        self._extra_info.update(fields)

    def subscribe_internal(
        self, subject: str, callback: Callable[[Delivery], None], *, queue: str | None = None
    ) -> int:
        """Subscribe the broker itself to ``subject``; returns the subscription id.

        Raises :class:`~minga.errors.BrokerError` when the subject or queue name is invalid.
        """
        if not is_valid_subject(subject):
            raise BrokerError(f"invalid subject {subject!r}")
        if queue is not None and not is_literal_subject(queue):
            raise BrokerError(f"invalid queue group {queue!r}")
        self._isid += 1
        sid = self._isid
        sub = Subscription(None, subject.encode(), queue.encode() if queue else None, b"%d" % sid, callback)
        self._internal[sid] = sub
        self.add_subscription(sub)
        return sid

    def unsubscribe_internal(self, sid: int) -> None:
        """End an internal subscription; unknown ids are ignored."""
        sub = self._internal.get(sid)
        if sub is not None:
            self.remove_subscription(sub)

    def publish_internal(
        self,
        subject: str,
        payload: bytes,
        *,
        reply: str | None = None,
        headers: bytes | None = None,
        to: str | None = None,
    ) -> int:
        """Publish as the broker itself; returns how many subscriptions received the message.

        With ``to``, the message goes to the subscribers of ``to`` while it still carries
        ``subject``: that is how JetStream hands a stored message to a consumer's inbox.
        Raises :class:`~minga.errors.BrokerError` for a subject that is not a valid literal.
        """
        if to is None and not is_literal_subject(subject):
            raise BrokerError(f"cannot publish to {subject!r}: not a valid literal subject")
        size = len(payload) + (len(headers) if headers else 0)
        self.in_msgs += 1
        self.in_bytes += size
        return self.route(
            subject.encode(), reply.encode() if reply else None, headers, payload, None, to.encode() if to else None
        )

    def has_interest(self, subject: str) -> bool:
        """True when at least one subscription (client or internal) matches the literal ``subject``."""
        match = self._trie.match(subject.encode())
        return bool(match.plain or match.groups)

    # -- monitoring ----------------------------------------------------------

    def varz(self) -> dict[str, Any]:
        """Server-wide figures, shaped like nats-server's /varz."""
        now = time.time()
        return {
            "server_id": self.server_id,
            "server_name": self._info.get("server_name", self.server_id),
            "version": PROTOCOL_VERSION,
            "minga_version": _version.version(),
            "host": self.config.host,
            "port": self.port,
            "max_payload": self.config.max_payload,
            "max_pending": self.config.max_pending,
            "auth_required": self.config.auth is not None,
            "tls_required": self.ssl_context is not None,
            "start": _rfc3339(self.started_at),
            "now": _rfc3339(now),
            "uptime": f"{now - self.started_at:.0f}s",
            "connections": len(self._clients),
            "total_connections": self.total_connections,
            "subscriptions": len(self._trie),
            "in_msgs": self.in_msgs,
            "out_msgs": self.out_msgs,
            "in_bytes": self.in_bytes,
            "out_bytes": self.out_bytes,
            "slow_consumers": self.slow_consumers,
        }

    def connz(
        self, *, offset: int = 0, limit: int = 1024, subs: bool = False, state: str = "open"
    ) -> dict[str, Any]:
        """Connections, shaped like nats-server's /connz.

        ``state`` is ``open`` (the default), ``closed`` (the last :data:`CLOSED_KEPT` closed
        connections, each with the ``reason`` it was closed for: ``Slow Consumer (Pending Bytes)``,
        ``Client Closed``...) or ``all``. Raises :class:`~minga.errors.UsageError` for another state.
        """
        if state not in ("open", "closed", "all"):
            raise UsageError(f"state must be open, closed or all, not {state!r}")
        entries: list[dict[str, Any]] = []
        if state in ("open", "all"):
            for client in sorted(self._clients.values(), key=lambda c: c.cid):
                entry = client.describe()
                if subs:
                    entry["subscriptions_list"] = sorted(
                        s.subject.decode(errors="replace") for s in client.subs.values()
                    )
                entries.append(entry)
        if state in ("closed", "all"):
            entries.extend(dict(entry) for entry in self._closed_clients)
            entries.sort(key=lambda e: int(e["cid"]))
        page = entries[offset : offset + limit]
        return {
            "server_id": self.server_id,
            "now": _rfc3339(time.time()),
            "num_connections": len(page),
            "total": len(entries),
            "offset": offset,
            "limit": limit,
            "state": state,
            "connections": page,
        }

    # -- routing (the hot path) --------------------------------------------

    def route(
        self,
        subject: bytes,
        reply: bytes | None,
        headers: bytes | None,
        payload: bytes,
        origin: ClientConnection | None,
        to: bytes | None = None,
    ) -> int:
        plain, groups = self._trie.match(subject if to is None else to)
        if not plain and not groups:
            return 0
        # the framing is built once per message; per subscription only the sid differs
        if headers is None:
            head = b"MSG " + subject + b" "
            tail = (b" " + reply if reply else b"") + b" %d\r\n" % len(payload) + payload + b"\r\n"
            plain_head, plain_tail = head, tail
        else:
            head = b"HMSG " + subject + b" "
            tail = (
                (b" " + reply if reply else b"")
                + b" %d %d\r\n" % (len(headers), len(headers) + len(payload))
                + headers
                + payload
                + b"\r\n"
            )
            plain_head = b"MSG " + subject + b" "
            plain_tail = (b" " + reply if reply else b"") + b" %d\r\n" % len(payload) + payload + b"\r\n"
        size = len(payload) if headers is None else len(payload) + len(headers)
        delivered = 0
        for sub in plain:
            if sub.closed:
                continue
            if sub.guard is not None and not sub.guard.may_receive(subject, reply):
                continue
            client = sub.client
            if client is None:
                self._deliver_internal(sub, subject, reply, headers, payload)
            elif client is origin and not client.echo:
                continue
            else:
                # the common case, inlined: queue the framed message on the client
                data = head + sub.sid + tail if headers is None or client.headers else plain_head + sub.sid + plain_tail
                out = client.out
                if not out and not client.closed:
                    self.mark_dirty(client)
                out.append(data)
                client.out_size += len(data)
                client.out_msgs += 1
                client.out_bytes += size
                if client.out_size > client.max_pending:
                    client._slow_consumer()
                elif client.write_paused and origin is not None:
                    client.stall(origin)
                sub.delivered += 1
                if sub.max_msgs and sub.delivered >= sub.max_msgs:
                    self.remove_subscription(sub)
            delivered += 1
        for members in groups:
            count = len(members)
            first = int(_random() * count) if count > 1 else 0
            for i in range(count):
                sub = members[(first + i) % count]
                client = sub.client
                if sub.closed or (client is origin and client is not None and not client.echo):
                    continue
                if sub.guard is not None and not sub.guard.may_receive(subject, reply):
                    continue
                if client is None:
                    self._deliver_internal(sub, subject, reply, headers, payload)
                else:
                    client.out_msgs += 1
                    client.out_bytes += size
                    if headers is None or client.headers:
                        client.send(head + sub.sid + tail)
                    else:
                        client.send(plain_head + sub.sid + plain_tail)
                    if client.write_paused and origin is not None:
                        client.stall(origin)
                    sub.delivered += 1
                    if sub.max_msgs and sub.delivered >= sub.max_msgs:
                        self.remove_subscription(sub)
                delivered += 1
                break
        self.out_msgs += delivered
        self.out_bytes += size * delivered
        return delivered

    def _deliver_internal(
        self, sub: Subscription, subject: bytes, reply: bytes | None, headers: bytes | None, payload: bytes
    ) -> None:
        sub.delivered += 1
        if sub.max_msgs and sub.delivered >= sub.max_msgs:
            self.remove_subscription(sub)
        callback = sub.callback
        if callback is None:
            return
        delivery = Delivery(
            subject.decode("utf-8", "surrogateescape"),
            reply.decode("utf-8", "surrogateescape") if reply else None,
            headers,
            payload,
        )
        try:
            callback(delivery)
        except Exception:
            log.exception("internal subscriber of %s failed", delivery.subject)

    def no_responders(self, client: ClientConnection, reply: bytes) -> None:
        """Tell a requester that nobody listens: a 503 status message on its own reply subscription."""
        plain, groups = self._trie.match(reply)
        for sub in (*plain, *(s for members in groups for s in members)):
            if sub.client is client and not sub.closed:
                client.send(b"HMSG %b %b %d %d\r\n%b\r\n" % (reply, sub.sid, len(NO_RESPONDERS), len(NO_RESPONDERS), NO_RESPONDERS))
                return

    def add_subscription(self, sub: Subscription) -> None:
        self._trie.insert(sub.subject, sub, sub.queue)

    def remove_subscription(self, sub: Subscription) -> None:
        if sub.closed:
            return
        sub.closed = True
        self._trie.remove(sub.subject, sub, sub.queue)
        if sub.client is not None:
            sub.client.subs.pop(sub.sid, None)
        else:
            self._internal.pop(int(sub.sid), None)

    # -- connections -------------------------------------------------------

    def next_client_id(self) -> int:
        self._cid += 1
        return self._cid

    def register_client(self, client: ClientConnection) -> bool:
        self._clients[client.cid] = client
        self.total_connections += 1
        return len(self._clients) <= self.config.max_connections

    def unregister_client(self, client: ClientConnection) -> None:
        if self._clients.pop(client.cid, None) is not None:
            entry = client.describe()
            entry["stop"] = _rfc3339(time.time())
            entry["reason"] = client.close_reason or "Client Closed"
            self._closed_clients.append(entry)

    def audit(self, client: ClientConnection, what: str, why: str, *, who: str = "") -> None:
        """Record a refusal of ``client`` in the audit log, when the broker keeps one."""
        log.info("client %d (%s:%d) refused: %s: %s", client.cid, client.host, client.port, what, why)
        trail = self.config.audit
        if trail is not None:
            trail.record(
                area="bus", who=who or client.user or "anonymous", source=f"{client.host}:{client.port}", what=what, why=why
            )

    def mark_dirty(self, client: ClientConnection) -> None:
        self._dirty.append(client)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            try:
                client.flush()
            except Exception as exc:
                # a client whose transport refuses the write is closed; the others are still written,
                # or what is queued for them would wait for a flush that never comes
                log.warning("client %d (%s:%d): write failed, closing: %r", client.cid, client.host, client.port, exc)
                client.abort(f"Write Error: {exc!r}")

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _base_info(self) -> dict[str, Any]:
        config = self.config
        info: dict[str, Any] = {
            "server_id": self.server_id,
            "server_name": config.server_name or self.server_id,
            "version": PROTOCOL_VERSION,
            "proto": 1,
            "go": "python",
            "host": config.host,
            "port": self.port,
            "headers": True,
            "max_payload": config.max_payload,
        }
        if config.auth is not None:
            info["auth_required"] = True
        if self.ssl_context is not None:
            info["tls_required"] = True
            info["tls_verify"] = bool(config.tls and config.tls.verify_clients)
        info.update(self._extra_info)
        return info

    def info_line(self, client: ClientConnection) -> bytes:
        return client.info_for(self._info)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"
