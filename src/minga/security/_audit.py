"""The audit trail: one JSON line per refusal, in ``home/audit.log`` (0600).

Each record says who was refused (``who``: an identity such as ``read`` or
``replica:orders/orders-1``, else ``anonymous``), from where (``source``: the peer address),
what they tried (``what``: ``POST /api/stop``), why it was refused (``why``: the message they
got) and when (``at``: ISO 8601, UTC). ``minga audit`` prints them; ``minga audit -f`` follows.

A flood of refused requests cannot fill the disk: past :data:`MAX_AUDIT_BYTES` the log moves to
``audit.log.1`` (replacing the one before) and starts again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from minga.security._files import PRIVATE_FILE

__all__ = ["AUDIT_FILE", "AuditLog", "AuditRecord", "follow_audit", "read_audit"]

AUDIT_FILE = "audit.log"
MAX_AUDIT_BYTES = 8 * 1024 * 1024

log = logging.getLogger("minga.security")


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One refusal: who, from where, what, why, when (ISO 8601, UTC) and the ``area`` that refused
    (``http``, ``registry``...)."""

    at: str
    area: str
    who: str
    source: str
    what: str
    why: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> AuditRecord | None:
        """The record on ``line``; ``None`` for a line that is not one."""
        try:
            doc = json.loads(line)
            return cls(**{k: str(doc[k]) for k in ("at", "area", "who", "source", "what", "why")})
        except (ValueError, KeyError, TypeError):
            return None


class AuditLog:
    """Appends records to ``path`` (created 0600); thread-safe, one write per record; past
    ``max_bytes`` the file becomes ``<path>.1``."""

    def __init__(self, path: Path, *, max_bytes: int = MAX_AUDIT_BYTES) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    @classmethod
    def in_home(cls, home: Path) -> AuditLog:
        """The audit log of the system under ``home`` (``home/audit.log``)."""
        return cls(home / AUDIT_FILE)

    def record(self, *, area: str, who: str, source: str, what: str, why: str) -> AuditRecord:
        """Write one refusal and return it; a write that fails is logged, never raised to the caller."""
        entry = AuditRecord(
            datetime.now(UTC).isoformat(timespec="milliseconds"), area, who, source, what, why
        )
        line = (entry.to_json() + "\n").encode("utf-8")
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
                try:
                    if os.fstat(fd).st_size + len(line) > self.max_bytes:
                        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                        os.close(fd)
                        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
                    os.write(fd, line)
                finally:
                    os.close(fd)
            except OSError as exc:
                log.warning("cannot write the audit record to %s: %s", self.path, exc)
        return entry


def read_audit(home: Path) -> list[AuditRecord]:
    """Every record under ``home`` (the moved-away file's first), oldest first."""
    records: list[AuditRecord] = []
    for path in (home / f"{AUDIT_FILE}.1", home / AUDIT_FILE):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        records.extend(r for r in map(AuditRecord.from_json, text.splitlines()) if r is not None)
    return records


def follow_audit(home: Path, *, interval: float = 0.5) -> AsyncGenerator[AuditRecord, None]:
    """The records written under ``home`` from this call on, as they come (checked every ``interval`` s)."""
    path = home / AUDIT_FILE
    return _follow(path, path.stat().st_size if path.exists() else 0, interval)


async def _follow(path: Path, offset: int, interval: float) -> AsyncGenerator[AuditRecord, None]:
    pending = b""
    while True:
        try:
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < offset:
                    offset = 0  # the file was replaced
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            record = AuditRecord.from_json(raw.decode("utf-8", "replace"))
            if record is not None:
                yield record
        await asyncio.sleep(interval)
