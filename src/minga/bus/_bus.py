"""The Bus: RPC, events and durable work queues over one nats-py connection.

A handler call starts eagerly on the subscription's callback; a call that suspends
continues as a task in the bus's task group, so a slow handler never blocks a
subscription, and shutdown can wait for in-flight work.
The shutdown order (see :meth:`Bus.stop`) is: stop entrypoints, finish in-flight
work (bounded), flush acks, close.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import json
import logging
import types
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType

from minga.bus._codec import ErrorAllowList, decode, encode, error_reply, parse_reply, result_reply
from minga.bus._kv import Bucket, open_bucket
from minga.bus._queue import CONSUMER, QueuePolicy
from minga.bus._subjects import (
    DEAD_LETTER_STREAM,
    dead_letter_subject,
    event_subject,
    queue_stream,
    queue_subject,
    rpc_subject,
)
from minga.bus._timeout import DEFAULT_TIMEOUT, Timeout
from minga.bus._trace import TRACEPARENT, TraceContext, current_trace, incoming, outgoing_header
from minga.errors import BusError, PayloadError, RequestTimeout, ServiceUnavailable

__all__ = ["Bus", "Delivery", "Handler"]

log = logging.getLogger("minga.bus")

_FETCH_WAIT = 1.0  # seconds a pull request waits for jobs: also the longest a stopping fetch loop lingers
_LAST_ERRORS = 1024  # failures remembered per bus, to say why a job was dead-lettered
# the broker's reply when a request has no responders: an empty message with status 503
_STATUS = "Status"
_NO_RESPONDERS = "503"


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message handed to a handler: the decoded JSON ``payload`` and where it came from.

    ``attempt`` counts deliveries of a work-queue job (1 for the first); it is 1 for RPC and events.
    """

    subject: str
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    trace: TraceContext = field(default_factory=TraceContext.new)
    attempt: int = 1


Handler = Callable[[Delivery], Awaitable[Any]]
"""What the bus calls with each delivery; for RPC, its return value is the reply."""


