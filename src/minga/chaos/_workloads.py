"""Workloads that record histories: key-value reads and writes, and a JetStream work queue.

Both speak through nats-py, so they run unchanged against the embedded broker and against a
nats-server (or a cluster); the key-value one also runs on etcd (:func:`run_etcd_workload`): the history then says what that engine did for its clients,
whatever faults were injected meanwhile. Every outcome is recorded as the client saw it: an
answer is ``ok``; a refusal that proves nothing happened (no responders) is ``fail``; a
timeout or a broken connection is ``info``, since the operation may or may not have happened.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import nats
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy
from nats.js.kv import KeyValue

from minga.chaos._history import EventType, Recorder

__all__ = ["ACK_WAIT", "EtcdKV", "QueueWorkload", "kv_workload", "run_etcd_workload", "run_workloads"]

ACK_WAIT = 2.0  # the workload consumer's ack wait, seconds: short, so a lost ack is redelivered soon


def _outcome(exc: BaseException) -> EventType:
    """How an operation that raised ended, as far as its client can tell."""
    if isinstance(exc, nats.errors.NoRespondersError):
        return "fail"  # nobody received the request
    return "info"


class Register(Protocol):
    """A key-value store as the workload uses it: values are JSON, a missing key reads None."""

    async def put(self, key: str, value: bytes) -> None: ...

    async def get(self, key: str) -> Any: ...

    async def delete(self, key: str) -> None: ...


class NatsKV:
    """A nats-py key-value bucket as a :class:`Register`."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def put(self, key: str, value: bytes) -> None:
        await self._kv.put(key, value)

    async def get(self, key: str) -> Any:
        try:
            entry = await self._kv.get(key)
        except nats.js.errors.KeyNotFoundError:  # deleted keys raise its subclass
            return None
        return None if entry.value is None else json.loads(entry.value)

    async def delete(self, key: str) -> None:
        await self._kv.delete(key)


async def _register_client(
    store: Register,
    recorder: Recorder,
    process: int,
    keys: Sequence[str],
    operations: int,
    op_timeout: float,
    until: float,
    pause: float,
) -> None:
    rng = random.Random(process)
    loop = asyncio.get_running_loop()
    for i in range(operations):
        if loop.time() > until:
            return
        await asyncio.sleep(pause)
        key = rng.choice(keys)
        roll = rng.random()
        f = "read" if roll < 0.5 else ("write" if roll < 0.9 else "delete")
        value: Any = process * 1_000_000 + i if f == "write" else None
        recorder.invoke(process, f, value, key=key)
        try:
            async with asyncio.timeout(op_timeout):
                if f == "write":
                    await store.put(key, json.dumps(value).encode())
                elif f == "delete":
                    await store.delete(key)
                else:
                    value = await store.get(key)
        except Exception as exc:
            recorder.complete(process, _outcome(exc), f, value, key=key)
            await asyncio.sleep(0.01)  # a broken connection is not hammered
            continue
        recorder.complete(process, "ok", f, value, key=key)


async def kv_workload(
    kv: KeyValue,
    recorder: Recorder,
    *,
    clients: int = 4,
    operations: int = 50,
    keys: Sequence[str] = ("a", "b", "c"),
    op_timeout: float = 2.0,
    seconds: float | None = None,
    pause: float = 0.0,
) -> None:
    """``clients`` concurrent clients each run ``operations`` random reads, writes and deletes
    (or as many as ``seconds`` allow), ``pause`` seconds apart, each given ``op_timeout``
    seconds before it counts as of unknown outcome."""
    until = asyncio.get_running_loop().time() + (seconds if seconds is not None else float("inf"))
    count = operations if seconds is None else 1 << 40
    async with asyncio.TaskGroup() as tg:
        for process in range(clients):
            tg.create_task(
                _register_client(NatsKV(kv), recorder, process, keys, count, op_timeout, until, pause)
            )


