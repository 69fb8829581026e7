"""A replica's Prometheus metrics, served as text (format 0.0.4) on its HTTP port at ``/metrics``.

Each replica is its own process with its own registry, so numbers never mix between
processes; the control plane scrapes every replica and adds ``service`` and ``instance``
labels, and sums across replicas at query time. The exposition format is written by
:mod:`minga.service._exposition` (shared with the gateway) rather than through a client
library: the process figures come from ``/proc`` and :mod:`resource`, and nothing needs a
global registry.

Metrics (durations in seconds, sizes in bytes):

- ``minga_entrypoint_calls_total{entrypoint,kind,outcome}`` counter (``outcome``: ok / error)
- ``minga_entrypoint_duration_seconds{entrypoint,kind}`` histogram
- ``minga_entrypoint_inflight`` gauge
- ``minga_queue_pending{queue}`` gauge: jobs waiting in a consumed work queue (sampled per scrape)
- ``minga_event_loop_lag_seconds`` gauge: how late a 100 ms timer fired, last sample
- ``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``process_open_fds``,
  ``process_start_time_seconds``
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from collections.abc import Awaitable, Callable

from minga.service._exposition import Histogram, exposition_line, histogram_family, metric_family

__all__ = ["BUCKETS", "EntrypointSeries", "ReplicaMetrics"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

QueueDepth = Callable[[], Awaitable[dict[str, int]]]


class EntrypointSeries:
    """The series of one entrypoint: its calls by outcome and its duration histogram.

    The container looks it up once per entrypoint and counts each call on it directly.
    """

    __slots__ = ("error", "histogram", "ok")

    def __init__(self) -> None:
        self.ok = 0
        self.error = 0
        self.histogram = Histogram(BUCKETS)

    def observe(self, ok: bool, seconds: float) -> None:
        """Count one finished call that took ``seconds``."""
        if ok:
            self.ok += 1
        else:
            self.error += 1
        self.histogram.observe(seconds)


class ReplicaMetrics:
    """What one replica counts; :meth:`render` is the body of ``GET /metrics``."""

    def __init__(self, service: str, instance: str) -> None:
        self.service = service
        self.instance = instance
        self.entrypoints: dict[tuple[str, str], EntrypointSeries] = {}  # (entrypoint, kind)
        self.inflight = 0
        self.loop_lag = 0.0
        self.queue_depth: QueueDepth | None = None
        self.started = time.time()

    def declare(self, entrypoint: str, kind: str) -> EntrypointSeries:
        """``entrypoint``'s series, exposed at zero from now on, so the first calls count in a rate."""
        series = self.entrypoints.get((entrypoint, kind))
        if series is None:
            series = self.entrypoints[(entrypoint, kind)] = EntrypointSeries()
        return series

    def observe(self, entrypoint: str, kind: str, ok: bool, seconds: float) -> None:
        """Count one finished call of ``entrypoint`` that took ``seconds``."""
        self.declare(entrypoint, kind).observe(ok, seconds)

    async def watch_loop_lag(self, stop: asyncio.Event, every: float = 0.1) -> None:
        """Measure event-loop lag until ``stop`` is set: how much later than asked a timer fires."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            asked = loop.time()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
            self.loop_lag = max(0.0, loop.time() - asked - every)

    async def render(self) -> str:
        """The whole exposition, one ``# TYPE`` block per metric."""
        series = self.entrypoints.items()
        calls = [((ep, kind, "ok"), s.ok) for (ep, kind), s in series]
        calls += [((ep, kind, "error"), s.error) for (ep, kind), s in series]
        out = metric_family("minga_entrypoint_calls_total", "counter", ("entrypoint", "kind", "outcome"), calls)
        out += histogram_family(
            "minga_entrypoint_duration_seconds", ("entrypoint", "kind"), [(k, s.histogram) for k, s in series]
        )
        out.append("# TYPE minga_entrypoint_inflight gauge")
        out.append(exposition_line("minga_entrypoint_inflight", (), self.inflight))
        if self.queue_depth is not None:
            out.append("# TYPE minga_queue_pending gauge")
            with contextlib.suppress(Exception):  # a broker hiccup must not break the scrape
                for queue, depth in sorted((await self.queue_depth()).items()):
                    out.append(exposition_line("minga_queue_pending", (("queue", queue),), depth))
        out.append("# TYPE minga_event_loop_lag_seconds gauge")
        out.append(exposition_line("minga_event_loop_lag_seconds", (), self.loop_lag))
        out.extend(_process_lines(self.started))
        return "\n".join(out) + "\n"


def _process_lines(started: float) -> list[str]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss = 0
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/statm", encoding="ascii") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    fds = 0
    with contextlib.suppress(OSError):
        fds = len(os.listdir("/proc/self/fd"))
    return [
        "# TYPE process_cpu_seconds_total counter",
        exposition_line("process_cpu_seconds_total", (), usage.ru_utime + usage.ru_stime),
        "# TYPE process_resident_memory_bytes gauge",
        exposition_line("process_resident_memory_bytes", (), rss or usage.ru_maxrss * 1024),
        "# TYPE process_open_fds gauge",
        exposition_line("process_open_fds", (), fds),
        "# TYPE process_start_time_seconds gauge",
        exposition_line("process_start_time_seconds", (), started),
    ]
