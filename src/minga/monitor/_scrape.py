"""Scraping: every registered instance with a ``metrics`` port, on an interval, into the store.

Each sample gets the target's ``service`` and ``instance`` labels. Per target, three samples
describe the scrape itself: ``up`` (1 or 0), ``scrape_duration_seconds`` and
``scrape_samples_scraped``. Series refused by the cardinality guard are reported on the target.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from minga.monitor._expo import SeriesCache, parse_exposition_cached
from minga.monitor._tsdb import Labels, MetricStore

__all__ = ["ScrapeTarget", "Scraper", "TargetsFn"]


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """Where to scrape: ``url`` (``http://host:port/metrics``) of ``instance`` of ``service``."""

    service: str
    instance: str
    url: str


TargetsFn = Callable[[], Awaitable[list[ScrapeTarget]]]
#: runs a store write away from the loop: ``await write(fn, *args)`` returns ``fn(*args)``
WriteFn = Callable[..., Awaitable[Any]]


@dataclass
class TargetStatus:
    target: ScrapeTarget
    up: bool = False
    last_scrape: float | None = None
    duration: float = 0.0
    samples: int = 0
    error: str = ""
    refused: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.target.service,
            "instance": self.target.instance,
            "url": self.target.url,
            "up": self.up,
            "last_scrape": self.last_scrape,
            "duration": self.duration,
            "samples": self.samples,
            "error": self.error,
            "refused": self.refused,
        }


class Scraper:
    """Scrapes what ``targets`` returns into ``store``; ``timeout`` in seconds per target; ``write``
    runs the store's writes (on the monitor's writer thread), or None: here."""

    def __init__(
        self, store: MetricStore, targets: TargetsFn, *, timeout: float = 2.0, write: WriteFn | None = None
    ) -> None:
        self.store = store
        self.write = write
        self.targets = targets
        self.timeout = timeout
        self.status: dict[str, TargetStatus] = {}
        self._parsed: dict[str, SeriesCache] = {}  # per target: series text -> name, labels

    async def scrape_all(self, session: aiohttp.ClientSession) -> int:
        """One round over every target at once; returns the samples stored."""
        targets = await self.targets()
        known = {t.instance for t in targets}
        for gone in set(self.status) - known:
            del self.status[gone]
            self._parsed.pop(gone, None)
        results = await asyncio.gather(*(self._fetch(session, t) for t in targets))
        now = time.time()
        batch: list[tuple[str, Labels, float]] = []
        for target, (text, seconds, error) in zip(targets, results, strict=True):
            status = self.status.setdefault(target.instance, TargetStatus(target))
            status.target = target
            status.last_scrape, status.duration, status.error = now, seconds, error
            base = (("instance", target.instance), ("service", target.service))
            samples: list[tuple[str, Labels, float]] = []
            if text is not None:
                cache = self._parsed.setdefault(target.instance, {})
                if len(cache) > 4 * self.store.max_series:
                    cache.clear()  # a target whose series keep changing: start over
                try:
                    samples = [(s.name, s.labels, s.value) for s in parse_exposition_cached(text, cache, base)]
                except ValueError as exc:
                    status.error, text = f"bad exposition: {exc}", None
            status.up = text is not None
            status.samples = len(samples)
            batch.extend(samples)
            batch.append(("up", base, 1.0 if status.up else 0.0))
            batch.append(("scrape_duration_seconds", base, seconds))
            batch.append(("scrape_samples_scraped", base, float(len(samples))))
        if self.write is not None:
            refused = await self.write(self.store.ingest, now, batch)
        else:
            refused = self.store.ingest(now, batch)
        for st in self.status.values():
            st.refused = []
        for problem in refused:
            owner = self.status.get(problem.labels.get("instance", ""))
            if owner is not None and len(owner.refused) < 20:
                owner.refused.append(str(problem))
        return len(batch) - len(refused)

    async def _fetch(self, session: aiohttp.ClientSession, target: ScrapeTarget) -> tuple[str | None, float, str]:
        started = time.perf_counter()
        try:
            async with session.get(target.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                body = await resp.text()
                if resp.status != 200:
                    return None, time.perf_counter() - started, f"HTTP {resp.status}"
                return body, time.perf_counter() - started, ""
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, time.perf_counter() - started, f"{type(exc).__name__}: {exc}"
