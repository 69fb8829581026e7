"""The JetStream extension: streams and consumers wired into the broker.

It subscribes inside the broker to ``$JS.API.>`` (the JSON API, see ``_api.py``), to
``$JS.ACK.>`` (acknowledgements) and to every stream's subjects (publishes). A publish is
stored at once and acknowledged when the store says it is durable; deliveries go out as
soon as a consumer may send (a pull request waits, a push consumer has interest). One
housekeeping task ticks every ``tick`` seconds for ack deadlines, expiring pull requests,
idle heartbeats, ``max_age`` and inactive consumers, and saves consumer state.

Layout of ``store_dir``::

    streams/<stream>/meta.json              configuration and creation time
    streams/<stream>/msgs/*.seg             the file store's segments
    streams/<stream>/consumers/<name>.json  a durable consumer's configuration and state
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from minga.broker.jetstream import _errors as E
from minga.broker.jetstream._api import dispatch
from minga.broker.jetstream._consumer import AckOutcome, Consumer, Outgoing, PullRequest
from minga.broker.jetstream._headers import header_block, parse_headers, status_block
from minga.broker.jetstream._models import SECOND, ConsumerConfig, StreamConfig, rfc3339
from minga.broker.jetstream._stream import Stream
from minga.broker.jetstream._subjects import overlaps
from minga.broker.storage import (
    FileStore,
    FileStoreOptions,
    FsyncPolicy,
    MemoryStore,
    StoredMessage,
    file_size,
    memory_size,
)

if TYPE_CHECKING:
    from minga.broker import Broker, Delivery

__all__ = ["JetStream", "JetStreamConfig"]

log = logging.getLogger("minga.broker.jetstream")

_ALPHABET = string.ascii_uppercase + string.digits
ADVISORY = "$JS.EVENT.ADVISORY"


@dataclass(frozen=True, slots=True)
class JetStreamConfig:
    """Where and how JetStream keeps its data.

    ``store_dir`` None keeps everything in memory (file-storage streams included).
    ``fsync`` and ``sync_interval`` (seconds) are the file store's policy; the default
    acknowledges a publish only once it is fsynced. ``tick`` (seconds) is the housekeeping
    period, the resolution of ack deadlines and pull request expiry.
    """

    store_dir: Path | None = None
    fsync: FsyncPolicy = FsyncPolicy.ALWAYS
    sync_interval: float = 120.0
    tick: float = 0.05


def _nuid() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(22))


def _write_json(path: Path, data: dict[str, Any], *, durable: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if durable:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class JetStream:
    """The JetStream subset as a broker extension: ``Broker(config, extensions=[JetStream(...)])``."""

    def __init__(self, config: JetStreamConfig | None = None) -> None:
        self.config = config or JetStreamConfig()
        self.streams: dict[str, Stream] = {}
        self.api_total = 0
        self.api_errors = 0
        self._broker: Broker | None = None
        self._subs: list[int] = []
        self._stream_subs: dict[str, list[int]] = {}
        self._dirty: set[Consumer] = set()
        self._inactive_since: dict[Consumer, int] = {}
        self._last_hb: dict[Consumer, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_save = 0
        self._last_expire = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise E.api_error(503, 10076, "JetStream not enabled")
        return self._broker

    async def start(self, broker: Broker) -> None:
        """Load the streams in ``store_dir`` and subscribe to the API, acks and stream subjects."""
        self._broker = broker
        if self.config.store_dir is not None:
            await asyncio.to_thread(self._load, self.config.store_dir / "streams")
        broker.update_info(jetstream=True)
        self._subs.append(broker.subscribe_internal("$JS.API.>", self._on_api))
        self._subs.append(broker.subscribe_internal("$JS.ACK.>", self._on_ack))
        for stream in self.streams.values():
            self._subscribe_stream(stream)
        self._task = asyncio.get_running_loop().create_task(self._housekeeping())

    async def stop(self) -> None:
        """Stop ticking, save consumer state and close the stores (flushing what is pending)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._save_consumers(force=True)
        for stream in self.streams.values():
            await stream.store.close()
        if self._broker is not None:
            for sid in self._subs + [s for subs in self._stream_subs.values() for s in subs]:
                self._broker.unsubscribe_internal(sid)
        self._subs.clear()
        self._stream_subs.clear()

    # -- loading and saving ----------------------------------------------------------------

    def _stream_dir(self, name: str) -> Path | None:
        if self.config.store_dir is None:
            return None
        return self.config.store_dir / "streams" / name

    def _store_options(self) -> FileStoreOptions:
        return FileStoreOptions(fsync=self.config.fsync, sync_interval=self.config.sync_interval)

    def _load(self, root: Path) -> None:
        if not root.is_dir():
            return
        now = time.time_ns()
        for directory in sorted(p for p in root.iterdir() if p.is_dir()):
            meta_path = directory / "meta.json"
            if not meta_path.exists():
                shutil.rmtree(directory, ignore_errors=True)  # a stream whose creation never completed
                continue
            meta = json.loads(meta_path.read_text())
            config = StreamConfig.from_json(meta["config"])
            store = FileStore.open_blocking(directory / "msgs", self._store_options())
            stream = Stream(config, store, int(meta["created"]))
            self.streams[config.name] = stream
            for path in sorted((directory / "consumers").glob("*.json")):
                try:
                    data = json.loads(path.read_text())
                except ValueError:
                    log.warning("%s: unreadable consumer state, dropped", path)
                    continue
                consumer = Consumer(stream, data["name"], ConsumerConfig.from_json(data["config"]), int(data["created"]))
                consumer.restore(data["state"], now)
                stream.consumers[consumer.name] = consumer
            log.info("recovered stream %s: %d messages", config.name, store.num_msgs)

    def _persistent(self, stream: Stream) -> bool:
        return self.config.store_dir is not None and stream.config.storage == "file"

    def _save_meta(self, stream: Stream) -> None:
        directory = self._stream_dir(stream.name)
        if directory is not None and self._persistent(stream):
            _write_json(
                directory / "meta.json",
                {"config": stream.config.to_json(), "created": stream.created_ns},
                durable=True,
            )

    def _save_consumers(self, *, force: bool = False) -> None:
        now = time.monotonic_ns()
        if not self._dirty or (not force and now - self._last_save < SECOND):
            return
        self._last_save = now
        dirty, self._dirty = self._dirty, set()
        for c in dirty:
            directory = self._stream_dir(c.stream.name)
            if directory is None or not self._persistent(c.stream) or not c.config.durable_name:
                continue
            if c.stream.consumers.get(c.name) is not c:
                continue
            data = {"name": c.name, "config": c.config.to_json(), "created": c.created_ns, "state": c.state_json()}
            try:
                _write_json(directory / "consumers" / f"{c.name}.json", data, durable=force)
            except OSError as exc:
                log.error("saving consumer %s failed: %s", c.name, exc)

    # -- streams ---------------------------------------------------------------------------

    def create_stream(self, config: StreamConfig) -> tuple[Stream, bool]:
        """Create a stream (or return the identical existing one); the bool says whether it was created."""
        existing = self.streams.get(config.name)
        if existing is not None:
            if existing.config.to_json() == config.to_json():
                return existing, False
            raise E.stream_name_exists()
        self._check_overlap(config)
        directory = self._stream_dir(config.name)
        store: MemoryStore
        if directory is not None and config.storage == "file":
            if directory.exists():
                shutil.rmtree(directory)
            store = FileStore.open_blocking(directory / "msgs", self._store_options())
        else:
            # a file stream kept in memory (no store_dir) still counts its bytes as a file stream
            store = MemoryStore(file_size if config.storage == "file" else memory_size)
        stream = Stream(config, store, time.time_ns())
        self.streams[config.name] = stream
        self._save_meta(stream)
        self._subscribe_stream(stream)
        self._advise_stream(stream.name, "create")
        return stream, True

    def update_stream(self, config: StreamConfig) -> Stream:
        stream = self.streams.get(config.name)
        if stream is None:
            raise E.stream_not_found()
        if config.storage != stream.config.storage:
            raise E.api_error(500, 10052, "stream configuration update can not change storage type")
        if config.retention != stream.config.retention:
            raise E.api_error(500, 10052, "stream configuration update can not change retention policy")
        self._check_overlap(config)
        stream.config = config
        for c in stream.consumers.values():
            c.refresh_filters()
        stream.enforce_all_limits()
        self._save_meta(stream)
        self._unsubscribe_stream(stream.name)
        self._subscribe_stream(stream)
        self._advise_stream(stream.name, "modify")
        return stream

    def delete_stream(self, name: str) -> None:
        stream = self.streams.pop(name, None)
        if stream is None:
            raise E.stream_not_found()
        self._unsubscribe_stream(name)
        for c in list(stream.consumers.values()):
            self._forget_consumer(c)
        stream.consumers.clear()
        stream.store.destroy()
        directory = self._stream_dir(name)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)
        self._advise_stream(name, "delete")

    def _check_overlap(self, config: StreamConfig) -> None:
        for other in self.streams.values():
            if other.name == config.name:
                continue
            if any(overlaps(a, b) for a in config.subjects for b in other.config.subjects):
                raise E.stream_subject_overlap()

    def _subscribe_stream(self, stream: Stream) -> None:
        name = stream.name

        def on_publish(d: Delivery) -> None:
            self._on_publish(name, d)

        self._stream_subs[name] = [self.broker.subscribe_internal(s, on_publish) for s in stream.config.subjects]

    def _unsubscribe_stream(self, name: str) -> None:
        for sid in self._stream_subs.pop(name, []):
            self.broker.unsubscribe_internal(sid)

    def stream(self, name: str) -> Stream:
        stream = self.streams.get(name)
        if stream is None:
            raise E.stream_not_found()
        return stream

    # -- publishing ------------------------------------------------------------------------

    def _on_publish(self, name: str, d: Delivery) -> None:
        stream = self.streams.get(name)
        if stream is None:
            return
        now = time.time_ns()
        try:
            msg, ack, republish = stream.ingest(d.subject, d.headers, parse_headers(d.headers), d.payload, now)
        except E.ApiError as err:
            if d.reply:
                self._reply(d.reply, {"error": E.error_json(err)})
            return
        if msg is not None:
            self._stored(stream, msg)
        if republish is not None:
            subject, headers, payload = republish
            self.broker.publish_internal(subject, payload, headers=headers)
        if d.reply and not stream.config.no_ack:
            reply = d.reply
            data = json.dumps(ack).encode()

            def _ack(err: BaseException | None) -> None:
                if err is None:
                    self.broker.publish_internal(reply, data)
                else:
                    self._reply(reply, {"error": E.error_json(E.store_failed(f"error storing message: {err}"))})

            stream.store.when_durable(_ack)

    def _stored(self, stream: Stream, msg: StoredMessage) -> None:
        for c in list(stream.consumers.values()):
            if c.wants(msg.subject):
                self.pump(c)
        stream.drop_uninterested(msg)

    def _reply(self, reply: str, body: dict[str, Any]) -> None:
        self.broker.publish_internal(reply, json.dumps(body).encode())

    # -- consumers -------------------------------------------------------------------------

    def create_consumer(self, stream: Stream, name: str | None, config: ConsumerConfig, action: str = "") -> Consumer:
        """Create a consumer, or return the existing one when its configuration is the same."""
        name = name or config.name or config.durable_name or _nuid()
        if config.durable_name and config.durable_name != name:
            raise E.consumer_durable_mismatch()
        existing = stream.consumers.get(name)
        if existing is not None:
            if action == "create" and existing.config.to_json() != config.to_json():
                raise E.consumer_already_exists()
            if existing.config.to_json() == config.to_json():
                return existing
            fixed = ("deliver_policy", "ack_policy", "filter_subject", "filter_subjects", "opt_start_seq")
            if any(getattr(existing.config, f) != getattr(config, f) for f in fixed):
                raise E.consumer_name_exists()
            existing.config = config
            self._dirty.add(existing)
            self.pump(existing)
            return existing
        if action == "update":
            raise E.api_error(400, 10149, "consumer does not exist")
        self._check_consumer(stream, config)
        consumer = Consumer(stream, name, config, time.time_ns())
        stream.consumers[name] = consumer
        self._dirty.add(consumer)
        self._advise(f"CONSUMER.CREATED.{stream.name}.{name}", "consumer_action", {"stream": stream.name, "consumer": name, "action": "create"})
        self.pump(consumer)
        return consumer

    def _check_consumer(self, stream: Stream, config: ConsumerConfig) -> None:
        if 0 < stream.config.max_consumers <= len(stream.consumers):
            raise E.maximum_consumers()
        for f in config.filters:
            if not any(overlaps(f, s) for s in stream.config.subjects):
                raise E.consumer_filter_not_subset()
        if stream.config.retention == "workqueue":
            if config.ack_policy != "explicit":
                raise E.consumer_wq_requires_explicit_ack()
            if config.deliver_policy != "all":
                raise E.consumer_wq_deliver_all()
            for other in stream.consumers.values():
                if not config.filters or not other.filters:
                    raise E.consumer_wq_multiple_unfiltered()
                if any(overlaps(a, b) for a in config.filters for b in other.filters):
                    raise E.consumer_wq_not_unique()

    def delete_consumer(self, stream: Stream, name: str) -> None:
        consumer = stream.consumers.pop(name, None)
        if consumer is None:
            raise E.consumer_not_found()
        self._forget_consumer(consumer)
        directory = self._stream_dir(stream.name)
        if directory is not None:
            with contextlib.suppress(FileNotFoundError):
                (directory / "consumers" / f"{name}.json").unlink()
        self._advise(f"CONSUMER.DELETED.{stream.name}.{name}", "consumer_action", {"stream": stream.name, "consumer": name, "action": "delete"})

    def _forget_consumer(self, c: Consumer) -> None:
        self._dirty.discard(c)
        self._inactive_since.pop(c, None)
        self._last_hb.pop(c, None)
        for req in c.waiting:
            self._status(req.reply, 409, "Consumer Deleted")
        c.waiting.clear()

    def consumer(self, stream: Stream, name: str) -> Consumer:
        c = stream.consumers.get(name)
        if c is None:
            raise E.consumer_not_found()
        return c

    def push_bound(self, c: Consumer) -> bool:
        return bool(c.config.deliver_subject) and self.broker.has_interest(c.config.deliver_subject)

    # -- delivering ------------------------------------------------------------------------

    def pull(self, c: Consumer, req: PullRequest) -> None:
        """Queue a pull request (a ``CONSUMER.MSG.NEXT``) and serve it as far as possible."""
        c.last_active_ns = time.time_ns()
        if len(c.waiting) >= c.config.max_waiting:
            self._status(req.reply, 409, "Exceeded MaxWaiting")
            return
        c.waiting.append(req)
        if req.expires_at:
            # a timer of its own: the client's fetch gives up at the same moment, so a 408 sent a
            # housekeeping tick late would land in its next fetch
            delay = max(0.0, (req.expires_at - time.time_ns()) / SECOND)
            asyncio.get_running_loop().call_later(delay, self._expire_request, c, req)
        self.pump(c)

    def _expire_request(self, c: Consumer, req: PullRequest) -> None:
        if self._task is None:  # stopped
            return
        for i, waiting in enumerate(c.waiting):
            if waiting is req:
                del c.waiting[i]
                self._request_timeout(req)
                return

    def pump(self, c: Consumer) -> None:
        """Send what ``c`` may send now: to its deliver subject, or to the waiting pull requests."""
        now = time.time_ns()
        if c.config.is_push:
            target = c.config.deliver_subject
            if not self.broker.has_interest(target):
                return
            sent = False
            while (out := c.next_delivery(now)) is not None:
                self._send(c, target, out)
                sent = True
            if sent:
                self._dirty.add(c)
            return
        waiting = c.waiting
        while waiting:
            req = waiting[0]
            if req.expires_at and req.expires_at <= now:
                waiting.popleft()
                self._request_timeout(req)
                continue
            if not self.broker.has_interest(req.reply):
                waiting.popleft()
                continue
            out = c.next_delivery(now)
            if out is None:
                if not req.no_wait:
                    break
                if req.delivered:
                    # a no-wait request that got part of its batch ends at once, with what is still owed
                    waiting.popleft()
                    self._request_timeout(req)
                elif req.expires_at:
                    # no-wait with an expiry waits for a first message until it expires, as nats-server does
                    break
                else:
                    waiting.popleft()
                    if c.num_pending and c.config.max_ack_pending > 0 and c.num_ack_pending >= c.config.max_ack_pending:
                        self._status(req.reply, 409, "Exceeded MaxAckPending")
                    else:
                        self._status(req.reply, 404, "No Messages")
                continue
            self._send(c, req.reply, out)
            self._dirty.add(c)
            req.delivered += 1
            req.bytes += len(out.msg.payload)
            req.last_sent = now
            if req.delivered >= req.batch or (req.max_bytes and req.bytes >= req.max_bytes):
                waiting.popleft()

    def _request_timeout(self, req: PullRequest) -> None:
        """End a pull request with a 408 that says how much of it was not delivered."""
        owed_bytes = max(0, req.max_bytes - req.bytes) if req.max_bytes else 0
        self._status(
            req.reply,
            408,
            "Request Timeout",
            {"Nats-Pending-Messages": str(req.batch - req.delivered), "Nats-Pending-Bytes": str(owed_bytes)},
        )

    def _send(self, c: Consumer, to: str, out: Outgoing) -> None:
        msg = out.msg
        headers = msg.headers
        payload = msg.payload
        if c.config.headers_only:
            headers = header_block({"Nats-Msg-Size": str(len(payload))}, base=headers)
            payload = b""
        self.broker.publish_internal(msg.subject, payload, reply=out.reply, headers=headers, to=to)

    def _status(self, to: str, code: int, description: str, headers: dict[str, str] | None = None) -> None:
        self.broker.publish_internal(to, b"", headers=status_block(code, description, headers))

    # -- acknowledgements ------------------------------------------------------------------

    def _on_ack(self, d: Delivery) -> None:
        tokens = d.subject.split(".")
        if len(tokens) < 9:
            return
        stream = self.streams.get(tokens[2])
        c = stream.consumers.get(tokens[3]) if stream is not None else None
        if c is None:
            return
        try:
            sseq = int(tokens[5])
        except ValueError:
            return
        self._apply(c, c.on_ack(sseq, d.payload, time.time_ns()))
        if d.reply:
            self.broker.publish_internal(d.reply, b"")

    def _apply(self, c: Consumer, outcome: AckOutcome) -> None:
        stream = c.stream
        if outcome.acked:
            stream.on_acked(outcome.acked)
        for sseq, deliveries in outcome.terminated:
            self._advise(
                f"CONSUMER.MSG_TERMINATED.{stream.name}.{c.name}",
                "terminated",
                {"stream": stream.name, "consumer": c.name, "stream_seq": sseq, "deliveries": deliveries},
            )
        for sseq, deliveries in outcome.max_delivered:
            self._advise(
                f"CONSUMER.MAX_DELIVERIES.{stream.name}.{c.name}",
                "max_deliver",
                {"stream": stream.name, "consumer": c.name, "stream_seq": sseq, "deliveries": deliveries},
            )
        self._dirty.add(c)
        self.pump(c)

    # -- advisories ------------------------------------------------------------------------

    def _advise(self, suffix: str, kind: str, body: dict[str, Any]) -> None:
        subject = f"{ADVISORY}.{suffix}"
        broker = self.broker
        if not broker.has_interest(subject):
            return
        event = {"type": f"io.nats.jetstream.advisory.v1.{kind}", "id": _nuid(), "timestamp": rfc3339(time.time_ns()), **body}
        broker.publish_internal(subject, json.dumps(event).encode())

    def _advise_stream(self, name: str, action: str) -> None:
        verb = {"create": "CREATED", "delete": "DELETED", "modify": "UPDATED"}[action]
        self._advise(f"STREAM.{verb}.{name}", "stream_action", {"stream": name, "action": action})

    # -- the API ---------------------------------------------------------------------------

    def _on_api(self, d: Delivery) -> None:
        if not d.reply:
            return
        self.api_total += 1
        body = dispatch(self, d)
        if body is None:
            return
        if "error" in body:
            self.api_errors += 1
        self._reply(d.reply, body)

    # -- housekeeping ----------------------------------------------------------------------

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick)
            try:
                self.tick(time.time_ns())
            except Exception:
                log.exception("JetStream housekeeping failed")

    def tick(self, now: int) -> None:
        """One round of housekeeping at ``now`` (Unix ns)."""
        expire = now - self._last_expire >= SECOND // 4
        if expire:
            self._last_expire = now
        for stream in list(self.streams.values()):
            if expire and stream.config.max_age > 0:
                stream.expire(now)
            for c in list(stream.consumers.values()):
                deadline = c.next_deadline()
                if deadline is not None and deadline <= now:
                    self._apply(c, c.check_timeouts(now))
                elif c.config.is_push or c.waiting:
                    self.pump(c)
                self._heartbeat(c, now)
                self._reap_if_inactive(stream, c, now)
        self._save_consumers()

    def _heartbeat(self, c: Consumer, now: int) -> None:
        for req in c.waiting:
            # a waiting pull request that asked for heartbeats hears that the consumer is alive
            if req.heartbeat and now - req.last_sent >= req.heartbeat:
                req.last_sent = now
                self._status(req.reply, 100, "Idle Heartbeat")
        hb = c.config.idle_heartbeat
        if not hb or not c.config.is_push:
            return
        last = max(c.last_delivery_ns, self._last_hb.get(c, 0))
        if now - last < hb or not self.broker.has_interest(c.config.deliver_subject):
            return
        self._last_hb[c] = now
        self._status(
            c.config.deliver_subject,
            100,
            "Idle Heartbeat",
            {"Nats-Last-Consumer": str(c.delivered_cseq), "Nats-Last-Stream": str(c.delivered_sseq)},
        )

    def _reap_if_inactive(self, stream: Stream, c: Consumer, now: int) -> None:
        threshold = c.config.inactive_threshold
        if threshold <= 0:
            return
        if c.config.is_push:
            if self.broker.has_interest(c.config.deliver_subject):
                self._inactive_since.pop(c, None)
                return
            since = self._inactive_since.setdefault(c, now)
        else:
            if c.waiting:
                return
            since = c.last_active_ns
        if now - since >= threshold:
            with contextlib.suppress(E.ApiError):
                self.delete_consumer(stream, c.name)

    # -- reading for the API ---------------------------------------------------------------

    def account_info(self) -> dict[str, Any]:
        memory = sum(s.store.num_bytes for s in self.streams.values() if not self._persistent(s))
        storage = sum(s.store.num_bytes for s in self.streams.values() if self._persistent(s))
        limits = {
            "max_memory": -1,
            "max_storage": -1,
            "max_streams": -1,
            "max_consumers": -1,
            "max_ack_pending": -1,
            "memory_max_stream_bytes": -1,
            "storage_max_stream_bytes": -1,
            "max_bytes_required": False,
        }
        return {
            "memory": memory,
            "storage": storage,
            "streams": len(self.streams),
            "consumers": sum(len(s.consumers) for s in self.streams.values()),
            "limits": limits,
            "api": {"total": self.api_total, "errors": self.api_errors},
        }
