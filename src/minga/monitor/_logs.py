"""Log collection and search: the supervisor's per-instance files, indexed in SQLite with FTS5.

The collector reads ``<home>/logs/<instance>.log`` (lines ``<ISO time> <text>``, where a minga
replica's text is its JSON log record) from where it stopped. The offset of each file is
committed in the same transaction as the lines read from it, so a control plane that is
killed and restarted neither loses nor repeats a line. A file that shrank or was replaced
(another inode) is read again from its start.

Searches filter by time range, service, instance, minimum level and trace id, and match free
text through an FTS5 index over the message and the fields (every word must appear; a
trailing ``*`` matches a prefix). Newest lines come first.
"""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from minga.errors import QueryError

__all__ = ["LogCollector", "LogRecord", "LogSearch", "LogStore", "parse_log_line"]

#: reads the lines after an id, as :meth:`LogRecord.to_json` gives them (away from the event loop)
FetchAfter = Callable[[int, "LogSearch"], Awaitable[list[dict[str, Any]]]]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_LEVEL_ALIASES = {"warn": "warning", "err": "error", "fatal": "critical"}


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One log line: ``ts`` is Unix seconds; ``fields`` what the code attached to it.
    :attr:`LEVELS` ranks the levels, least severe first."""

    LEVELS: ClassVar[dict[str, int]] = LEVELS

    ts: float
    service: str
    instance: str
    level: str
    message: str
    trace_id: str | None = None
    logger: str = ""
    fields: dict[str, Any] | None = None
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "time": datetime.fromtimestamp(self.ts).astimezone().isoformat(timespec="milliseconds"),
            "service": self.service,
            "instance": self.instance,
            "level": self.level,
            "logger": self.logger,
            "message": self.message,
            "trace_id": self.trace_id,
            "fields": self.fields or {},
        }


def _service_of(instance: str) -> str:
    head, _, tail = instance.rpartition("-")
    return head if head and tail.isdigit() else instance


def parse_log_line(instance: str, raw: str) -> LogRecord | None:
    """A supervisor log line (``<ISO time> <text>``) as a record; None when it has no time stamp.

    A JSON text (a minga replica's) gives level, message, trace id and fields; any other text
    is an ``info`` line of the instance's service.
    """
    stamp, _, text = raw.rstrip("\n").partition(" ")
    try:
        ts = datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "message" in doc:
            level = str(doc.get("level") or "info").lower()
            fields = doc.get("fields") if isinstance(doc.get("fields"), dict) else {}
            assert isinstance(fields, dict)
            if doc.get("error"):
                fields = {**fields, "error": doc["error"]}
            return LogRecord(
                ts=ts,
                service=str(doc.get("service") or _service_of(instance)),
                instance=str(doc.get("instance") or instance),
                level=_LEVEL_ALIASES.get(level, level),
                message=str(doc["message"]),
                trace_id=str(doc["trace_id"]) if doc.get("trace_id") else None,
                logger=str(doc.get("logger") or ""),
                fields=fields,
            )
    return LogRecord(ts=ts, service=_service_of(instance), instance=instance, level="info", message=text)


@dataclass(frozen=True, slots=True)
class LogSearch:
    """What to look for. ``start``/``end`` are Unix seconds; ``level`` the least severe level shown;
    ``text`` free words (all must appear); ``limit`` caps the lines returned, newest first (1 to
    :attr:`MAX_LIMIT`); ``before`` (a line id) pages back: only lines older than it."""

    MAX_LIMIT: ClassVar[int] = 10_000

    start: float | None = None
    end: float | None = None
    service: str | None = None
    instance: str | None = None
    level: str | None = None
    trace_id: str | None = None
    text: str | None = None
    limit: int = 200
    before: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= self.MAX_LIMIT:
            raise QueryError(str(self.limit), f"limit must be between 1 and {self.MAX_LIMIT}: page with `before`")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS logs (id INTEGER PRIMARY KEY, ts REAL NOT NULL, service TEXT NOT NULL,
    instance TEXT NOT NULL, level TEXT NOT NULL, severity INTEGER NOT NULL, trace_id TEXT,
    logger TEXT NOT NULL, message TEXT NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
CREATE INDEX IF NOT EXISTS logs_service ON logs (service, id);
CREATE INDEX IF NOT EXISTS logs_severity ON logs (severity);
CREATE INDEX IF NOT EXISTS logs_service_severity ON logs (service, severity);
CREATE INDEX IF NOT EXISTS logs_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS logs_text USING fts5(message, fields, content='logs', content_rowid='id');
CREATE TABLE IF NOT EXISTS offsets (file TEXT PRIMARY KEY, inode INTEGER NOT NULL, offset INTEGER NOT NULL);
"""


def _fts_query(text: str) -> str:
    """Free words as an FTS5 query: each word quoted (no operator surprises), a final ``*`` kept."""
    terms = []
    for word in re.findall(r"[\w.*:/@-]+", text):
        prefix = word.endswith("*")
        core = word.rstrip("*").replace('"', "")
        for part in re.findall(r"\w+", core):
            terms.append(f'"{part}"')
        if prefix and terms:
            terms[-1] += "*"
    return " ".join(terms)


class LogStore:
    """The log index in ``path`` (SQLite); ``retention`` in seconds."""

    def __init__(self, path: Path, *, retention: float = 7 * 86400) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.retention = retention
        # one thread at a time: the monitor's writer thread once the control plane runs
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._new = asyncio.Condition()
        row = self.db.execute("SELECT max(id) FROM logs").fetchone()
        self.last_id = int(row[0] or 0)

    def close(self) -> None:
        self.db.close()

    # -- writing -------------------------------------------------------------------------------

    def add(self, records: Iterable[LogRecord], offset: tuple[str, int, int] | None = None) -> int:
        """Index ``records`` and, in the same transaction, remember ``offset`` (file, inode, byte offset)."""
        rows = [
            (r.ts, r.service, r.instance, r.level, LEVELS.get(r.level, 20), r.trace_id, r.logger, r.message,
             json.dumps(r.fields, default=str) if r.fields else "{}")
            for r in records
        ]
        self.db.execute("BEGIN")
        try:
            first = self.last_id + 1
            self.db.executemany(
                "INSERT INTO logs (ts, service, instance, level, severity, trace_id, logger, message, fields)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            row = self.db.execute("SELECT max(id) FROM logs").fetchone()
            last = int(row[0] or 0)
            if rows:
                self.db.execute(
                    "INSERT INTO logs_text (rowid, message, fields) SELECT id, message, fields FROM logs"
                    " WHERE id >= ? AND id <= ?",
                    (first, last),
                )
            if offset is not None:
                self.db.execute("INSERT OR REPLACE INTO offsets (file, inode, offset) VALUES (?, ?, ?)", offset)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.last_id = last
        return len(rows)

    def offset(self, file: str) -> tuple[int, int] | None:
        """(inode, byte offset) read so far of ``file``."""
        row = self.db.execute("SELECT inode, offset FROM offsets WHERE file = ?", (file,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    async def notify(self) -> None:
        async with self._new:
            self._new.notify_all()

    def expire(self, now: float) -> int:
        """Drop lines older than ``retention``; the number dropped."""
        cutoff = now - self.retention
        self.db.execute("BEGIN")
        self.db.execute(
            "INSERT INTO logs_text (logs_text, rowid, message, fields) "
            "SELECT 'delete', id, message, fields FROM logs WHERE ts < ?",
            (cutoff,),
        )
        cur = self.db.execute("DELETE FROM logs WHERE ts < ?", (cutoff,))
        self.db.execute("COMMIT")
        return cur.rowcount

    # -- reading -------------------------------------------------------------------------------

    def search(self, q: LogSearch) -> list[LogRecord]:
        """The lines matching ``q``, newest first."""
        where: list[str] = []
        args: list[Any] = []
        if q.start is not None:
            where.append("l.ts >= ?")
            args.append(q.start)
        if q.end is not None:
            where.append("l.ts <= ?")
            args.append(q.end)
        if q.service:
            where.append("l.service = ?")
            args.append(q.service)
        if q.instance:
            where.append("l.instance = ?")
            args.append(q.instance)
        if q.level:
            level = _LEVEL_ALIASES.get(q.level.lower(), q.level.lower())
            if level not in LEVELS:
                raise QueryError(q.level, f"level must be one of {', '.join(LEVELS)}")
            where.append("l.severity >= ?")
            args.append(LEVELS[level])
        if q.trace_id:
            where.append("l.trace_id = ?")
            args.append(q.trace_id.lower())
        if q.before is not None:
            where.append("l.id < ?")
            args.append(q.before)
        source = "logs AS l"
        if q.text and q.text.strip():
            # the text index drives a text search: `+` keeps SQLite from walking a column index instead
            where = [w.replace("l.", "+l.", 1) if not w.startswith(("l.ts", "l.id")) else w for w in where]
            match = _fts_query(q.text)
            if not match:
                raise QueryError(q.text, "no words to search for")
            source = "logs_text JOIN logs AS l ON l.id = logs_text.rowid"
            where.append("logs_text MATCH ?")
            args.append(match)
        # newest first; FTS5 walks its own rowids backwards and stops at the limit
        order = "logs_text.rowid" if source != "logs AS l" else "l.id"
        sql = (
            "SELECT l.id, l.ts, l.service, l.instance, l.level, l.trace_id, l.logger, l.message, l.fields"
            f" FROM {source}{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order} DESC LIMIT ?"
        )
        args.append(q.limit)
        try:
            rows = self.db.execute(sql, args).fetchall()
        except sqlite3.OperationalError as exc:
            raise QueryError(q.text or "", str(exc)) from None
        return [_record(r) for r in rows]

    def after(self, last_id: int, q: LogSearch) -> list[LogRecord]:
        """Lines newer than id ``last_id`` that match ``q`` (oldest first): the live tail."""
        where = ["id > ?"]
        args: list[Any] = [last_id]
        if q.service:
            where.append("service = ?")
            args.append(q.service)
        if q.level:
            where.append("severity >= ?")
            args.append(LEVELS.get(_LEVEL_ALIASES.get(q.level.lower(), q.level.lower()), 0))
        if q.trace_id:
            where.append("trace_id = ?")
            args.append(q.trace_id.lower())
        rows = self.db.execute(
            "SELECT id, ts, service, instance, level, trace_id, logger, message, fields FROM logs"
            f" WHERE {' AND '.join(where)} ORDER BY id LIMIT ?",
            [*args, q.limit],
        ).fetchall()
        records = [_record(r) for r in rows]
        if q.text and q.text.strip():
            words = [w.lower() for w in re.findall(r"\w+", q.text)]
            records = [
                r for r in records if all(w in (r.message + json.dumps(r.fields)).lower() for w in words)
            ]
        return records

    async def wait_after(self, last_id: int, q: LogSearch, wait: float, fetch: FetchAfter) -> list[dict[str, Any]]:
        """``await fetch(last_id, q)`` (the query processes' :meth:`after`, as JSON records), waiting up
        to ``wait`` seconds for a first line when none is there yet."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            found = await fetch(last_id, q) if self.last_id > last_id else []
            left = deadline - loop.time()
            if found or left <= 0:
                return found
            async with self._new:
                try:
                    await asyncio.wait_for(self._new.wait(), left)
                except TimeoutError:
                    return await fetch(last_id, q)


def _record(row: tuple[Any, ...]) -> LogRecord:
    rid, ts, service, instance, level, trace_id, logger, message, fields = row
    return LogRecord(float(ts), service, instance, level, message, trace_id, logger, json.loads(fields), int(rid))


class LogCollector:
    """Reads new lines from every file under ``logs_dir`` into ``store``, ``chunk`` bytes at a time."""

    def __init__(self, store: LogStore, logs_dir: Path, *, chunk: int = 1024 * 1024) -> None:
        self.store = store
        self.logs_dir = logs_dir
        self.chunk = chunk
        self.behind = False  # the last pass stopped at its budget with lines left to read

    def collect(self, budget: int | None = None) -> int:
        """One pass over every file, reading at most about ``budget`` bytes (None: everything);
        returns the number of lines indexed. :attr:`behind` says whether lines were left."""
        total = 0
        self.behind = False
        if not self.logs_dir.is_dir():
            return 0
        left = [budget]
        for path in sorted(self.logs_dir.glob("*.log")):
            if left[0] is not None and left[0] <= 0:
                self.behind = True
                break
            total += self._collect_file(path, left)
        return total

    def _collect_file(self, path: Path, left: list[int | None]) -> int:
        try:
            st = path.stat()
        except FileNotFoundError:
            return 0
        key = str(path)
        known = self.store.offset(key)
        start = 0
        if known is not None and known[0] == st.st_ino and known[1] <= st.st_size:
            start = known[1]
        total = 0
        while start < st.st_size:
            budget = left[0]
            if budget is not None and budget <= 0:
                self.behind = True
                break
            with path.open("rb") as f:
                f.seek(start)
                chunk = f.read(min(self.chunk, st.st_size - start))
            complete = chunk.rfind(b"\n") + 1  # a half-written line waits for its end
            if complete == 0:
                if len(chunk) < self.chunk:
                    break
                complete = len(chunk)  # a line longer than a chunk is indexed in pieces
            instance = path.stem
            records = [
                rec
                for raw in chunk[:complete].decode("utf-8", "replace").splitlines()
                if (rec := parse_log_line(instance, raw)) is not None
            ]
            start += complete
            if budget is not None:
                left[0] = budget - complete
            total += self.store.add(records, (key, st.st_ino, start))
        return total
