"""The monitor's query processes: every read of the metric, log and trace stores runs there, apart
from the event loop that serves the broker, the registry and the gateway.

A query is a module-level function ``op(stores, timeout, *args)`` returning a JSON document; it
is sent by reference to one of ``processes`` worker processes, run under a deadline, and its
document comes back as JSON bytes (encoded in the worker, so even a large answer costs the
control plane's loop no encoding)::

    async with QueryWorker(home / "monitor", settings) as worker:
        body = await worker.call_json(range_doc, "sum(rate(x[5m]))", start, end, 15.0, budget=5.0)
        rows = await worker.call(red_rows, 60.0, time.time())

Why processes: a query is pure Python (the evaluator) and SQLite; in a thread its Python half
would take the interpreter lock from the loop for milliseconds at a time, and a thread cannot be
stopped. A worker process runs in Linux's idle scheduling class (on CPU time nothing else wants;
``nice`` elsewhere), stops its own query at the deadline (the evaluator checks it between steps;
SQLite through a progress handler), and is killed and replaced when it does not answer
``grace`` seconds after it. It reads the stores through its own SQLite connections (WAL:
readers never wait for the writer).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from minga.errors import CardinalityError, MonitorError, QueryError, QueryTimeout
from minga.monitor._logs import LogSearch, LogStore
from minga.monitor._query import QueryEngine, Series
from minga.monitor._traces import TraceStore
from minga.monitor._tsdb import MetricStore

__all__ = [
    "QueryStores",
    "QueryWorker",
    "WorkerSettings",
    "instant_doc",
    "log_after",
    "log_search",
    "metric_names",
    "range_doc",
    "red_rows",
    "series_at",
    "trace_dependencies",
    "trace_list",
    "trace_spans",
    "trace_tree",
]

log = logging.getLogger("minga.monitor")


@dataclass(frozen=True)
class WorkerSettings:
    """``timeout``: the longest a query may run (seconds; a caller may ask for less);
    ``grace``: how long after it a silent worker is killed; ``nice``: the workers' CPU niceness
    where Linux's idle scheduling class is not available."""

    processes: int = 1
    timeout: float = 10.0
    grace: float = 2.0
    nice: int = 19
    max_series: int = 500
    max_points: int = 1_000_000


@dataclass
class QueryStores:
    """What a query reads, opened in the worker process."""

    metrics: MetricStore
    logs: LogStore
    traces: TraceStore
    engine: QueryEngine


Op = Callable[..., Any]


def finite(v: float) -> float | str:
    """JSON has no infinities or NaN: they travel as Prometheus writes them."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return v


# -- the queries (run in a worker) -------------------------------------------------------------


def instant_doc(stores: QueryStores, timeout: float, query: str, at: float) -> dict[str, Any]:
    """The API's ``/query`` answer."""
    result = stores.engine.instant(query, at, timeout=timeout)
    return {
        "query": query,
        "time": at,
        "result": [
            {"labels": s.labels, "value": finite(s.points[-1][1]), "time": s.points[-1][0]} for s in result
        ],
    }


def range_doc(
    stores: QueryStores, timeout: float, query: str, start: float, end: float, step: float
) -> dict[str, Any]:
    """The API's ``/query_range`` answer."""
    result = stores.engine.range(query, start, end, step, timeout=timeout)
    return {
        "query": query,
        "start": start,
        "end": end,
        "step": step,
        "result": [{"labels": s.labels, "points": [[t, finite(v)] for t, v in s.points]} for s in result],
    }


def series_at(stores: QueryStores, timeout: float, query: str, at: float) -> list[list[Any]]:
    """``[[labels, value], ...]`` of an instant query (NaN and infinities kept)."""
    return [[s.labels, s.points[-1][1]] for s in stores.engine.instant(query, at, timeout=timeout)]


