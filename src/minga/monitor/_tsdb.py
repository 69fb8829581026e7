"""Metric samples under MINGA_HOME, in SQLite: series, samples, retention and downsampling.

One row per series (its name and label set) and one per sample. Samples younger than
``raw_for`` seconds are kept as scraped; older ones are downsampled to the last sample of
each series per ``resolution`` seconds (the last value keeps counters exact for ``rate``
and ``increase``), and samples older than ``retention`` are dropped.

A metric may have at most ``max_series`` label sets: a scrape that would add more is
refused for those series with a :class:`~minga.errors.CardinalityError` recorded on the
target, so one label carrying request ids cannot swamp the store.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import re2

from minga.errors import CardinalityError

__all__ = ["Labels", "Matcher", "MetricStore", "SeriesData", "label_regex"]

Labels = tuple[tuple[str, str], ...]

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a bad pattern is the caller's error to report, not a line on stderr


@functools.lru_cache(maxsize=1024)
def label_regex(pattern: str) -> Any:
    """``pattern`` compiled by RE2, whose matching time grows linearly with the text (no
    backtracking: ``(.*.*.*)*X`` is as cheap as ``.*X``); ValueError when RE2 refuses it
    (back-references and look-arounds have no linear-time form)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        problem = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(problem) from None


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher: ``op`` is ``=``, ``!=``, ``=~`` or ``!~`` (regexes match the whole value, in
    linear time: see :func:`label_regex`)."""

    label: str
    op: str
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        have = labels.get(self.label, "")
        if self.op == "=":
            return have == self.value
        if self.op == "!=":
            return have != self.value
        hit = label_regex(self.value).fullmatch(have) is not None
        return hit if self.op == "=~" else not hit


@dataclass(slots=True)
class SeriesData:
    """One series' samples in time order: ``points`` are (Unix seconds, value)."""

    name: str
    labels: dict[str, str]
    points: list[tuple[float, float]]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (id INTEGER PRIMARY KEY, name TEXT NOT NULL, labels TEXT NOT NULL,
                                   UNIQUE (name, labels));
CREATE TABLE IF NOT EXISTS samples (series INTEGER NOT NULL, ts REAL NOT NULL, value REAL NOT NULL);
CREATE INDEX IF NOT EXISTS samples_by_series ON samples (series, ts);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value REAL NOT NULL);
"""


class MetricStore:
    """Samples in ``path`` (SQLite). Durations are seconds."""

    def __init__(
        self,
        path: Path,
        *,
        retention: float = 7 * 86400,
        raw_for: float = 3600,
        resolution: float = 60,
        max_series: int = 2000,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention = retention
        self.raw_for = raw_for
        self.resolution = resolution
        self.max_series = max_series
        # one thread at a time: the monitor's writer thread once the control plane runs
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._ids: dict[tuple[str, Labels], int] = {}
        self._per_name: dict[str, int] = {}
        self._labels: dict[int, tuple[str, dict[str, str]]] = {}
        self._last_sid = 0
        self.refresh()

    def refresh(self) -> None:
        """Learn the series another connection (the writer, when this one only reads) added since."""
        for sid, name, raw in self.db.execute("SELECT id, name, labels FROM series WHERE id > ? ORDER BY id",
                                              (self._last_sid,)):  # fmt: skip
            labels: Labels = tuple((k, v) for k, v in json.loads(raw))
            self._ids[(name, labels)] = sid
            self._per_name[name] = self._per_name.get(name, 0) + 1
            self._labels[sid] = (name, dict(labels))
            self._last_sid = sid

    def close(self) -> None:
        self.db.close()

    @property
    def series_count(self) -> int:
        return len(self._ids)

    def _series_id(self, name: str, labels: Labels) -> int:
        key = (name, labels)
        sid = self._ids.get(key)
        if sid is not None:
            return sid
        count = self._per_name.get(name, 0)
        if count >= self.max_series:
            raise CardinalityError(name, self.max_series, dict(labels))
        cur = self.db.execute(
            "INSERT INTO series (name, labels) VALUES (?, ?)", (name, json.dumps([list(p) for p in labels]))
        )
        sid = int(cur.lastrowid or 0)
        self._last_sid = max(self._last_sid, sid)
        self._ids[key] = sid
        self._per_name[name] = count + 1
        self._labels[sid] = (name, dict(labels))
        return sid

    def ingest(self, ts: float, samples: Iterable[tuple[str, Labels, float]]) -> list[CardinalityError]:
        """Store ``samples`` taken at ``ts`` in one transaction; return the series refused by the guard."""
        refused: list[CardinalityError] = []
        rows: list[tuple[int, float, float]] = []
        self.db.execute("BEGIN")
        try:
            for name, labels, value in samples:
                try:
                    rows.append((self._series_id(name, labels), ts, value))
                except CardinalityError as exc:
                    refused.append(exc)
            self.db.executemany("INSERT INTO samples (series, ts, value) VALUES (?, ?, ?)", rows)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return refused

    def names(self) -> list[str]:
        """Every metric name stored."""
        return sorted(self._per_name)

    def series(self, name: str, matchers: Sequence[Matcher] = ()) -> list[tuple[int, dict[str, str]]]:
        """(id, labels) of the series of ``name`` that every matcher accepts."""
        return [
            (sid, labels)
            for sid, (n, labels) in self._labels.items()
            if n == name and all(m.matches(labels) for m in matchers)
        ]

    def select(self, name: str, matchers: Sequence[Matcher], start: float, end: float) -> list[SeriesData]:
        """The samples of every matching series with ``start <= ts <= end``, oldest first."""
        found = self.series(name, matchers)
        out: list[SeriesData] = []
        for sid, labels in found:
            points = self.db.execute(
                "SELECT ts, value FROM samples WHERE series = ? AND ts >= ? AND ts <= ? ORDER BY ts",
                (sid, start, end),
            ).fetchall()
            if points:
                out.append(SeriesData(name, labels, [(float(t), float(v)) for t, v in points]))
        return out

    def compact(self, now: float | None = None) -> int:
        """Downsample what is older than ``raw_for`` and drop what is older than ``retention``.

        Returns the number of samples removed. Work done is remembered, so each call only
        looks at samples that became old since the last one.
        """
        now = time.time() if now is None else now
        row = self.db.execute("SELECT value FROM meta WHERE key = 'compacted'").fetchone()
        done = float(row[0]) if row else 0.0
        # whole resolution buckets only, so a bucket is never thinned twice
        cutoff = (now - self.raw_for) // self.resolution * self.resolution
        removed = 0
        self.db.execute("BEGIN")
        try:
            if cutoff > done:
                cur = self.db.execute(
                    """DELETE FROM samples WHERE ts >= ?1 AND ts < ?2 AND rowid NOT IN (
                         SELECT max(rowid) FROM samples WHERE ts >= ?1 AND ts < ?2
                         GROUP BY series, CAST(ts / ?3 AS INTEGER))""",
                    (done, cutoff, self.resolution),
                )
                removed += cur.rowcount
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('compacted', ?)", (cutoff,))
            cur = self.db.execute("DELETE FROM samples WHERE ts < ?", (now - self.retention,))
            removed += cur.rowcount
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return removed
