"""Reading what replicas wrote: the time-stamped per-instance files under ``<home>/logs``.

Each line of ``<home>/logs/<instance>.log`` is ``<ISO-8601 UTC time> <text>``, written by
the local provider as it reads the replica's stdout and stderr.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["LogLine", "follow_logs", "log_files", "read_logs", "select_lines"]


@dataclass(frozen=True, order=True)
class LogLine:
    """One line of one replica's output; ``at`` is timezone-aware (UTC)."""

    at: datetime
    instance: str
    text: str


def _parse(instance: str, raw: str) -> LogLine | None:
    stamp, _, text = raw.rstrip("\n").partition(" ")
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return LogLine(at, instance, text)


def log_files(home: Path, service: str | None = None) -> list[Path]:
    """The log files of every instance, or of one service's instances (``orders-1``...) or one instance."""
    files = sorted((home / "logs").glob("*.log"))
    if service is None:
        return files
    return [f for f in files if f.stem == service or f.stem.rsplit("-", 1)[0] == service]


def _lines(path: Path, since: datetime | None) -> Iterator[LogLine]:
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = _parse(path.stem, raw)
            if line is not None and (since is None or line.at >= since):
                yield line


def read_logs(files: Iterable[Path], since: datetime | None = None) -> list[LogLine]:
    """Every line of ``files`` written at or after ``since``, merged in time order."""
    return list(heapq.merge(*(_lines(f, since) for f in files)))


def select_lines(
    lines: Iterable[LogLine], keep: Callable[[LogLine], bool] | None = None, tail: int | None = None
) -> list[LogLine]:
    """The lines ``keep`` accepts (all without it), only the last ``tail`` of them when given."""
    kept = [line for line in lines if keep is None or keep(line)]
    if tail is not None:
        kept = kept[-tail:] if tail > 0 else []
    return kept


async def follow_logs(
    home: Path,
    service: str | None = None,
    since: datetime | None = None,
    poll: float = 0.25,
    *,
    keep: Callable[[LogLine], bool] | None = None,
    tail: int | None = None,
) -> AsyncIterator[LogLine]:
    """Lines as they are written, like ``tail -f`` (files are re-checked every ``poll`` seconds);
    instances that appear later (restarts, new replicas) are picked up too. Only lines ``keep``
    accepts are yielded; of those already written, only the last ``tail`` when given."""
    offsets: dict[Path, int] = {}
    for line in select_lines(read_logs(log_files(home, service), since), keep, tail):
        yield line
    for f in log_files(home, service):
        offsets[f] = f.stat().st_size
    while True:
        fresh: list[LogLine] = []
        for f in log_files(home, service):
            start = offsets.get(f, 0)
            size = f.stat().st_size
            if size <= start:
                continue
            with f.open("rb") as fh:
                fh.seek(start)
                chunk = fh.read(size - start)
            complete = chunk.rfind(b"\n") + 1  # a half-written line waits for its end
            offsets[f] = start + complete
            for raw in chunk[:complete].decode("utf-8", "replace").splitlines():
                parsed = _parse(f.stem, raw)
                if parsed is not None:
                    fresh.append(parsed)
        for new in sorted(fresh):
            if keep is None or keep(new):
                yield new
        await asyncio.sleep(poll)
