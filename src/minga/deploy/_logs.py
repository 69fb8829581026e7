"""Reading what replicas wrote: the time-stamped per-instance files under ``<home>/logs``.

Each line of ``<home>/logs/<instance>.log`` is ``<ISO-8601 UTC time> <text>``, written by
the local provider as it reads the replica's stdout and stderr.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

__all__ = ["LogLine", "LogPage", "follow_logs", "log_files", "page_logs", "read_logs", "select_lines"]


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


@dataclass(frozen=True)
class LogPage:
    """One page of :func:`page_logs`: ``lines`` in time order, and ``before``, the cursor of the
    page of older lines (None when there is none)."""

    lines: list[LogLine]
    before: str | None


def _tail(
    path: Path, end: int | None, since: datetime | None, limit: int, block: int = 1 << 16
) -> tuple[list[tuple[LogLine, int]], int, bool]:
    """At most ``limit`` lines of ``path`` that end before byte ``end`` (None: the end of the file,
    a half-written last line left out), newest first, each with the offset it starts at; the end
    read from; and whether older lines (at or after ``since``) may be left. Reads backwards
    ``block`` bytes at a time, so the cost follows ``limit``, not the file's size."""
    found: list[tuple[LogLine, int]] = []
    with path.open("rb") as f:
        pos = f.seek(0, 2) if end is None else end
        rest = b""
        trim = end is None
        while pos > 0:
            size = min(block, pos)
            pos -= size
            f.seek(pos)
            rest = f.read(size) + rest
            if trim:
                last = rest.rfind(b"\n")
                if last < 0 and pos > 0:
                    continue
                rest = rest[: last + 1]  # the line being written waits for its end
                end, trim = pos + len(rest), False
            cut = rest.find(b"\n") + 1 if pos > 0 else 0  # before the first newline: a line's tail only
            if pos > 0 and cut == 0:
                continue
            body, rest = rest[cut:], rest[:cut]
            parsed: list[tuple[bytes, int]] = []
            start = pos + cut
            for raw in body.split(b"\n")[:-1]:
                parsed.append((raw, start))
                start += len(raw) + 1
            for raw, at in reversed(parsed):
                line = _parse(path.stem, raw.decode("utf-8", "replace"))
                if line is None:
                    continue
                if since is not None and line.at < since:
                    return found, end or 0, False
                found.append((line, at))
                if len(found) >= limit:
                    return found, end or 0, at > 0
    return found, end or 0, False


def _cursor(ends: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(ends, separators=(",", ":")).encode()).decode().rstrip("=")


def _ends(cursor: str) -> dict[str, int]:
    try:
        doc = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, int) for k, v in doc.items()):
        raise ValueError(f"{cursor!r} is not a cursor this server gave")
    return doc


def page_logs(
    files: Iterable[Path], *, since: datetime | None = None, limit: int = 1000, before: str | None = None
) -> LogPage:
    """The newest ``limit`` lines of ``files`` (written at or after ``since``), merged in time order;
    ``before``, a page's cursor, asks for the lines older than that page. Each file is read
    backwards from where the page ends: a page costs at most ``limit`` lines per file, whatever the
    files' size. ValueError for a cursor that is not one."""
    ends = _ends(before) if before is not None else None
    candidates: list[tuple[LogLine, int, str]] = []
    state: dict[str, tuple[int, bool]] = {}  # per file: the end read from, whether older lines are left
    for path in files:
        if ends is not None and path.stem not in ends:
            continue  # read to its start already
        try:
            lines, end, older = _tail(path, None if ends is None else ends[path.stem], since, limit)
        except FileNotFoundError:
            continue
        state[path.stem] = (end, older)
        candidates.extend((line, at, path.stem) for line, at in lines)
    candidates.sort(key=lambda c: c[0])
    cut = max(0, len(candidates) - limit)
    next_ends: dict[str, int] = {}
    for _, _, stem in candidates[:cut]:  # shown on a later page: its file goes on from its end
        next_ends[stem] = state[stem][0]
    for stem, (end, older) in state.items():
        if older:
            next_ends[stem] = end
    for _, at, stem in candidates[cut:]:
        if stem in next_ends:
            next_ends[stem] = min(next_ends[stem], at)
    return LogPage([c[0] for c in candidates[cut:]], _cursor(next_ends) if next_ends else None)