@dataclass
class QueueWorkload:
    """Producers enqueue numbered jobs on a work-queue stream; consumers of one durable take them.

    ``run()`` enqueues ``messages`` jobs from ``producers`` clients while ``consumers`` take,
    record and acknowledge them (a confirmed ack: ``ack_sync``), then keeps consuming until
    every job whose enqueue was acknowledged has been acknowledged in turn, or ``drain``
    seconds pass; the checker then judges what was lost. The stream and the durable pull
    consumer exist beforehand; give the consumer a short ack wait (and ``drain`` several
    times it), since a job whose ack was lost is only delivered again once that wait ends.
    """

    js: JetStreamContext
    recorder: Recorder
    subject: str
    durable: str
    messages: int = 200
    producers: int = 2
    consumers: int = 2
    timeout: float = 2.0
    drain: float = 20.0
    pace: float = 0.0  # seconds between one producer's enqueues

    def __post_init__(self) -> None:
        self._durable_jobs: set[str] = set()
        self._acked: set[str] = set()
        self._producing = True

    async def _produce(self, process: str, ids: range) -> None:
        for n in ids:
            await asyncio.sleep(self.pace)
            job = f"job-{n}"
            self.recorder.invoke(process, "enqueue", job)
            try:
                await self.js.publish(self.subject, job.encode(), timeout=self.timeout)
            except Exception as exc:
                self.recorder.complete(process, _outcome(exc), "enqueue", job)
                await asyncio.sleep(0.01)
                continue
            self.recorder.complete(process, "ok", "enqueue", job)
            self._durable_jobs.add(job)

    def _done(self) -> bool:
        return not self._producing and self._durable_jobs <= self._acked

    async def _consume(self, process: str) -> None:
        sub = None
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        # a message fetched now may answer the previous fetch's request: it was sent no
        # earlier than that fetch began
        previous = current = self.recorder.now()
        while not self._done():
            if not self._producing:
                deadline = deadline or loop.time() + self.drain
                if loop.time() > deadline:
                    return
            previous, current = current, self.recorder.now()
            try:
                if sub is None:
                    sub = await self.js.pull_subscribe(self.subject, durable=self.durable)
                msgs = await sub.fetch(10, timeout=0.5)
            except Exception:
                await asyncio.sleep(0.05)  # nothing yet, or the server is away
                continue
            for msg in msgs:
                job = msg.data.decode()
                self.recorder.invoke(process, "deliver", job, at=previous)
                self.recorder.complete(process, "ok", "deliver", job)
                self.recorder.invoke(process, "ack", job)
                try:
                    await msg.ack_sync(timeout=self.timeout)
                except Exception as exc:
                    self.recorder.complete(process, _outcome(exc), "ack", job)
                    continue
                self.recorder.complete(process, "ok", "ack", job)
                self._acked.add(job)

    async def run(self) -> None:
        share = -(-self.messages // self.producers)
        async with asyncio.TaskGroup() as tg:
            for c in range(self.consumers):
                tg.create_task(self._consume(f"consumer-{c}"))
            async with asyncio.TaskGroup() as producing:
                for p in range(self.producers):
                    ids = range(p * share, min((p + 1) * share, self.messages))
                    producing.create_task(self._produce(f"producer-{p}", ids))
            self._producing = False


async def prepare(js: JetStreamContext, *, bucket: str, stream: str, replicas: int, wait: float) -> KeyValue:
    """Create the KV bucket, the work-queue stream and its durable consumer, retrying while a
    cluster elects its leaders (at most ``wait`` seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        try:
            kv = await js.create_key_value(bucket=bucket, history=1, replicas=replicas)
            await js.add_stream(
                name=stream,
                subjects=[stream.lower()],
                retention=RetentionPolicy.WORK_QUEUE,
                num_replicas=replicas,
            )
            await js.add_consumer(
                stream,
                ConsumerConfig(durable_name="workers", ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT),
            )
            return kv
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def run_workloads(
    servers: Sequence[str],
    recorder: Recorder,
    *,
    replicas: int = 1,
    kv_operations: int = 40,
    messages: int = 200,
    seconds: float | None = None,
    wait: float = 30.0,
) -> None:
    """Connect to ``servers`` (a cluster's URLs), prepare, and run both workloads at once:
    ``kv_operations`` per KV client and ``messages`` jobs, or, given ``seconds``, KV operations
    every 20 ms and the jobs spread over that time."""
    nc = await nats.connect(
        servers=list(servers),
        max_reconnect_attempts=600,
        reconnect_time_wait=0.2,
        ping_interval=1,
        max_outstanding_pings=2,
        connect_timeout=2,
    )
    try:
        js = nc.jetstream(timeout=2)
        kv = await prepare(js, bucket="history", stream="WORK", replicas=replicas, wait=wait)
        pace = 0.0 if seconds is None else seconds * 2 / messages
        queue = QueueWorkload(
            js, recorder, "work", "workers", messages=messages, drain=8 * ACK_WAIT, pace=pace
        )
        async with asyncio.TaskGroup() as tg:
            kv_run = kv_workload(
                kv,
                recorder,
                operations=kv_operations,
                op_timeout=2,
                seconds=seconds,
                pause=0.02 if seconds else 0.0,
            )
            tg.create_task(kv_run)
            tg.create_task(queue.run())
    finally:
        await nc.close()


class EtcdKV:
    """Just enough of etcd's v3 JSON gateway for a register workload: put, get, delete.

    Each client keeps one endpoint and moves to the next when a request fails, as etcd's own
    clients do. Reads are etcd's default, linearizable ranges.
    """

    def __init__(self, session: aiohttp.ClientSession, endpoints: Sequence[str], first: int = 0) -> None:
        self._session = session
        self._endpoints = list(endpoints)
        self._at = first % len(self._endpoints)

    async def _call(self, path: str, body: dict[str, str]) -> dict[str, Any]:
        url = f"{self._endpoints[self._at]}/v3/kv/{path}"
        try:
            async with self._session.post(url, json=body) as response:
                response.raise_for_status()
                answer: dict[str, Any] = await response.json(content_type=None)
                return answer
        except BaseException:
            self._at = (self._at + 1) % len(self._endpoints)
            raise

    @staticmethod
    def _b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    async def put(self, key: str, value: bytes) -> None:
        await self._call("put", {"key": self._b64(key), "value": base64.b64encode(value).decode()})

    async def get(self, key: str) -> Any:
        answer = await self._call("range", {"key": self._b64(key)})
        kvs = answer.get("kvs") or []
        return json.loads(base64.b64decode(kvs[0]["value"])) if kvs else None

    async def delete(self, key: str) -> None:
        await self._call("deleterange", {"key": self._b64(key)})


async def run_etcd_workload(
    endpoints: Sequence[str],
    recorder: Recorder,
    *,
    seconds: float,
    clients: int = 4,
    keys: Sequence[str] = ("a", "b", "c"),
    op_timeout: float = 2.0,
    wait: float = 30.0,
) -> None:
    """Random reads, writes and deletes on etcd for ``seconds``, from ``clients`` clients spread
    over ``endpoints``, once the cluster answers (at most ``wait`` seconds)."""
    timeout = aiohttp.ClientTimeout(total=op_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        probe = EtcdKV(session, endpoints)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            try:
                await probe.get("probe")
                break
            except Exception:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        until = loop.time() + seconds
        async with asyncio.TaskGroup() as tg:
            for process in range(clients):
                kv = EtcdKV(session, endpoints, first=process)
                tg.create_task(
                    _register_client(kv, recorder, process, keys, 1 << 40, op_timeout, until, 0.02)
                )