def red_rows(stores: QueryStores, timeout: float, window: float, at: float) -> list[dict[str, Any]]:
    """Per service: requests/s, errors/s, error ratio, p50/p95/p99 (seconds), CPU (cores), RSS
    (bytes) and targets up, over the last ``window`` seconds."""
    deadline = time.monotonic() + timeout
    w = f"{max(1, int(window))}s"
    calls = f"minga_entrypoint_calls_total[{w}]"
    queries = {
        "rps": f"sum by (service) (rate({calls}))",
        "errors": f'sum by (service) (rate(minga_entrypoint_calls_total{{outcome="error"}}[{w}]))',
        "cpu": f"sum by (service) (rate(process_cpu_seconds_total[{w}]))",
        "rss": "sum by (service) (process_resident_memory_bytes)",
        "up": "sum by (service) (up)",
        "targets": "count by (service) (up)",
        "inflight": "sum by (service) (minga_entrypoint_inflight)",
    }
    for q in (0.5, 0.95, 0.99):
        queries[f"p{round(q * 100)}"] = (
            f"histogram_quantile({q}, sum by (service, le) (rate(minga_entrypoint_duration_seconds_bucket[{w}])))"
        )
    rows: dict[str, dict[str, Any]] = {}
    for key, query in queries.items():
        for series in stores.engine.instant(query, at, timeout=max(0.0, deadline - time.monotonic())):
            service = series.labels.get("service", "")
            row = rows.setdefault(service, {"service": service})
            value = series.points[-1][1]
            row[key] = None if math.isnan(value) or math.isinf(value) else value
    for row in rows.values():
        rps, errors = row.get("rps"), row.get("errors") or 0.0
        row["error_ratio"] = (errors / rps) if rps else 0.0
    return sorted(rows.values(), key=lambda r: str(r["service"]))


def metric_names(stores: QueryStores, timeout: float) -> list[str]:
    return stores.metrics.names()


def log_search(stores: QueryStores, timeout: float, search: LogSearch) -> list[dict[str, Any]]:
    """Matching log lines, newest first, as :meth:`LogRecord.to_json` gives them."""
    return [r.to_json() for r in stores.logs.search(search)]


def log_after(stores: QueryStores, timeout: float, last_id: int, search: LogSearch) -> list[dict[str, Any]]:
    """Matching lines newer than ``last_id``, oldest first."""
    return [r.to_json() for r in stores.logs.after(last_id, search)]


def trace_list(
    stores: QueryStores,
    timeout: float,
    service: str | None,
    start: float | None,
    errors_only: bool,
    limit: int,
) -> list[dict[str, Any]]:
    return stores.traces.traces(service=service, start=start, errors_only=errors_only, limit=limit)


def trace_tree(stores: QueryStores, timeout: float, trace_id: str) -> dict[str, Any]:
    return stores.traces.tree(trace_id)


def trace_spans(stores: QueryStores, timeout: float, trace_id: str) -> list[dict[str, Any]]:
    return [s.to_json() for s in stores.traces.spans(trace_id)]


def trace_dependencies(stores: QueryStores, timeout: float, start: float | None) -> list[dict[str, Any]]:
    return stores.traces.dependencies(start)


# -- the worker process --------------------------------------------------------------------------


