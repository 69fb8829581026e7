"""Structured logs: one JSON object per line on stdout.

Each line has ``ts`` (ISO 8601, UTC), ``level``, ``service``, ``instance``, ``logger``,
``message``, ``trace_id`` (of the call being served, else null) and ``fields`` (what the
caller passed as ``extra={"fields": {...}}``); an exception adds ``error`` with its traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

from minga.bus import current_trace

__all__ = ["JsonFormatter", "configure_logging"]


class JsonFormatter(logging.Formatter):
    """Formats records as JSON lines for one replica."""

    def __init__(self, service: str, instance: str) -> None:
        super().__init__()
        self.service = service
        self.instance = instance

    def format(self, record: logging.LogRecord) -> str:
        trace = current_trace.get()
        fields = getattr(record, "fields", None)
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "instance": self.instance,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": trace.trace_id if trace is not None else None,
            "fields": fields if isinstance(fields, dict) else {},
        }
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(
    service: str, instance: str, *, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Send every log record of this process, as JSON lines, to ``stream`` (stdout by default)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter(service, instance))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
