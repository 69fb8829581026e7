"""Workloads that record histories: key-value reads and writes, and a JetStream work queue.

Both speak through nats-py, so they run unchanged against the embedded broker and against a
nats-server (or a cluster): the history then says what that engine did for its clients,
whatever faults were injected meanwhile. Every outcome is recorded as the client saw it: an
answer is ``ok``; a refusal that proves nothing happened (no responders) is ``fail``; a
timeout or a broken connection is ``info``, since the operation may or may not have happened.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from minga.chaos._history import EventType, Recorder

__all__ = ["QueueWorkload", "kv_workload"]


def _outcome(exc: BaseException) -> EventType:
    """How an operation that raised ended, as far as its client can tell."""
    if isinstance(exc, nats.errors.NoRespondersError):
        return "fail"  # nobody received the request
    return "info"


async def _kv_client(
    kv: KeyValue, recorder: Recorder, process: int, keys: Sequence[str], operations: int, op_timeout: float
) -> None:
    rng = random.Random(process)
    for i in range(operations):
        key = rng.choice(keys)
        roll = rng.random()
        f = "read" if roll < 0.5 else ("write" if roll < 0.9 else "delete")
        value = process * 1_000_000 + i if f == "write" else None
        recorder.invoke(process, f, value, key=key)
        try:
            async with asyncio.timeout(op_timeout):
                if f == "write":
                    await kv.put(key, json.dumps(value).encode())
                elif f == "delete":
                    await kv.delete(key)
                else:
                    try:
                        entry = await kv.get(key)
                        value = None if entry.value is None else json.loads(entry.value)
                    except nats.js.errors.KeyNotFoundError:  # deleted keys raise its subclass
                        value = None
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
) -> None:
    """``clients`` concurrent clients each run ``operations`` random reads, writes and deletes,
    each given ``op_timeout`` seconds before it counts as of unknown outcome."""
    async with asyncio.TaskGroup() as tg:
        for process in range(clients):
            tg.create_task(_kv_client(kv, recorder, process, keys, operations, op_timeout))


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

    def __post_init__(self) -> None:
        self._durable_jobs: set[str] = set()
        self._acked: set[str] = set()
        self._producing = True

    async def _produce(self, process: str, ids: range) -> None:
        for n in ids:
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