class Bus:
    """Messaging for services: RPC, events and durable work queues, JSON on the wire.

    Use it as an async context manager::

        async with Bus("nats://127.0.0.1:4222") as bus:
            await bus.publish("orders.created", {"id": 1})

    ``allowed_errors`` lists exception types that are rebuilt when a remote handler
    raises them (:class:`~minga.errors.PayloadError` always is); anything else arrives
    as :class:`~minga.errors.RemoteError`. ``grace`` bounds, in seconds, how long
    :meth:`stop` waits for in-flight handlers before cancelling them.
    """

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        name: str | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        allowed_errors: Iterable[type[BaseException]] = (),
        grace: float = 10.0,
    ) -> None:
        self.url = url
        self.name = name
        self.timeout = timeout
        self.grace = grace
        self._allowed = ErrorAllowList(allowed_errors)
        self._nc: NATS | None = None
        self._js: JetStreamContext | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._subs: list[Subscription] = []
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._streams: set[str] = set()
        self._last_errors: OrderedDict[tuple[str, int], str] = OrderedDict()
        # requests waiting for their reply, by token: the last token of the reply subject
        self._inbox = ""  # "<inbox prefix>.<unique id>.", set once connected
        self._waiting: dict[str, asyncio.Future[Msg | None]] = {}
        self._tokens = itertools.count(1)

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        try:
            self._nc = await nats.connect(
                self.url,
                name=self.name,
                connect_timeout=self.timeout.connect,
                max_reconnect_attempts=-1,
                allow_reconnect=True,
                error_cb=self._on_error,
            )
        except Exception as exc:
            raise BusError(
                f"cannot connect to the broker at {self.url}: {exc or type(exc).__name__}"
            ) from None
        self._js = self._nc.jetstream()
        # one subscription takes every reply to this bus's requests (see request_subject); the
        # broker has it before any request is sent, which goes out on the same connection after it
        self._inbox = self._nc.new_inbox() + "."
        await self._nc.subscribe(self._inbox + "*", cb=self._on_reply)
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        await self.close()
        if self._tg is not None:
            tg, self._tg = self._tg, None
            # handler tasks never raise and are all done by now; an error in the `async with`
            # body propagates as itself rather than inside an ExceptionGroup
            await tg.__aexit__(None, None, None)

    async def _on_error(self, exc: Exception) -> None:
        log.warning("broker connection: %s", exc or type(exc).__name__)

    @property
    def nats(self) -> NATS:
        """The nats-py connection, for what the bus does not wrap."""
        if self._nc is None:
            raise BusError("the bus is not connected: use `async with Bus(url) as bus`")
        return self._nc

    @property
    def jetstream(self) -> JetStreamContext:
        """The nats-py JetStream context on the same connection."""
        if self._js is None:
            raise BusError("the bus is not connected: use `async with Bus(url) as bus`")
        return self._js

    async def key_value(self, bucket: str, *, history: int = 1) -> Bucket:
        """The JetStream key-value bucket ``bucket`` (JSON values), created when missing."""
        return await open_bucket(self.jetstream, bucket, history=history)

    async def stop_entrypoints(self) -> None:
        """Stop taking work: unsubscribe RPC and event handlers (queued messages still run), end fetch loops."""
        self._stopping.set()
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(nats.errors.Error):
                await sub.drain()  # type: ignore[no-untyped-call]  # nats-py leaves drain() unannotated
        loops, self._loops = self._loops, []
        if loops:
            _, pending = await asyncio.wait(loops, timeout=_FETCH_WAIT * 3)
            for task in pending:
                task.cancel()

    async def finish(self, within: float | None = None) -> bool:
        """Wait for in-flight handlers, at most ``within`` seconds (default: ``grace``); cancel the rest.

        A cancelled RPC handler replies with an error; a cancelled job is naked for redelivery.
        Returns True when everything finished on its own.
        """
        limit = self.grace if within is None else within
        if not self._inflight:
            return True
        _, pending = await asyncio.wait(set(self._inflight), timeout=limit)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d handler(s) still running after %gs", len(pending), limit)
            await asyncio.wait(pending, timeout=5.0)
        return not pending

    async def flush(self) -> None:
        """Make sure replies and acks written so far have reached the broker."""
        if self._nc is not None and self._nc.is_connected:
            with contextlib.suppress(nats.errors.Error, asyncio.TimeoutError):
                await self._nc.flush(timeout=int(self.timeout.request) or 1)

    async def stop(self) -> None:
        """Stop entrypoints, finish in-flight work (bounded by ``grace``), flush acks. Idempotent."""
        await self.stop_entrypoints()
        await self.finish()
        await self.flush()

    async def close(self) -> None:
        """Close the connection. Call :meth:`stop` first to let work finish."""
        if self._nc is None or self._nc.is_closed:
            return
        try:
            await self._nc.close()
        except (nats.errors.Error, ConnectionError) as exc:
            # the broker dropped the connection first (a crash, a restart): nothing is left to flush
            log.debug("closing a lost broker connection: %r", exc)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            # nats-py cancels its own close waiter when the socket was already reset; we were not cancelled
            log.debug("closing a lost broker connection: the transport's close was cancelled")

    async def _settle(self) -> None:
        """Return once the broker has processed every subscription made so far.

        One flush is not enough with nats-py: its PING is written to the socket at once while
        a SUB may still wait in the client's buffer for the flusher task, so the PONG can
        overtake the SUB. The first flush wakes the flusher (which writes the buffer before the
        PONG can be read); the second PING is then queued behind the SUB.
        """
        await self.nats.flush()
        await self.nats.flush()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if self._tg is None:
            coro.close()
            raise BusError("the bus is not running")
        task = self._tg.create_task(coro, name=name)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return task

    def _start(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        """Run a handler call at once, in its own context, up to its first suspension; only a call
        that suspends (waits on I/O, sleeps) goes on in a task. Most RPC answers never suspend:
        they skip a task's creation and a turn of the event loop. A call that suspends still never
        blocks the subscription that delivered it."""
        if self._tg is None:
            coro.close()
            raise BusError("the bus is not running")
        context = contextvars.copy_context()
        try:
            waiting = context.run(coro.send, None)
        except StopIteration:
            return
        except (
            asyncio.CancelledError
        ):  # raised by the handler itself: it ends that call, not the subscription
            return
        task = self._tg.create_task(_resume(coro, waiting), name=name, context=context)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    @property
    def inflight(self) -> int:
        """Handler calls running now."""
        return len(self._inflight)

    # -- RPC -------------------------------------------------------------------------------

    async def request(
        self,
        service: str,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109 -- a typed Timeout is this API's contract
    ) -> Any:
        """Call ``method`` of ``service`` with keyword arguments ``payload``; return its JSON result.

        Raises :class:`~minga.errors.RequestTimeout` after ``timeout`` (a :class:`Timeout`
        or seconds), :class:`~minga.errors.ServiceUnavailable` when no replica listens,
        :class:`~minga.errors.RemoteError` or an allow-listed type when the handler raised.
        """
        body = payload if type(payload) is dict else dict(payload or {})  # encoded before any await: no copy
        return await self.request_subject(rpc_subject(service, method), body, timeout=timeout)

    async def request_subject(
        self,
        subject: str,
        payload: Any,
        *,
        timeout: Timeout | float | None = None,  # noqa: ASYNC109 -- a typed Timeout is this API's contract
    ) -> Any:
        """:meth:`request` on a subject given in full."""
        limit = Timeout.of(timeout, self.timeout).request
        nc = self.nats
        body = encode(payload)
        # The reply comes to this bus's one reply subscription, on the subject <inbox><token>.
        # A counter makes tokens unique within the bus (the inbox is unique per connection), and a
        # timer bounds the wait: the same exchange as nats-py's request(), without its random token
        # (a getrandom call) and asyncio.wait_for's extra future and callbacks on every call.
        token = str(next(self._tokens))
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Msg | None] = loop.create_future()
        self._waiting[token] = waiter
        timer = loop.call_later(limit, _time_out, waiter)
        try:
            await nc.publish(subject, body, reply=self._inbox + token, headers={TRACEPARENT: outgoing_header()})
            reply = await waiter
        finally:
            timer.cancel()
            del self._waiting[token]
        if reply is None:
            raise RequestTimeout(subject, limit)
        if not reply.data and reply.headers and reply.headers.get(_STATUS) == _NO_RESPONDERS:
            raise ServiceUnavailable(subject)
        return parse_reply(reply.data, self._allowed)

    async def _on_reply(self, msg: Msg) -> None:
        waiter = self._waiting.get(msg.subject[len(self._inbox) :])
        if waiter is not None and not waiter.done():  # a late reply finds its request gone: dropped
            waiter.set_result(msg)

    async def serve(self, service: str, method: str, handler: Handler, *, group: str | None = None) -> None:
        """Answer requests on ``minga.rpc.<service>.<method>`` in the queue group ``service``.

        The handler's return value is the reply; an exception becomes an error reply.
        """
        subject = rpc_subject(service, method)
        task_name = f"rpc {subject}"

        async def on_request(msg: Msg) -> None:
            self._start(self._answer(msg, handler), task_name)

        self._subs.append(await self.nats.subscribe(subject, queue=group or service, cb=on_request))
        await self._settle()

    async def _answer(self, msg: Msg, handler: Handler) -> None:
        headers = msg.headers or {}  # nats-py parses a fresh dict per message
        trace = incoming(headers.get(TRACEPARENT))
        current_trace.set(trace)
        try:
            delivery = Delivery(msg.subject, decode(msg.data), headers, trace)
            body = result_reply(await handler(delivery))
        except asyncio.CancelledError:
            await self._reply(msg, error_reply(BusError("the service stopped before answering")))
            raise
        except PayloadError as exc:
            log.info("rejected a request on %s: %s", msg.subject, exc)
            body = error_reply(exc)
        except Exception as exc:
            log.exception("handler for %s raised %s", msg.subject, type(exc).__name__)
            body = error_reply(exc)
        await self._reply(msg, body)

    async def _reply(self, msg: Msg, body: bytes) -> None:
        if msg.reply and self._nc is not None:
            try:  # rather than contextlib.suppress: this runs on every request served
                await self._nc.publish(msg.reply, body)
            except nats.errors.Error as exc:  # the connection is closing or gone
                log.debug("no reply sent to %s: %s", msg.reply, exc or type(exc).__name__)

    # -- events ----------------------------------------------------------------------------

    async def publish(self, topic: str, payload: Any = None) -> None:
        """Emit an event on ``minga.evt.<topic>`` with ``payload`` as JSON."""
        await self.nats.publish(
            event_subject(topic), encode(payload), headers={TRACEPARENT: outgoing_header()}
        )

    async def subscribe(self, topic: str, handler: Handler, *, group: str | None) -> None:
        """Call ``handler`` for each event on ``topic`` (wildcards allowed).

        With a ``group`` (minga uses the service name) each event reaches one member of
        the group; with ``None`` every subscriber gets it (broadcast).
        """
        subject = event_subject(topic, wildcards=True)

        async def on_event(msg: Msg) -> None:
            self._start(self._deliver_event(msg, handler), f"event {msg.subject}")

        self._subs.append(await self.nats.subscribe(subject, queue=group or "", cb=on_event))
        await self._settle()

    async def _deliver_event(self, msg: Msg, handler: Handler) -> None:
        headers = dict(msg.headers or {})
        trace = incoming(headers.get(TRACEPARENT))
        current_trace.set(trace)
        try:
            await handler(Delivery(msg.subject, decode(msg.data), headers, trace))
        except PayloadError as exc:
            log.warning("dropped an event on %s: %s", msg.subject, exc)
        except Exception as exc:
            log.exception("event handler for %s raised %s", msg.subject, type(exc).__name__)

    # -- durable work queues -----------------------------------------------------------------

    async def _ensure_stream(self, name: str, subjects: list[str], retention: RetentionPolicy) -> None:
        if name in self._streams:
            return
        jsm = self.jetstream._jsm
        try:
            await jsm.stream_info(name)
        except nats.js.errors.ServiceUnavailableError:  # nobody answers JetStream's API
            raise BusError(
                f"the broker at {self.url} offers no JetStream, which the durable queue stream {name} needs: "
                "start nats-server with JetStream (`nats-server -js`)"
            ) from None
        except nats.js.errors.NotFoundError:
            try:
                await jsm.add_stream(
                    name=name, subjects=subjects, retention=retention, storage=StorageType.FILE
                )
            except nats.js.errors.BadRequestError:
                await jsm.stream_info(name)  # created meanwhile by another replica; raises if it was not
        self._streams.add(name)

    async def enqueue(self, queue: str, payload: Any = None, *, msg_id: str | None = None) -> int:
        """Put a job on the durable work queue ``queue``; return its sequence in the queue's stream.

        The broker has stored the job when this returns. ``msg_id`` de-duplicates
        re-sends within the stream's duplicate window.
        """
        await self._ensure_stream(queue_stream(queue), [queue_subject(queue)], RetentionPolicy.WORK_QUEUE)
        headers = {TRACEPARENT: outgoing_header()}
        if msg_id is not None:
            headers["Nats-Msg-Id"] = msg_id
        ack = await self.jetstream.publish(queue_subject(queue), encode(payload), headers=headers)
        return int(ack.seq)

    async def consume(self, queue: str, handler: Handler, *, policy: QueuePolicy | None = None) -> None:
        """Handle jobs from ``queue`` with explicit acks, retry with backoff, and dead letters.

        A job whose payload is invalid (:class:`~minga.errors.PayloadError`) can never succeed:
        it goes to the dead letters at once.
        """
        policy = policy or QueuePolicy()
        stream = queue_stream(queue)
        await self._ensure_stream(stream, [queue_subject(queue)], RetentionPolicy.WORK_QUEUE)
        await self._ensure_stream(DEAD_LETTER_STREAM, ["minga.dlq.*"], RetentionPolicy.LIMITS)
        config = ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=policy.max_deliver,
            ack_wait=policy.ack_wait,
            max_ack_pending=max(1000, policy.concurrency * 4),
        )
        sub = await self.jetstream.pull_subscribe(
            queue_subject(queue), durable=CONSUMER, stream=stream, config=config
        )

        async def on_advisory(msg: Msg) -> None:
            self._spawn(self._dead_letter_advisory(queue, msg), name=f"dead letter {queue}")

        advisory = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{CONSUMER}"
        self._subs.append(await self.nats.subscribe(advisory, queue=f"minga-dlq-{queue}", cb=on_advisory))
        await self._settle()
        assert self._tg is not None
        self._loops.append(
            self._tg.create_task(self._fetch_loop(queue, sub, handler, policy), name=f"fetch {queue}")
        )

    async def _fetch_loop(
        self, queue: str, sub: JetStreamContext.PullSubscription, handler: Handler, policy: QueuePolicy
    ) -> None:
        free = policy.concurrency
        slot = asyncio.Event()

        def release(_: asyncio.Task[None]) -> None:
            nonlocal free
            free += 1
            slot.set()

        while not self._stopping.is_set():
            if free == 0:
                slot.clear()
                await slot.wait()
                continue
            try:
                msgs = await sub.fetch(batch=free, timeout=_FETCH_WAIT)
            except TimeoutError:
                # no job within the wait: nats-py raises its own TimeoutError, or the builtin one
                # (an OSError, with no message) when the server's 408 comes just before the deadline
                continue
            except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
                log.warning("fetching jobs from %s failed (%s: %s); retrying", queue, type(exc).__name__, exc)
                await asyncio.sleep(_FETCH_WAIT)
                continue
            for msg in msgs:
                free -= 1
                self._spawn(
                    self._run_job(queue, msg, handler, policy), name=f"job {queue}"
                ).add_done_callback(release)

    async def _run_job(self, queue: str, msg: Msg, handler: Handler, policy: QueuePolicy) -> None:
        headers = dict(msg.headers or {})
        trace = incoming(headers.get(TRACEPARENT))
        current_trace.set(trace)
        meta = msg.metadata
        attempt, seq = meta.num_delivered, meta.sequence.stream
        assert self._tg is not None
        keepalive = self._tg.create_task(self._keep_alive(msg, policy.ack_wait / 2), name="keep-alive")
        try:
            await handler(Delivery(msg.subject, decode(msg.data), headers, trace, attempt))
        except asyncio.CancelledError:
            with contextlib.suppress(nats.errors.Error):
                await msg.nak()
            raise
        except PayloadError as exc:
            log.warning("job %d on %s has an invalid payload, dead-lettered: %s", seq, queue, exc)
            await self._dead_letter(
                queue, msg.subject or "", msg.data, headers, seq, attempt, f"PayloadError: {exc}"
            )
            await msg.ack()
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._remember_error(queue_stream(queue), seq, reason)
            last = attempt >= policy.max_deliver
            delay = 0.0 if last else policy.backoff.delay(attempt)
            log.warning(
                "job %d on %s failed (delivery %d of %d): %s%s",
                seq,
                queue,
                attempt,
                policy.max_deliver,
                reason,
                "; dead-lettering" if last else f"; retrying in {delay:g}s",
            )
            with contextlib.suppress(nats.errors.Error):
                await msg.nak(delay=delay or None)
        else:
            await msg.ack()
        finally:
            keepalive.cancel()

    async def _keep_alive(self, msg: Msg, every: float) -> None:
        """Tell the server a long job is still running, so it is not redelivered meanwhile."""
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(nats.errors.Error):
                await msg.in_progress()

    def _remember_error(self, stream: str, seq: int, reason: str) -> None:
        self._last_errors[(stream, seq)] = reason
        while len(self._last_errors) > _LAST_ERRORS:
            self._last_errors.popitem(last=False)

    async def _dead_letter_advisory(self, queue: str, msg: Msg) -> None:
        """Move the job named by a max-deliveries advisory from its queue to the dead letters."""
        try:
            advisory = json.loads(msg.data)
            stream, seq, deliveries = (
                str(advisory["stream"]),
                int(advisory["stream_seq"]),
                int(advisory["deliveries"]),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a malformed max-deliveries advisory: %r", msg.data[:200])
            return
        jsm = self.jetstream._jsm
        try:
            job = await jsm.get_msg(stream, seq)
        except nats.js.errors.NotFoundError:
            return  # another replica moved it already
        reason = self._last_errors.pop((stream, seq), f"failed {deliveries} deliveries")
        await self._dead_letter(
            queue, job.subject or "", job.data or b"", dict(job.headers or {}), seq, deliveries, reason
        )
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await jsm.delete_msg(stream, seq)
        log.warning("job %d on %s dead-lettered after %d deliveries: %s", seq, queue, deliveries, reason)

    async def _dead_letter(
        self,
        queue: str,
        subject: str,
        data: bytes,
        headers: Mapping[str, str],
        seq: int,
        deliveries: int,
        reason: str,
    ) -> None:
        dead = {k: v for k, v in headers.items() if not k.startswith("Nats-")}
        dead.update(
            {
                "Minga-Queue": queue,
                "Minga-Subject": subject,
                "Minga-Sequence": str(seq),
                "Minga-Deliveries": str(deliveries),
                "Minga-Error": " ".join(reason.split())[:1000],
                # the same job dead-lettered twice (two replicas, a retry) is stored once
                "Nats-Msg-Id": f"{queue_stream(queue)}:{seq}",
            }
        )
        await self.jetstream.publish(dead_letter_subject(queue), data, headers=dead)

    async def dead_letters(self, queue: str, *, limit: int = 100) -> list[Delivery]:
        """The jobs of ``queue`` that were dead-lettered, oldest first (at most ``limit``).

        Each delivery's headers say why: ``Minga-Error``, ``Minga-Deliveries``, ``Minga-Sequence``;
        a payload that is not JSON comes back as the raw bytes.
        """
        await self._ensure_stream(DEAD_LETTER_STREAM, ["minga.dlq.*"], RetentionPolicy.LIMITS)
        jsm = self.jetstream._jsm
        out: list[Delivery] = []
        seq = 1
        subject = dead_letter_subject(queue)
        while len(out) < limit:
            try:
                raw = await jsm.get_msg(DEAD_LETTER_STREAM, seq, subject=subject, next=True)
            except nats.js.errors.NotFoundError:
                break
            headers = dict(raw.headers or {})
            try:
                payload = decode(raw.data or b"")
            except PayloadError:
                payload = raw.data  # dead-lettered because it is not JSON: handed back as it came
            out.append(Delivery(subject, payload, headers, attempt=int(headers.get("Minga-Deliveries", 1))))
            seq = int(raw.seq or seq) + 1
        return out


def _time_out(waiter: asyncio.Future[Msg | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)  # no reply in time


@types.coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> Generator[Any, Any, None]:
    """Carry on, as a task's body, with ``coro`` already started and now ``waiting`` on a future.

    The task waits on what ``coro`` waits on (it is yielded up unchanged), then resumes ``coro``
    with what the task is resumed with: a value, or an exception such as a cancellation.
    """
    while True:
        try:
            sent = yield waiting
        except BaseException as exc:  # cancellation included: handed to the handler, as a task would
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(sent)
            except StopIteration:
                return