def _serve(conn: Connection, root: str, settings: WorkerSettings) -> None:
    """The worker's loop: one request at a time until the parent closes its end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    path = Path(root)
    metrics = MetricStore(path / "metrics.db")
    stores = QueryStores(
        metrics,
        LogStore(path / "logs.db"),
        TraceStore(path / "traces.db"),
        QueryEngine(metrics, max_series=settings.max_series, max_points=settings.max_points),
    )
    deadline = [math.inf]

    def past_deadline() -> int:
        return 1 if time.monotonic() > deadline[0] else 0  # non-zero makes SQLite stop the statement

    for db in (stores.metrics.db, stores.logs.db, stores.traces.db):
        db.set_progress_handler(past_deadline, 10_000)
    while True:
        try:
            op, timeout, args = conn.recv()
        except (EOFError, OSError):
            return
        deadline[0] = time.monotonic() + timeout
        try:
            stores.metrics.refresh()
            body = b"o" + json.dumps(op(stores, timeout, *args)).encode()
        except QueryTimeout as exc:
            body = _failure(kind="timeout", query=exc.query)
        except sqlite3.OperationalError as exc:  # "interrupted": the progress handler saw the deadline
            interrupted = str(exc) == "interrupted"
            body = (
                _failure(kind="timeout", query=_what(op, args))
                if interrupted
                else _failure(kind="error", message=f"{_what(op, args)}: {exc}")
            )
        except CardinalityError as exc:
            body = _failure(kind="cardinality", metric=exc.metric, limit=exc.limit)
        except QueryError as exc:
            body = _failure(kind="query", query=exc.query, problem=exc.problem)
        except Exception as exc:
            body = _failure(kind="error", message=f"{_what(op, args)}: {type(exc).__name__}: {exc}")
        finally:
            deadline[0] = math.inf
        try:
            conn.send_bytes(body)
        except OSError:
            return  # the control plane went away (or gave up on this answer and killed us)


def _failure(**doc: Any) -> bytes:
    """A failed query's answer: what :func:`_raise` rebuilds on the caller's side."""
    return b"e" + json.dumps(doc).encode()


def _lower_priority(pid: int, nice: int) -> None:
    """Let ``pid`` run only on CPU time the data path leaves: Linux's idle class where there is one
    (a waking broker or gateway always preempts it), else ``nice``."""
    sched_idle = getattr(os, "SCHED_IDLE", None)
    if sched_idle is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(pid, sched_idle, os.sched_param(0))
            return
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, pid, nice)


def _what(op: Op, args: tuple[Any, ...]) -> str:
    first = args[0] if args and isinstance(args[0], str) else ""
    return first or op.__name__


def _raise(doc: dict[str, Any]) -> None:
    kind = doc["kind"]
    if kind == "cardinality":
        raise CardinalityError(doc["metric"], int(doc["limit"]))
    if kind == "query":
        raise QueryError(doc["query"], doc["problem"])
    raise MonitorError(doc["message"])


@dataclass
class _Process:
    proc: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    fresh: bool = True


def _quiet(fut: asyncio.Future[Any]) -> None:
    """Collect an abandoned exchange's outcome (the killed worker's end of the pipe)."""
    if not fut.cancelled():
        fut.exception()


class QueryWorker:
    """A pool of worker processes reading the stores under ``root`` (``<home>/monitor``)."""

    def __init__(self, root: Path, settings: WorkerSettings | None = None) -> None:
        self.root = root
        self.settings = settings or WorkerSettings()
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads and a loop
        self._idle: asyncio.Queue[int] = asyncio.Queue()
        self._procs: dict[int, _Process | None] = {}
        self.served = 0
        self.timeouts = 0
        self.restarts = 0
        self.last_error = ""
        self._closed = False

    async def __aenter__(self) -> Self:
        for slot in range(self.settings.processes):
            self._procs[slot] = None
            self._idle.put_nowait(slot)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closed = True
        for slot, p in list(self._procs.items()):
            self._procs[slot] = None
            if p is not None:
                await asyncio.to_thread(self._end, p, 2.0)

    def _start(self) -> _Process:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_serve,
            args=(child, str(self.root), self.settings),
            name="minga-monitor-query",
            daemon=True,
        )
        proc.start()
        if proc.pid is not None:
            _lower_priority(proc.pid, self.settings.nice)  # from its start: its imports included
        child.close()
        return _Process(proc, parent)

    @staticmethod
    def _end(p: _Process, wait: float) -> None:
        p.conn.close()  # the worker's recv ends: it returns
        p.proc.join(wait)
        if p.proc.is_alive():
            p.proc.kill()
            p.proc.join(5.0)

    @staticmethod
    def _kill(p: _Process) -> None:
        p.proc.kill()
        p.proc.join(5.0)
        p.conn.close()

    @staticmethod
    def _exchange(p: _Process, request: tuple[Op, float, tuple[Any, ...]], wait: float) -> bytes | None:
        """Send ``request`` and wait up to ``wait`` seconds for the answer (in a thread of the loop's pool)."""
        p.conn.send(request)
        if not p.conn.poll(wait):
            return None
        return p.conn.recv_bytes()

    async def call_json(self, op: Op, *args: Any, budget: float | None = None) -> bytes:
        """The JSON document ``op(stores, timeout, *args)`` returns, run in a worker within ``budget``
        seconds (at most, and by default, the settings' ``timeout``), waiting for a free worker
        included. Raises QueryTimeout past it, QueryError / CardinalityError as the query does."""
        if self._closed:
            raise MonitorError("the monitor is stopping")
        budget = self.settings.timeout if budget is None else max(0.0, min(budget, self.settings.timeout))
        start = time.monotonic()
        what = _what(op, args)
        try:
            slot = await asyncio.wait_for(self._idle.get(), budget)
        except TimeoutError:
            self.timeouts += 1
            raise QueryTimeout(what, budget) from None
        try:
            answer = await self._run(slot, op, args, budget, start, what)
        finally:
            self._idle.put_nowait(slot)
        self.served += 1
        if answer[:1] == b"e":
            doc = json.loads(answer[1:])
            if doc["kind"] == "timeout":
                self.timeouts += 1
                raise QueryTimeout(doc["query"], budget)  # the caller's deadline, not what was left of it
            _raise(doc)
        return answer[1:]

    async def _run(
        self, slot: int, op: Op, args: tuple[Any, ...], budget: float, start: float, what: str
    ) -> bytes:
        """One request on ``slot``'s process (started or replaced as needed). A process that dies
        before it answers (killed, out of memory) is replaced and the request sent once more."""
        for attempt in (1, 2):
            known = self._procs.get(slot)
            if known is not None and not known.proc.is_alive():
                self.restarts += 1
                self.last_error = f"a query process exited with {known.proc.exitcode}: replaced"
                await asyncio.to_thread(self._kill, known)
                known = None
            p = known if known is not None else await asyncio.to_thread(self._start)
            self._procs[slot] = p
            left = max(0.0, budget - (time.monotonic() - start))
            # the first answer of a fresh process includes its imports: allow for them once
            wait = left + self.settings.grace + (10.0 if p.fresh else 0.0)
            p.fresh = False
            exchange = asyncio.ensure_future(asyncio.to_thread(self._exchange, p, (op, left, args), wait))
            try:
                answer = await asyncio.shield(exchange)
            except (OSError, EOFError):
                self._procs[slot] = None
                self.restarts += 1
                self.last_error = f"a query process died during {what!r}: replaced"
                await asyncio.to_thread(self._kill, p)
                if attempt == 1 and time.monotonic() - start < budget:
                    continue
                raise MonitorError(f"the query process died twice running {what!r}") from None
            except asyncio.CancelledError:
                # the caller went away mid-query: this process's answer would reach the next caller
                self._procs[slot] = None
                p.proc.kill()
                exchange.add_done_callback(_quiet)
                raise
            if answer is None:
                # stuck past its deadline: replace it, so the next query finds a fresh one
                self._procs[slot] = None
                self.restarts += 1
                self.timeouts += 1
                self.last_error = f"a query process overran its deadline ({what!r}): replaced"
                await asyncio.to_thread(self._kill, p)
                raise QueryTimeout(what, budget)
            return answer
        raise AssertionError("unreachable")

    async def call(self, op: Op, *args: Any, budget: float | None = None) -> Any:
        """:meth:`call_json`'s document, decoded."""
        return json.loads(await self.call_json(op, *args, budget=budget))

    async def instant(self, query: str, at: float, *, budget: float | None = None) -> list[Series]:
        """The series of an instant query, each with its one point."""
        found = await self.call(series_at, query, at, budget=budget)
        return [Series(labels, [(at, float(value))]) for labels, value in found]

    def health(self) -> dict[str, Any]:
        """The pool's state: ``ok``, or ``restarting`` while a worker is being replaced."""
        procs = [p for p in self._procs.values() if p is not None]
        alive = [p for p in procs if p.proc.is_alive()]
        state = "ok" if len(alive) == len(procs) else "restarting"
        return {
            "state": state,
            "pids": [p.proc.pid for p in alive],
            "processes": self.settings.processes,
            "served": self.served,
            "timeouts": self.timeouts,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }
